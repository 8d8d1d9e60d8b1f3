"""Drive the sign-in flow through Django's test client against the scripted provider.

``start`` asks the site for a sign-in and reads the authorization request it redirects to;
``finish`` scripts the provider's answers and comes back to the callback, as a browser would.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from django.test import Client

from tests.support.fakeop import FakeOP

# The userinfo answer repeats these claims of the ID token, so that it agrees with it.
USERINFO_CLAIMS = (
    "sub",
    "email",
    "email_verified",
    "preferred_username",
    "given_name",
    "family_name",
    "name",
    "groups",
)

_DEFAULT = object()


def start(client: Client, next: str | None = None) -> tuple[str, str, dict[str, str]]:
    """GET /oidc/authenticate/ and return (state, nonce, authorization request parameters).

    With several providers that shows the chooser: then its button of the provider
    ``default`` (the scripted ``op``), as a person would press it.
    """
    url = "/oidc/authenticate/"
    if next is not None:
        url += "?" + urlencode({"next": next})
    response = client.get(url)
    if response.status_code == 302 and response["Location"].startswith("/accounts/signin/"):
        response = client.get(url, {"provider": "default", **({"next": next} if next else {})})
    assert response.status_code == 302, response.content[:500]
    query = parse_qs(urlsplit(response["Location"]).query)
    params = {name: values[0] for name, values in query.items()}
    return params["state"], params["nonce"], params


def unverified_claims(token: str) -> dict[str, Any]:
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


def callback_url(state: str | None, *, code: str | None = "c", iss: Any = _DEFAULT, op=None) -> str:
    params: dict[str, str] = {}
    if code is not None:
        params["code"] = code
    if state is not None:
        params["state"] = state
    if iss is _DEFAULT:
        iss = op.issuer if op is not None else None
    if iss is not None:
        params["iss"] = iss
    return "/oidc/callback/?" + urlencode(params)


def finish(
    client: Client,
    op: FakeOP,
    id_token: str | None = None,
    *,
    state: str | None = None,
    callback_iss: Any = _DEFAULT,
    userinfo: dict[str, Any] | None = None,
    code: str = "c",
    **claim_overrides: Any,
):
    """Script the provider's answers and GET the callback; return the site's response.

    Without ``state`` a new sign-in is started first, and the ID token (unless given) is
    ``op.id_token`` with that sign-in's nonce and ``claim_overrides``. The userinfo answer
    repeats the ID token's claims unless ``userinfo`` says otherwise. ``callback_iss`` is the
    RFC 9207 ``iss`` of the callback: the provider's issuer unless given (None drops it).
    """
    if state is None:
        state, nonce, _ = start(client)
        claim_overrides.setdefault("nonce", nonce)
    if id_token is None:
        id_token = op.id_token(**claim_overrides)
    if userinfo is None:
        claims = unverified_claims(id_token)
        userinfo = {k: claims[k] for k in USERINFO_CLAIMS if k in claims}
        userinfo.setdefault("sub", "sub-alice")
    op.answer_tokens(id_token)
    op.answer_userinfo(userinfo)
    return client.get(callback_url(state, code=code, iss=callback_iss, op=op))


def sign_in(client: Client, op: FakeOP, **claim_overrides: Any):
    """A sign-in that must succeed; returns the callback's redirect."""
    response = finish(client, op, **claim_overrides)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert "_auth_user_id" in client.session
    return response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


ENDPOINT_SETTINGS = (
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
    "OIDC_OP_LOGOUT_ENDPOINT",
)


def use_discovery(settings) -> None:
    """Read the endpoints from the provider's discovery document instead of settings."""
    settings.OIDC_OP_DISCOVERY = True
    for name in ENDPOINT_SETTINGS:
        setattr(settings, name, "")
