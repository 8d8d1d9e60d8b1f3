"""Pushed authorization requests (RFC 9126) against the scripted provider.

The real dev IdP's PAR is exercised by tests/oidc/test_devidp_fapi2.py and
tests/oidc/test_devidp_par.py; here the provider does what a real one will not do on
demand: go down, refuse the client, answer without a ``request_uri``.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import pytest

from tests.support.fakeop import basic_auth_header
from tests.support.fapiop import finish_pushed, query_of, start_pushed

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def test_the_browser_carries_only_client_id_and_request_uri(client, fapi_op):
    query, form = start_pushed(client, fapi_op, next="/profile/")
    assert query == {
        "client_id": "site-client",
        "request_uri": "urn:ietf:params:oauth:request_uri:abc",
    }
    assert urlsplit(client.get("/oidc/authenticate/")["Location"]).path == "/auth"
    # Everything else went to the provider, with the client's authentication.
    assert form["response_type"] == "code" and form["code_challenge_method"] == "S256"
    assert {"state", "nonce", "code_challenge", "redirect_uri", "scope"} <= set(form)
    headers, _ = fapi_op.seen_at("/par")[0]
    assert headers["Authorization"] == basic_auth_header()
    response = finish_pushed(client, fapi_op, form)
    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert "_auth_user_id" in client.session


def test_auto_without_the_endpoint_sends_a_plain_request(client, fapi_op, settings):
    settings.OIDC_OP_PAR_ENDPOINT = ""
    response = client.get("/oidc/authenticate/")
    assert {"state", "nonce", "code_challenge"} <= set(query_of(response["Location"]))
    assert fapi_op.count("/par") == 0


def test_use_par_0_never_pushes(client, fapi_op, settings):
    settings.OIDC_USE_PAR = "0"
    response = client.get("/oidc/authenticate/")
    assert "state" in query_of(response["Location"])
    assert fapi_op.count("/par") == 0


def test_use_par_1_without_an_endpoint_is_a_503_in_words(client, fapi_op, settings, caplog):
    settings.OIDC_OP_PAR_ENDPOINT = ""
    settings.OIDC_USE_PAR = "1"
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 503
    assert "names no endpoint for them" in text_of(response)
    assert "OIDC_OP_PAR_ENDPOINT" in caplog.text  # the log line says what to set


def test_a_provider_down_at_par_is_a_502_page_in_words(client, fapi_op):
    fapi_op.par_answer = (503, {"error": "unavailable"}, "application/json", {})
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 502
    assert "could not be reached" in text_of(response)


def test_an_unreachable_par_endpoint_is_a_502(client, fapi_op, settings):
    settings.OIDC_OP_PAR_ENDPOINT = "http://127.0.0.1:9/par"
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 502


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, "invalid_client"), (400, "invalid_request"), (400, "invalid_redirect_uri")],
)
def test_par_refused_as_misconfigured_is_a_503_in_words(client, fapi_op, status, error, caplog):
    fapi_op.par_answer = (status, {"error": error}, "application/json", {})
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 503
    assert "refused this site's sign-in request" in text_of(response)
    assert f"error={error}" in caplog.text and "redirect URI" in caplog.text


def test_par_rate_limited_is_a_502(client, fapi_op):
    fapi_op.par_answer = (429, {"error": "slow_down"}, "application/json", {})
    assert client.get("/oidc/authenticate/").status_code == 502


def test_par_answer_without_request_uri_is_a_502(client, fapi_op):
    fapi_op.par_answer = (201, {"expires_in": 60}, "application/json", {})
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 502
    assert "could not be reached" in text_of(response)


def test_par_for_a_second_provider_uses_its_own_client(client, fapi_op, settings):
    settings.OIDC_OP_ISSUER = "http://another-default.test"  # one issuer, one provider
    settings.OIDC_PROVIDERS = {
        "second": {
            "issuer": fapi_op.issuer,
            "client_id": "second-client",
            "client_secret": "second-secret",
            "discovery": False,
            **fapi_op.endpoints(),
            "use_par": "1",
        }
    }
    response = client.get("/oidc/authenticate/", {"provider": "second"})
    assert query_of(response["Location"])["client_id"] == "second-client"
    headers, form = fapi_op.seen_at("/par")[-1]
    assert headers["Authorization"] == basic_auth_header("second-client", "second-secret")
    assert form["redirect_uri"].endswith("/oidc/callback/second/")
