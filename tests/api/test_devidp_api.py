"""The API with access tokens minted by the real dev IdP (RFC 9068 JWTs and opaque tokens)."""

from __future__ import annotations

import jwt
import pytest

from accounts.models import OIDCIdentity, OIDCSession
from accounts.sessions import token_store
from tests.support.api_client import machine_access_token, user_access_token
from tests.support.signin import new_session, sign_in_with_requests

pytestmark = [pytest.mark.devidp, pytest.mark.django_db(transaction=True)]


def provider_requests(idp) -> int:
    stats = idp.stats()
    return (
        sum(stats["token"].values())
        + stats["userinfo"]
        + stats["introspection"]
        + stats["jwks"]
        + stats["discovery"]
    )


def get(site: str, path: str, token: str):
    return new_session().get(
        f"{site}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_a_jwt_access_token_is_accepted_with_no_provider_request_after_the_first_jwks_fetch(
    idp_site, live_server
):
    sign_in_with_requests(live_server.url, "alice")  # alice has an account here
    token = user_access_token(idp_site, "alice", scope="openid api:read")
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    first = get(live_server.url, "/api/me/", token)
    assert first.status_code == 200, first.text
    assert first.json()["username"] == "alice"
    assert first.json()["iss"] == idp_site.issuer

    before = provider_requests(idp_site)
    for path in ("/api/me/", "/api/whoami/", "/api/drf/me/", "/api/drf/whoami/") * 3:
        assert get(live_server.url, path, token).status_code == 200
    assert provider_requests(idp_site) == before
    assert idp_site.stats()["introspection"] == 0


def test_an_opaque_access_token_is_accepted_through_introspection(idp_site, live_server):
    sign_in_with_requests(live_server.url, "alice")
    token = token_store.read(OIDCSession.objects.get(), "access_token")  # the site's, opaque
    assert token.count(".") == 0
    for _ in range(3):
        response = get(live_server.url, "/api/me/", token)
        assert response.status_code == 200
        assert response.json()["username"] == "alice"
    assert idp_site.stats()["introspection"] == 1  # then cached under the token's hash


def test_an_opaque_token_of_another_client_is_refused(idp_site, live_server):
    token = user_access_token(idp_site, "alice", scope="openid", resource=None)
    assert token.count(".") == 0  # for userinfo, issued to api-client: not for this site
    response = get(live_server.url, "/api/me/", token)
    assert response.status_code == 401
    assert response.json()["reason"] == "invalid_token"
    assert idp_site.stats()["introspection"] == 1


def test_a_jwt_access_token_of_someone_new_creates_their_account(idp_site, live_server):
    token = user_access_token(idp_site, "staff", scope="openid api:read")
    response = get(live_server.url, "/api/me/", token)
    assert response.status_code == 200
    assert response.json()["sub"] == jwt.decode(token, options={"verify_signature": False})["sub"]
    assert OIDCIdentity.objects.filter(issuer=idp_site.issuer).count() == 1


def test_a_client_credentials_token_is_accepted_only_where_machines_are(idp_site, live_server):
    token = machine_access_token(idp_site, scope="api:read")
    for path in ("/api/whoami/", "/api/drf/whoami/"):
        response = get(live_server.url, path, token)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "kind": "machine",
            "username": None,
            "client_id": "api-client",
            "scopes": ["api:read"],
        }
    for path in ("/api/me/", "/api/drf/me/"):
        response = get(live_server.url, path, token)
        assert response.status_code == 403
        assert response.json()["reason"] == "user_required"


def test_the_drf_and_the_plain_views_answer_real_tokens_alike(idp_site, live_server):
    sign_in_with_requests(live_server.url, "alice")
    tokens = {
        "user": user_access_token(idp_site, "alice", scope="openid api:read"),
        "user-no-api-scope": user_access_token(idp_site, "alice", scope="openid"),
        "machine": machine_access_token(idp_site, scope="api:read"),
    }
    for name, token in tokens.items():
        for plain, drf in (("/api/me/", "/api/drf/me/"), ("/api/whoami/", "/api/drf/whoami/")):
            a, b = get(live_server.url, plain, token), get(live_server.url, drf, token)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), (name, plain)
            assert a.headers.get("WWW-Authenticate") == b.headers.get("WWW-Authenticate")
    missing = get(live_server.url, "/api/whoami/", tokens["user-no-api-scope"])
    assert missing.status_code == 403
    assert missing.json()["error"] == "insufficient_scope"
