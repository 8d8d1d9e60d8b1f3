"""Back-Channel Logout 1.0 and Front-Channel Logout 1.0 receivers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from django.test import Client

from accounts.models import OIDCSession
from tests.support.fakeop import CLIENT_ID, SigningKey
from tests.support.sessions import is_signed_in, signed_in_session

pytestmark = pytest.mark.django_db

URL = "/oidc/backchannel-logout/"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TYP = {"typ": "logout+jwt"}


def logout_claims(op, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": op.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "events": {EVENT: {}},
        "sid": "sid-1",
        "sub": "sub-alice",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def logout_token(op, **overrides: Any) -> str:
    return op.sign(logout_claims(op, **overrides), headers=LOGOUT_TYP)


def post(token: str | None):
    data = {} if token is None else {"logout_token": token}
    return Client().post(URL, data)


def new_session(op, **kwargs: Any) -> Client:
    client = Client()
    signed_in_session(client, issuer=op.issuer, **kwargs)
    return client


@pytest.fixture
def alice(op) -> Client:
    return new_session(op, sid="sid-1")


def assert_no_store(response) -> None:
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert "no-store" in directives


def assert_rejected(response) -> None:
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert_no_store(response)
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["error_description"]


# --- accepted --------------------------------------------------------------------------


def test_a_valid_token_with_sid_ends_exactly_that_sid(op, alice):
    other_session_same_user = new_session(op, sid="sid-2")
    bob = new_session(op, sid="sid-3", subject="sub-bob", username="bob")

    response = post(logout_token(op, sid="sid-1", sub=None))

    assert response.status_code == 200
    assert_no_store(response)
    assert response.json() == {"ended_sessions": 1}
    assert not is_signed_in(alice)
    assert alice.get("/members/").status_code == 302
    assert is_signed_in(other_session_same_user)
    assert other_session_same_user.get("/members/").status_code == 200
    assert is_signed_in(bob)
    assert set(OIDCSession.objects.values_list("sid", flat=True)) == {"sid-2", "sid-3"}


def test_a_valid_token_with_sid_and_sub_ends_that_sid(op, alice):
    other = new_session(op, sid="sid-2")
    response = post(logout_token(op))
    assert response.json() == {"ended_sessions": 1}
    assert not is_signed_in(alice)
    assert is_signed_in(other)


def test_a_valid_token_with_only_sub_ends_every_session_of_that_sub(op, alice):
    second = new_session(op, sid="sid-2")
    bob = new_session(op, sid="sid-3", subject="sub-bob", username="bob")

    response = post(logout_token(op, sid=None, sub="sub-alice"))

    assert response.status_code == 200
    assert_no_store(response)
    assert response.json() == {"ended_sessions": 2}
    assert not is_signed_in(alice)
    assert not is_signed_in(second)
    assert is_signed_in(bob)
    assert list(OIDCSession.objects.values_list("subject", flat=True)) == ["sub-bob"]


def test_a_valid_token_naming_no_live_session_is_still_accepted(op, alice):
    response = post(logout_token(op, sid="sid-unknown", sub=None))
    assert response.status_code == 200
    assert response.json() == {"ended_sessions": 0}
    assert is_signed_in(alice)


# --- rejected: 400, and the session survives ---------------------------------------------


def _bad_signature(op) -> str:
    impostor = SigningKey.rsa(kid=op.keys[0].kid)  # the provider's kid, another key
    return op.sign(logout_claims(op), key=impostor, headers=LOGOUT_TYP)


INVALID = {
    "bad signature": _bad_signature,
    "nonce present": lambda op: logout_token(op, nonce="n-1"),
    "no events": lambda op: logout_token(op, events=None),
    "events not an object": lambda op: logout_token(op, events=[EVENT]),
    "wrong events key": lambda op: logout_token(
        op, events={"http://schemas.openid.net/event/other": {}}
    ),
    "wrong aud": lambda op: logout_token(op, aud="another-client"),
    "wrong iss": lambda op: logout_token(op, iss="http://elsewhere.test"),
    "neither sid nor sub": lambda op: logout_token(op, sid=None, sub=None),
    "expired": lambda op: logout_token(op, iat=int(time.time()) - 600, exp=int(time.time()) - 300),
    "no jti": lambda op: logout_token(op, jti=None),
    "unsigned": lambda op: jwt.encode(
        logout_claims(op), None, algorithm="none", headers=LOGOUT_TYP
    ),
    "garbage": lambda op: "this-is-not-a-jwt",
    "empty": lambda op: "",
}


@pytest.mark.parametrize("variant", list(INVALID))
def test_an_invalid_logout_token_is_rejected_and_the_session_survives(op, alice, variant):
    response = post(INVALID[variant](op))

    assert_rejected(response)
    assert is_signed_in(alice)
    assert alice.get("/members/").status_code == 200
    assert OIDCSession.objects.filter(sid="sid-1").exists()


def test_a_missing_logout_token_is_rejected(op, alice):
    assert_rejected(post(None))
    assert is_signed_in(alice)


def test_a_replayed_logout_token_is_rejected(op):
    first_session = new_session(op, sid="sid-1")
    token = logout_token(op, sid="sid-1", sub=None)
    assert post(token).status_code == 200
    assert not is_signed_in(first_session)
    # The user signs in again and the provider happens to reuse the sid.
    second_session = new_session(op, sid="sid-1")

    assert_rejected(post(token))

    assert is_signed_in(second_session)
    assert OIDCSession.objects.filter(sid="sid-1").count() == 1


def test_get_is_not_allowed(op, alice):
    response = Client().get(URL, {"logout_token": logout_token(op)})
    assert response.status_code == 405
    assert is_signed_in(alice)


# --- front-channel -------------------------------------------------------------------------


FRONT = "/oidc/frontchannel-logout/"


def test_front_channel_logout_ends_the_matching_session(op, alice):
    other = new_session(op, sid="sid-2")

    response = Client().get(FRONT, {"iss": op.issuer, "sid": "sid-1"})

    assert response.status_code == 200
    assert_no_store(response)
    assert response["Content-Security-Policy"] == f"frame-ancestors {op.issuer}"
    assert "X-Frame-Options" not in response  # the provider's page frames this one
    assert not is_signed_in(alice)
    assert is_signed_in(other)


@pytest.mark.parametrize(
    "params",
    [
        {"iss": "http://elsewhere.test", "sid": "sid-1"},
        {"sid": "sid-1"},
        {"iss": "ISSUER"},
        {"iss": "ISSUER", "sid": ""},
    ],
    ids=["wrong-iss", "no-iss", "no-sid", "empty-sid"],
)
def test_front_channel_logout_for_another_issuer_or_without_sid_is_refused(op, alice, params):
    params = {k: (op.issuer if v == "ISSUER" else v) for k, v in params.items()}

    response = Client().get(FRONT, params)

    assert response.status_code == 400
    # The site's policy (no framing at all), not the provider's frame-ancestors.
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert is_signed_in(alice)
    assert OIDCSession.objects.filter(sid="sid-1").exists()
