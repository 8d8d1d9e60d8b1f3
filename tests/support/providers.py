"""A second scripted provider, "b", next to the first (the provider ``default``).

``op`` (tests/conftest.py) stays the provider ``default``; ``op_b`` is a second FakeOP on
its own port with its own keys, declared in ``OIDC_PROVIDERS`` with its own client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from tests.support.fakeop import FakeOP, serve
from tests.support.scripted_signin import USERINFO_CLAIMS, unverified_claims

B_SLUG = "b"
B_CLIENT_ID = "b-client"
B_CLIENT_SECRET = "b-secret"


@pytest.fixture(scope="session")
def _op_b_server() -> Iterator[FakeOP]:
    op = FakeOP()
    server, _ = serve(op)
    yield op
    server.shutdown()


def provider_b_settings(op_b: FakeOP, **extra: Any) -> dict[str, Any]:
    return {
        "label": "Provider B",
        "issuer": op_b.base_url,
        "client_id": B_CLIENT_ID,
        "client_secret": B_CLIENT_SECRET,
        "discovery": False,
        **op_b.endpoints(),
        "email_domains": ["b.example"],
        **extra,
    }


@pytest.fixture
def op_b(op: FakeOP, _op_b_server: FakeOP, settings) -> FakeOP:
    """Provider "b", reset, declared in OIDC_PROVIDERS next to the default provider ``op``."""
    _op_b_server.reset()
    _op_b_server.client_id, _op_b_server.client_secret = B_CLIENT_ID, B_CLIENT_SECRET
    settings.OIDC_PROVIDERS = {B_SLUG: provider_b_settings(_op_b_server)}
    return _op_b_server


def start_at(client: Client, slug: str) -> tuple[str, str, dict[str, str]]:
    """Start a sign-in at provider ``slug``; return (state, nonce, authorization params)."""
    response = client.get("/oidc/authenticate/", {"provider": slug})
    assert response.status_code == 302, response.content[:500]
    query = parse_qs(urlsplit(response["Location"]).query)
    params = {name: values[0] for name, values in query.items()}
    return params["state"], params["nonce"], params


def answer_with(op: FakeOP, id_token: str) -> None:
    """Script ``op``'s token and userinfo answers for this ID token."""
    claims = unverified_claims(id_token)
    op.answer_tokens(id_token)
    op.answer_userinfo({k: claims[k] for k in USERINFO_CLAIMS if k in claims})


def callback(client: Client, path: str, state: str, *, iss: str | None, code: str = "c"):
    params = {"code": code, "state": state}
    if iss is not None:
        params["iss"] = iss
    return client.get(f"{path}?{urlencode(params)}")


def sign_in_at_b(client: Client, op_b: FakeOP, **claims: Any):
    """A sign-in through provider b that must succeed."""
    state, nonce, _ = start_at(client, B_SLUG)
    answer_with(op_b, op_b.id_token(aud=B_CLIENT_ID, nonce=nonce, **claims))
    response = callback(client, f"/oidc/callback/{B_SLUG}/", state, iss=op_b.issuer)
    assert response.status_code == 302, response.content.decode()[:2000]
    return response
