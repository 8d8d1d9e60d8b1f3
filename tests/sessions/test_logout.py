"""RP-initiated logout: POST signs out here and sends the browser to the provider."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages

from accounts.models import OIDCSession
from accounts.sessions import token_store
from tests.support.scripted_signin import sign_in

pytestmark = pytest.mark.django_db


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_post_signs_out_here_and_redirects_to_end_session_with_hint_and_state(client, op):
    sign_in(client, op)
    id_token = token_store.read(OIDCSession.objects.get(), "id_token")

    response = client.post("/oidc/logout/")

    assert response.status_code == 302
    assert response["Location"].startswith(f"{op.issuer}/session/end?")
    params = _query(response["Location"])
    assert params["id_token_hint"] == id_token
    assert params["post_logout_redirect_uri"] == "http://testserver/oidc/logout/complete/"
    assert len(params["state"]) >= 32
    assert OIDCSession.objects.count() == 0
    assert client.get("/api/me/").status_code == 401


def test_return_with_the_state_sent_confirms_the_sign_out(client, op):
    sign_in(client, op)
    state = _query(client.post("/oidc/logout/")["Location"])["state"]

    response = client.get(f"/oidc/logout/complete/?state={state}")

    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert "You are signed out here and at your identity provider." in texts


@pytest.mark.parametrize("returned", ["", "?state=forged", "?state="])
def test_return_with_another_state_is_not_trusted_but_stays_signed_out(client, op, returned):
    sign_in(client, op)
    client.post("/oidc/logout/")

    response = client.get(f"/oidc/logout/complete/{returned}")

    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("could not be verified" in text for text in texts)
    assert not any("signed out here and at your identity provider" in t for t in texts)
    assert client.get("/api/me/").status_code == 401


def test_without_an_end_session_endpoint_sign_out_is_local_and_says_so(client, op, settings):
    settings.OIDC_OP_LOGOUT_ENDPOINT = ""
    sign_in(client, op)

    response = client.post("/oidc/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/"
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("still open" in text for text in texts)
    assert client.get("/api/me/").status_code == 401


def test_get_only_asks_for_confirmation(client, op):
    sign_in(client, op)

    response = client.get("/oidc/logout/")

    assert response.status_code == 200
    assert b'method="post"' in response.content
    assert client.get("/api/me/").status_code == 200


def test_admin_log_out_signs_out_at_the_provider_too(client, op):
    sign_in(client, op, groups=["app-staff"])

    response = client.post("/admin/logout/")

    assert response.status_code == 302
    assert response["Location"].startswith(f"{op.issuer}/session/end?")
    assert client.get("/api/me/").status_code == 401
