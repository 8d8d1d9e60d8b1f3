"""ID token validation (OpenID Connect Core 3.1.3.7) and RFC 9207, through the whole callback.

Every rejection must end on the error page (4xx, never 500) with the reason in words, with
nobody signed in and no user created; every acceptance must sign the user in.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from django.contrib.auth import get_user_model

from accounts.models import OIDCIdentity
from accounts.oidc.tokens import REASONS
from tests.support.fakeop import CLIENT_ID, FakeOP, SigningKey
from tests.support.scripted_signin import finish, signed_in, start, use_discovery

pytestmark = pytest.mark.django_db

LONG_SECRET = "a-client-secret-long-enough-for-hs256-0123456789"
UNKNOWN_KEY = "The sign-in token was signed with an unknown key."


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def assert_rejected(client, response, words: str) -> None:
    assert 400 <= response.status_code < 500, response.status_code
    assert response["Content-Type"].startswith("text/html")
    assert words in text_of(response)
    assert "Sign in again" in text_of(response)
    assert not signed_in(client)
    assert client.get("/api/me/").status_code == 401
    assert get_user_model().objects.count() == 0
    assert OIDCIdentity.objects.count() == 0


def assert_accepted(client, response) -> None:
    assert response.status_code == 302, text_of(response)[:2000]
    assert response["Location"] == "/"
    assert signed_in(client)
    me = client.get("/api/me/")
    assert me.status_code == 200
    assert me.json()["sub"] == "sub-alice"


# --- how each case builds its token -----------------------------------------------------
# Each builder gets (op, nonce, settings) and returns the ID token the provider will send.
Builder = Callable[[FakeOP, str, Any], str]


def _claims(**overrides: Any) -> Builder:
    return lambda op, nonce, settings: op.sign(op.claims(nonce=nonce, **overrides))


def _trusting(builder: Builder) -> Builder:
    """The same token, with "another-client" configured as a trusted extra audience."""

    def build(op, nonce, settings):
        settings.OIDC_TRUSTED_AUDIENCES = ["another-client"]
        return builder(op, nonce, settings)

    return build


def _foreign_key_same_kid(op, nonce, settings):
    impostor = SigningKey.rsa(kid=op.keys[0].kid)  # same kid, key not in the JWKS
    return op.sign(op.claims(nonce=nonce), key=impostor)


def _alg_none_listed(op, nonce, settings):
    settings.OIDC_RP_SIGN_ALGO = ["RS256", "none"]
    return jwt.encode(op.claims(nonce=nonce), None, algorithm="none")


def _hs256_by_default(op, nonce, settings):
    settings.OIDC_RP_CLIENT_SECRET = LONG_SECRET
    return op.sign(op.claims(nonce=nonce), secret=LONG_SECRET)


def _hs256_wrong_secret(op, nonce, settings):
    settings.OIDC_RP_SIGN_ALGO = ["HS256"]
    settings.OIDC_RP_CLIENT_SECRET = LONG_SECRET
    return op.sign(op.claims(nonce=nonce), secret="not-the-client-secret-but-just-as-long-0123")


def _rs256_when_only_es256(op, nonce, settings):
    settings.OIDC_RP_SIGN_ALGO = ["ES256"]
    op.keys.append(SigningKey.ec())
    return op.sign(op.claims(nonce=nonce), key=op.keys[0])


def _encrypted(op, nonce, settings):
    """A JWE (five parts): this client registers no encryption key, so it cannot be read."""
    header = base64.urlsafe_b64encode(b'{"alg":"RSA-OAEP","enc":"A256GCM"}').rstrip(b"=")
    return header.decode() + ".ZW5jcnlwdGVkLWtleQ.aXY.Y2lwaGVydGV4dA.dGFn"


def _unknown_kid(op, nonce, settings):
    return op.sign(op.claims(nonce=nonce), headers={"kid": "no-such-kid"})


def _no_kid_two_keys(op, nonce, settings):
    first = op.keys[0]
    op.keys.append(SigningKey.rsa())
    return op.sign(op.claims(nonce=nonce), key=SigningKey(private=first.private, kid=None))


def _hs256_allowed(op, nonce, settings):
    settings.OIDC_RP_SIGN_ALGO = ["HS256"]
    settings.OIDC_RP_CLIENT_SECRET = LONG_SECRET
    return op.sign(op.claims(nonce=nonce), secret=LONG_SECRET)


def _es256_allowed(op, nonce, settings):
    settings.OIDC_RP_SIGN_ALGO = ["ES256"]
    op.keys[:] = [SigningKey.ec()]
    return op.sign(op.claims(nonce=nonce))


def _no_kid_one_fitting_key(op, nonce, settings):
    only_rsa = op.keys[0]
    op.keys.append(SigningKey.ec())  # published too, but cannot have signed an RS256 token
    return op.sign(op.claims(nonce=nonce), key=SigningKey(private=only_rsa.private, kid=None))


def _iss_trailing_slash(op, nonce, settings):
    return op.sign(op.claims(nonce=nonce, iss=op.issuer + "/"))


def _other_nonce(op, nonce, settings):
    return op.sign(op.claims(nonce="x" + nonce))


def _now() -> int:
    return int(time.time())


REJECTED = [
    ("encrypted-jwe", _encrypted, REASONS["malformed"]),
    ("signed-by-key-not-in-jwks", _foreign_key_same_kid, REASONS["bad_signature"]),
    ("alg-none-even-if-listed", _alg_none_listed, REASONS["alg_not_allowed"]),
    ("hs256-not-allowed-by-default", _hs256_by_default, REASONS["alg_not_allowed"]),
    ("hs256-wrong-secret", _hs256_wrong_secret, REASONS["bad_signature"]),
    ("rs256-when-only-es256-allowed", _rs256_when_only_es256, REASONS["alg_not_allowed"]),
    ("iss-different", _claims(iss="https://evil.example"), REASONS["wrong_issuer"]),
    ("iss-trailing-slash", _iss_trailing_slash, REASONS["wrong_issuer"]),
    ("aud-without-client-id", _claims(aud="another-client"), REASONS["wrong_audience"]),
    ("aud-list-without-client-id", _claims(aud=["a", "b"]), REASONS["wrong_audience"]),
    (
        "aud-several-no-azp",
        _trusting(_claims(aud=[CLIENT_ID, "another-client"])),
        REASONS["missing_azp"],
    ),
    (
        "aud-untrusted-extra-audience",
        _claims(aud=[CLIENT_ID, "another-client"], azp=CLIENT_ID),
        REASONS["untrusted_audience"],
    ),
    ("azp-different", _claims(azp="another-client"), REASONS["wrong_azp"]),
    (
        "aud-list-azp-different",
        _trusting(_claims(aud=[CLIENT_ID, "another-client"], azp="another-client")),
        REASONS["wrong_azp"],
    ),
    ("no-exp", _claims(exp=None), REASONS["missing_claim"]),
    (
        "expired-beyond-leeway",
        lambda op, n, s: _claims(iat=_now() - 600, exp=_now() - 31 - 60)(op, n, s),
        REASONS["expired"],
    ),
    ("no-iat", _claims(iat=None), REASONS["missing_claim"]),
    (
        "iat-in-future-beyond-leeway",
        lambda op, n, s: _claims(iat=_now() + 120, exp=_now() + 600)(op, n, s),
        REASONS["issued_in_future"],
    ),
    ("nonce-missing", lambda op, nonce, s: op.sign(op.claims()), REASONS["wrong_nonce"]),
    ("nonce-different", _other_nonce, REASONS["wrong_nonce"]),
    ("no-sub", _claims(sub=None), REASONS["missing_claim"]),
    ("empty-sub", _claims(sub=""), REASONS["missing_claim"]),
    ("unknown-kid", _unknown_kid, UNKNOWN_KEY),
    ("no-kid-two-fitting-keys", _no_kid_two_keys, UNKNOWN_KEY),
]


@pytest.mark.parametrize(
    ("build", "words"),
    [pytest.param(b, w, id=i) for i, b, w in REJECTED],
)
def test_id_token_breaking_a_rule_is_rejected_with_its_reason(client, op, settings, build, words):
    state, nonce, _ = start(client)
    token = build(op, nonce, settings)
    response = finish(client, op, token, state=state)
    assert_rejected(client, response, words)


ACCEPTED = [
    ("hs256-allowed-keyed-with-client-secret", _hs256_allowed),
    ("es256-when-allowed", _es256_allowed),
    (
        "aud-list-with-trusted-extra-and-correct-azp",
        _trusting(_claims(aud=[CLIENT_ID, "another-client"], azp=CLIENT_ID)),
    ),
    ("azp-equal-to-client-id", _claims(azp=CLIENT_ID)),
    (
        "expired-within-leeway",
        lambda op, n, s: _claims(iat=_now() - 600, exp=_now() - 10)(op, n, s),
    ),
    (
        "iat-in-future-within-leeway",
        lambda op, n, s: _claims(iat=_now() + 10, exp=_now() + 600)(op, n, s),
    ),
    ("no-kid-one-fitting-key", _no_kid_one_fitting_key),
]


@pytest.mark.parametrize("build", [pytest.param(b, id=i) for i, b in ACCEPTED])
def test_id_token_following_the_rules_signs_the_user_in(client, op, settings, build):
    state, nonce, _ = start(client)
    token = build(op, nonce, settings)
    response = finish(client, op, token, state=state)
    assert_accepted(client, response)


def test_hs256_token_accepted_only_with_the_allow_list_not_by_the_secret_alone(
    client, op, settings
):
    """The same HMAC token flips from rejected to accepted by OIDC_RP_SIGN_ALGO alone."""
    settings.OIDC_RP_CLIENT_SECRET = LONG_SECRET
    state, nonce, _ = start(client)
    token = op.sign(op.claims(nonce=nonce), secret=LONG_SECRET)
    assert_rejected(client, finish(client, op, token, state=state), REASONS["alg_not_allowed"])
    settings.OIDC_RP_SIGN_ALGO = ["RS256", "HS256"]
    state, nonce, _ = start(client)
    token = op.sign(op.claims(nonce=nonce), secret=LONG_SECRET)
    assert_accepted(client, finish(client, op, token, state=state))


# --- RFC 9207: the iss parameter of the authorization response ---------------------------
def test_callback_iss_different_from_issuer_is_rejected(client, op):
    response = finish(client, op, callback_iss=op.issuer + "/other")
    assert_rejected(client, response, "The sign-in response came from a different provider.")
    assert op.forms == []  # the code was never exchanged


def test_missing_callback_iss_is_rejected_when_the_provider_advertises_it(client, op, settings):
    use_discovery(settings)
    op.extra_metadata = {"authorization_response_iss_parameter_supported": True}
    response = finish(client, op, callback_iss=None)
    assert_rejected(client, response, "The sign-in response did not name its provider.")
    assert op.forms == []


@pytest.mark.parametrize("discovery", [True, False], ids=["discovery", "explicit-endpoints"])
def test_missing_callback_iss_is_accepted_when_not_advertised(client, op, settings, discovery):
    if discovery:
        use_discovery(settings)
        op.extra_metadata = {"authorization_response_iss_parameter_supported": False}
    response = finish(client, op, callback_iss=None)
    assert_accepted(client, response)


def test_advertised_callback_iss_present_and_right_is_accepted(client, op, settings):
    use_discovery(settings)
    op.extra_metadata = {"authorization_response_iss_parameter_supported": True}
    assert_accepted(client, finish(client, op))


# --- the log ------------------------------------------------------------------------------
def test_rejection_log_line_names_the_reason_and_never_the_token_or_code(client, op, caplog):
    state, nonce, _ = start(client)
    token = op.sign(op.claims(nonce=nonce, aud="another-client"))
    caplog.set_level("INFO")
    response = finish(client, op, token, state=state, code="the-secret-authorization-code")
    assert response.status_code == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "accounts.signin"]
    assert any("reason=wrong_audience" in line and "sub=sub-alice" in line for line in lines)
    assert token not in caplog.text
    for part in token.split("."):
        assert part not in caplog.text
    assert "the-secret-authorization-code" not in caplog.text


def test_successful_sign_in_log_never_contains_tokens_or_code(client, op, caplog):
    caplog.set_level("DEBUG")
    state, nonce, _ = start(client)
    token = op.id_token(nonce=nonce)
    response = finish(client, op, token, state=state, code="the-secret-authorization-code")
    assert response.status_code == 302
    _, body, _ = op.token_answer({})
    assert "signed in: iss=" in caplog.text
    for secret in (token, body["access_token"], body["refresh_token"], "the-secret-authorization"):
        assert secret not in caplog.text
