"""RFC 9068 JWT access tokens on the API: every rule, refused with 401 (403 for scope) in words.

Tokens are signed by the scripted provider's keys (``op``); the site checks them locally
with its cached JWKS, so a valid token costs no provider request once the keys are cached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from django.test import Client

from accounts.models import OIDCIdentity
from tests.support.fakeop import CLIENT_ID, SigningKey
from tests.support.sessions import oidc_user

pytestmark = pytest.mark.django_db

AT_JWT = {"typ": "at+jwt"}


def access_claims(op, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": op.issuer,
        "sub": "sub-alice",
        "aud": CLIENT_ID,
        "client_id": "api-client",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "scope": "api:read api:write",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def access_token(op, *, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
    return op.sign(access_claims(op, **overrides), headers={**AT_JWT, **(headers or {})})


def call(token: str, path: str = "/api/me/"):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def alice(op):
    return oidc_user(issuer=op.issuer, subject="sub-alice", username="alice")


def assert_refused(response, reason: str, words: str) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert (body["error"], body["reason"]) == ("invalid_token", reason)
    assert words in body["message"]
    assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def test_a_valid_access_token_is_accepted_without_a_provider_request_once_keys_are_cached(
    op, alice
):
    assert call(access_token(op)).json()["username"] == "alice"
    assert op.count("/jwks") == 1
    for _ in range(3):
        response = call(access_token(op))
        assert response.status_code == 200
        assert response.json()["sub"] == "sub-alice"
    assert op.requests == [("GET", "/jwks")]  # no introspection, no userinfo, no refetch


@pytest.mark.parametrize(
    ("overrides", "reason", "words"),
    [
        ({"exp": int(time.time()) - 120}, "expired", "has expired"),
        ({"nbf": int(time.time()) + 600}, "issued_in_future", "not valid yet"),
        ({"iat": int(time.time()) + 600}, "issued_in_future", "not valid yet"),
        ({"aud": "another-api"}, "wrong_audience", "for a different API"),
        ({"aud": ["another-api", "a-third"]}, "wrong_audience", "for a different API"),
        ({"client_id": None}, "missing_claim", "missing required information"),
        ({"sub": None}, "missing_claim", "missing required information"),
    ],
    ids=["expired", "not-yet-valid", "issued-in-future", "other-audience", "other-audiences",
         "no-client-id", "no-sub"],
)  # fmt: skip
def test_an_access_token_breaking_a_rule_is_refused(op, alice, overrides, reason, words):
    assert_refused(call(access_token(op, **overrides)), reason, words)


def test_an_expired_token_within_the_clock_leeway_is_accepted(op, alice, settings):
    settings.OIDC_CLOCK_LEEWAY = 30
    assert call(access_token(op, exp=int(time.time()) - 10)).status_code == 200


def test_a_token_of_another_issuer_is_refused_before_any_key_lookup(op, alice):
    for issuer in (op.issuer + "/", "https://evil.example"):
        assert_refused(call(access_token(op, iss=issuer)), "unknown_issuer", "does not know")
    assert op.count("/jwks") == 0


def test_a_token_signed_by_a_key_the_provider_does_not_list_is_refused(op, alice):
    forged = SigningKey.rsa(kid=op.keys[0].kid)  # same kid, another key
    token = op.sign(access_claims(op), key=forged, headers=AT_JWT)
    assert_refused(call(token), "bad_signature", "signature is not valid")


def test_alg_none_is_refused(op, alice):
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': 'none', 'typ': 'at+jwt'})}.{part(access_claims(op))}."
    assert_refused(call(token), "alg_not_allowed", "signing algorithm")


def test_hs256_keyed_with_the_providers_public_key_is_refused(op, alice, settings):
    settings.OIDC_RP_SIGN_ALGO = ["RS256", "HS256"]  # even when HS256 is on the allow-list
    public_pem = (
        op.keys[0]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def part(data: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "at+jwt"}) + b"." + part(access_claims(op))
    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    token = (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()
    assert_refused(call(token), "alg_not_allowed", "signing algorithm")


def test_an_unknown_kid_refetches_the_keys_once_then_is_refused(op, alice):
    call(access_token(op))  # the keys are cached
    assert op.count("/jwks") == 1
    stranger = SigningKey.rsa()
    for _ in range(3):
        token = op.sign(access_claims(op), key=stranger, headers=AT_JWT)
        assert_refused(call(token), "unknown_key", "key the identity provider does not list")
    assert op.count("/jwks") == 2  # one refetch for that kid, then none


def test_an_id_token_is_never_taken_for_an_access_token(op, alice):
    # Same issuer, same audience (our client id), a valid signature: still an ID token.
    id_token = op.id_token(nonce="n-1")
    assert_refused(call(id_token), "id_token", "ID token cannot be used")
    without_typ = op.sign(op.claims(nonce=None, at_hash="x"))
    assert_refused(call(without_typ), "id_token", "ID token cannot be used")


def test_a_token_typed_jwt_is_refused_unless_the_provider_says_so(op, alice, settings):
    token = access_token(op, headers={"typ": "JWT"})
    assert_refused(call(token), "wrong_type", "not an access token")
    settings.OIDC_ACCESS_TOKEN_TYPES = ["at+jwt", "JWT"]  # e.g. Entra ID v1 tokens
    assert call(token).status_code == 200


def test_the_api_audience_setting_names_what_tokens_must_be_for(op, alice, settings):
    settings.OIDC_API_AUDIENCE = "https://api.example"
    assert_refused(call(access_token(op)), "wrong_audience", "for a different API")
    assert call(access_token(op, aud=["https://api.example", "x"])).status_code == 200


# --- scopes and machines ---------------------------------------------------------------------
def test_a_missing_scope_is_403_insufficient_scope_in_words(op, alice):
    response = call(access_token(op, scope="profile"), "/api/whoami/")
    assert response.status_code == 403
    body = response.json()
    assert (body["error"], body["scope"]) == ("insufficient_scope", "api:read")
    assert "lacks the scope this API needs: api:read" in body["message"]
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert 'scope="api:read"' in response["WWW-Authenticate"]


@pytest.mark.parametrize(
    "claims",
    [{"scope": "api:read"}, {"scope": None, "scp": ["api:read", "api:write"]}],
    ids=["scope-string", "scp-list"],
)
def test_scopes_are_read_from_scope_and_scp(op, alice, claims):
    response = call(access_token(op, **claims), "/api/whoami/")
    assert response.status_code == 200
    assert "api:read" in response.json()["scopes"]


def test_a_client_credentials_token_is_a_machine_only_where_machines_are_welcome(op):
    token = access_token(op, sub="api-client", client_id="api-client", scope="api:read")
    whoami = call(token, "/api/whoami/")
    assert whoami.status_code == 200
    assert whoami.json() == {
        "kind": "machine",
        "username": None,
        "client_id": "api-client",
        "scopes": ["api:read"],
    }
    me = call(token, "/api/me/")
    assert me.status_code == 403
    assert me.json()["reason"] == "user_required"
    assert OIDCIdentity.objects.count() == 0  # a machine is never made a user


def test_a_deactivated_user_is_refused_in_words(op, alice):
    alice.is_active = False
    alice.save()
    assert_refused(call(access_token(op)), "inactive", "deactivated")


def test_a_subject_unknown_here_is_created_like_a_first_sign_in(op):
    response = call(access_token(op, sub="sub-newcomer", preferred_username="newcomer"))
    assert response.status_code == 200
    assert response.json()["username"] == "newcomer"
    assert OIDCIdentity.objects.get(subject="sub-newcomer").issuer == op.issuer


def test_no_token_and_no_session_is_401_with_a_bearer_and_a_dpop_challenge():
    response = Client().get("/api/whoami/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", DPoP algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 EdDSA"'
    )
    assert response.json()["error"] == "not_authenticated"


def test_a_verified_token_is_remembered_until_its_exp_only(op, alice, monkeypatch):
    from accounts.api import access_tokens

    verified = []
    original = access_tokens._verify
    monkeypatch.setattr(
        access_tokens, "_verify", lambda *args: verified.append(1) or original(*args)
    )
    token = access_token(op, exp=int(time.time()) + 2)
    assert [call(token).status_code for _ in range(3)] == [200] * 3
    assert len(verified) == 1  # the signature was checked once
    time.sleep(2.1)
    # Past exp, within the clock leeway: checked again (and still accepted), never served
    # from memory.
    assert call(token).status_code == 200
    assert len(verified) == 2


def test_a_remembered_token_is_judged_again_when_the_settings_change(op, alice, settings):
    token = access_token(op)
    assert call(token).status_code == 200
    settings.OIDC_API_AUDIENCE = "https://api.example"
    assert_refused(call(token), "wrong_audience", "for a different API")
