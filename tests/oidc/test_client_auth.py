"""Client authentication on every call that authenticates the client, with the scripted provider.

``private_key_jwt`` (RFC 7523): each call carries a fresh assertion signed with the site's
key and no secret; the provider can check it with ``/oidc/jwks.json``. The two secret
methods keep working as before, ``OIDC_TOKEN_USE_BASIC_AUTH`` included.
"""

from __future__ import annotations

import html
import time

import jwt
import pytest
from django.test import Client

from accounts.oidc import signing_keys
from accounts.oidc.client_auth import ASSERTION_TYPE
from accounts.sync.tokens import ClientCredentials
from tests.support.fakeop import CLIENT_ID, CLIENT_SECRET, basic_auth_header
from tests.support.scripted_signin import callback_url, finish, sign_in, signed_in, start
from tests.support.sessions import expire_access_token, signed_in_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def pkjwt(op, settings, tmp_path):
    """The site authenticates with private_key_jwt and has no client secret at all."""
    settings.OIDC_TOKEN_AUTH_METHOD = "private_key_jwt"
    settings.OIDC_RP_CLIENT_SECRET = ""
    settings.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "keys.pem")
    signing_keys.rotate()  # the operator's key file
    return op


def verify_assertion(form: dict[str, str], op, client: Client) -> dict:
    """Check an assertion as a provider would: with the keys the site publishes."""
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert form["client_id"] == CLIENT_ID
    assert "client_secret" not in form and form["_authorization"] == ""
    header = jwt.get_unverified_header(form["client_assertion"])
    published = {k["kid"]: k for k in client.get("/oidc/jwks.json").json()["keys"]}
    key = jwt.PyJWK(published[header["kid"]])
    claims = jwt.decode(
        form["client_assertion"],
        key.key,
        algorithms=[header["alg"]],
        audience=f"{op.issuer}/token",
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert 0 < claims["exp"] - time.time() <= 60
    return claims


def test_sign_in_with_private_key_jwt_needs_no_secret(client, pkjwt):
    sign_in(client, pkjwt)
    (form,) = pkjwt.forms
    assert form["grant_type"] == "authorization_code"
    verify_assertion(form, pkjwt, Client())


def test_refresh_and_client_credentials_send_assertions_with_unique_jtis(client, pkjwt):
    row = signed_in_session(client, issuer=pkjwt.issuer)
    pkjwt.answer_tokens()
    expire_access_token(row, client.session)
    assert client.get("/api/me/").status_code == 200  # refreshed on the way
    ClientCredentials().token()
    ClientCredentials().token()
    assert [f["grant_type"] for f in pkjwt.forms] == [
        "refresh_token",
        "client_credentials",
        "client_credentials",
    ]
    jtis = [verify_assertion(form, pkjwt, Client())["jti"] for form in pkjwt.forms]
    assert len(set(jtis)) == len(jtis) == 3


def test_introspection_sends_an_assertion_for_the_token_endpoint(client, pkjwt):
    signed_in_session(Client(), issuer=pkjwt.issuer)  # alice exists here
    pkjwt.answer_introspection()
    response = client.get("/api/me/", HTTP_AUTHORIZATION="Bearer at-1")
    assert response.status_code == 200 and response.json()["username"] == "alice"
    (form,) = pkjwt.forms
    assert form["token"] == "at-1"
    verify_assertion(form, pkjwt, Client())  # aud: the token endpoint, not /introspect


def test_an_unusable_key_file_is_a_configuration_error_not_a_provider_outage(
    client, pkjwt, settings, tmp_path, caplog
):
    broken = tmp_path / "broken.pem"
    broken.write_text("not a key")
    settings.OIDC_RP_SIGNING_KEY_FILE = str(broken)
    response = finish(client, pkjwt)
    text = html.unescape(response.content.decode())
    assert response.status_code == 503
    assert "Sign-in is misconfigured" in text
    assert "signing key for the identity provider cannot be used" in text
    assert "identity provider is unavailable" not in text
    assert pkjwt.forms == []  # nothing was sent
    assert not signed_in(client)
    assert "reason=signing_key_unusable" in caplog.text


def test_a_provider_rejecting_the_assertion_says_misconfigured_and_what_to_check(
    client, pkjwt, caplog
):
    state, _, _ = start(client)
    pkjwt.token_answer = lambda form: (401, {"error": "invalid_client"}, "application/json")
    response = client.get(callback_url(state, op=pkjwt))
    assert response.status_code == 503
    assert "Sign-in is misconfigured" in html.unescape(response.content.decode())
    (line,) = [r.getMessage() for r in caplog.records if "reason=invalid_client" in r.getMessage()]
    assert "OIDC_RP_SIGNING_KEY_FILE" in line and "jwks_uri" in line
    assert "OIDC_RP_CLIENT_SECRET" not in line


def test_an_unknown_method_is_a_configuration_error(client, op, settings):
    settings.OIDC_TOKEN_AUTH_METHOD = "client_secret_jwt"
    response = finish(client, op)
    assert response.status_code == 503
    assert "OIDC_TOKEN_AUTH_METHOD" in html.unescape(response.content.decode())
    assert op.forms == []


@pytest.mark.parametrize(
    "method, use_basic, expect_basic",
    [
        ("", True, True),  # the default, as before
        ("", False, False),  # OIDC_TOKEN_USE_BASIC_AUTH=0 still means client_secret_post
        ("client_secret_basic", False, True),  # the new setting wins when set
        ("client_secret_post", True, False),
    ],
)
def test_secret_methods(client, op, settings, method, use_basic, expect_basic):
    settings.OIDC_TOKEN_AUTH_METHOD = method
    settings.OIDC_TOKEN_USE_BASIC_AUTH = use_basic
    sign_in(client, op)
    (form,) = op.forms
    assert "client_assertion" not in form
    if expect_basic:
        assert form["_authorization"] == basic_auth_header()
        assert "client_secret" not in form
    else:
        assert form["_authorization"] == ""
        assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
