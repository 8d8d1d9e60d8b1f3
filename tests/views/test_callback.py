"""The callback: state, PKCE, client authentication, next, the session, userinfo, /api/me/."""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import socket
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.models import OIDCIdentity, OIDCSession
from accounts.sessions import token_store
from tests.support.fakeop import CLIENT_ID, CLIENT_SECRET, basic_auth_header
from tests.support.scripted_signin import callback_url, finish, sign_in, signed_in, start

pytestmark = pytest.mark.django_db

User = get_user_model()


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def assert_error_page(client, response, words: str, status: int = 400) -> None:
    assert response.status_code == status
    assert words in text_of(response)
    assert "Sign in again" in text_of(response)
    assert not signed_in(client)
    assert client.get("/api/me/").status_code == 401


def closed_port_url(path: str = "/token") -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# --- state ---------------------------------------------------------------------------------
def test_callback_without_state_is_rejected(client, op):
    start(client)
    op.answer_tokens(op.id_token())
    response = client.get(callback_url(None, op=op))
    assert_error_page(client, response, "did not say which sign-in it answers")
    assert op.forms == []


def test_callback_with_a_state_from_another_browser_is_rejected(client, op):
    foreign_state, _, _ = start(Client())
    start(client)  # this browser has a sign-in of its own in progress
    response = finish(client, op, state=foreign_state)
    assert_error_page(client, response, "does not match a sign-in started in this browser")
    assert op.forms == []
    assert User.objects.count() == 0


def test_replayed_callback_is_rejected_even_when_its_first_use_failed(client, op):
    state, nonce, _ = start(client)
    bad = op.sign(op.claims(nonce=nonce, aud="another-client"))
    assert finish(client, op, bad, state=state).status_code == 400
    good = op.sign(op.claims(nonce=nonce))
    response = finish(client, op, good, state=state)
    assert_error_page(client, response, "may have been used already")
    assert len(op.forms) == 1  # the second use never reached the token endpoint


def test_expired_state_is_rejected(client, op, settings):
    settings.OIDC_STATE_TTL = 60
    state, nonce, _ = start(client)
    session = client.session
    session["oidc_states"][state]["created"] = time.time() - 61
    session.save()
    response = finish(client, op, op.id_token(nonce=nonce), state=state)
    assert_error_page(client, response, "This sign-in took too long and has expired.")
    assert op.forms == []


def test_state_just_within_its_lifetime_is_accepted(client, op, settings, monkeypatch):
    from accounts.oidc import authorization

    settings.OIDC_STATE_TTL = 60
    state, nonce, _ = start(client)
    real_time = time.time
    monkeypatch.setattr(authorization, "time", type("T", (), {"time": lambda: real_time() + 50}))
    response = finish(client, op, op.id_token(nonce=nonce), state=state)
    assert response.status_code == 302
    assert signed_in(client)


def test_state_expires_by_the_clock(client, op, settings, monkeypatch):
    from accounts.oidc import authorization

    settings.OIDC_STATE_TTL = 60
    state, nonce, _ = start(client)
    real_time = time.time
    monkeypatch.setattr(authorization, "time", type("T", (), {"time": lambda: real_time() + 61}))
    response = finish(client, op, op.id_token(nonce=nonce), state=state)
    assert_error_page(client, response, "This sign-in took too long and has expired.")


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["in-order", "reversed"])
def test_two_tabs_both_sign_in_in_either_order(client, op, order):
    tabs = [start(client, next="/members/"), start(client, next="/accounts/profile/")]
    landing = ["/members/", "/accounts/profile/"]
    for index in order:
        state, nonce, _ = tabs[index]
        response = finish(client, op, op.id_token(nonce=nonce), state=state)
        assert response.status_code == 302
        assert response["Location"] == landing[index]
        assert signed_in(client)
    assert User.objects.count() == 1


def test_access_denied_from_the_provider_shows_words_and_offers_sign_in_again(client, op):
    state, _, _ = start(client)
    response = client.get(f"/oidc/callback/?error=access_denied&state={state}")
    assert_error_page(client, response, "You cancelled the sign-in")
    assert "Sign-in was cancelled" in text_of(response)
    assert 'href="/oidc/authenticate/"' in text_of(response)
    assert op.forms == []
    # The state is spent: the same answer cannot be replayed into a sign-in.
    assert state not in client.session.get("oidc_states", {})


def test_reload_of_the_callback_after_sign_in_redirects_as_already_signed_in(client, op):
    state, nonce, _ = start(client)
    url = callback_url(state, op=op)
    finish(client, op, op.id_token(nonce=nonce), state=state)
    assert signed_in(client)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert "You are already signed in." in [str(m) for m in get_messages(response.wsgi_request)]
    assert signed_in(client)
    assert len(op.forms) == 1  # the code was not exchanged twice


# --- PKCE and client authentication -----------------------------------------------------
def test_pkce_challenge_is_s256_of_the_verifier_sent_to_the_token_endpoint(client, op):
    state, nonce, params = start(client)
    assert params["code_challenge_method"] == "S256"
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://testserver/oidc/callback/"
    assert set(params["scope"].split()) >= {"openid", "email", "profile"}
    sign_in(client, op, state=state, id_token=op.id_token(nonce=nonce))
    form = op.forms[0]
    verifier = form["code_verifier"]
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == params["code_challenge"]
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == params["redirect_uri"]


def test_each_sign_in_has_its_own_state_nonce_and_challenge(client):
    first = start(client)
    second = start(client)
    assert first[0] != second[0] and first[1] != second[1]
    assert first[2]["code_challenge"] != second[2]["code_challenge"]


def test_token_request_authenticates_the_client_with_http_basic(client, op):
    sign_in(client, op)
    form = op.forms[0]
    assert form["_authorization"] == basic_auth_header()
    assert "client_secret" not in form


# --- next ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("/members/", "/members/"),
        ("/members/?tab=2", "/members/?tab=2"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("///evil.example", "/"),
        ("http://testserver.evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_is_kept_only_for_same_site_paths(client, op, next_url, landing):
    state, nonce, _ = start(client, next=next_url)
    response = finish(client, op, op.id_token(nonce=nonce), state=state)
    assert response.status_code == 302
    assert response["Location"] == landing


# --- the session ------------------------------------------------------------------------
def test_session_key_rotates_at_sign_in(client, op):
    state, nonce, _ = start(client)
    before = client.session.session_key
    assert before
    sign_in(client, op, state=state, id_token=op.id_token(nonce=nonce))
    after = client.session.session_key
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()


def test_a_first_sign_in_reads_no_previous_oidc_session_row(client, op):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    state, nonce, _ = start(client)
    with CaptureQueriesContext(connection) as queries:
        sign_in(client, op, state=state, id_token=op.id_token(nonce=nonce))
    reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "accounts_oidcsession"')]
    assert reads == [] and OIDCSession.objects.count() == 1


def test_signing_in_again_in_the_same_session_replaces_its_oidc_session_row(client, op):
    state, nonce, _ = start(client)
    sign_in(client, op, state=state, id_token=op.id_token(nonce=nonce, sid="first"))
    first = OIDCSession.objects.get()
    state, nonce, _ = start(client)
    sign_in(client, op, state=state, id_token=op.id_token(nonce=nonce, sid="second"))
    row = OIDCSession.objects.get()  # one row: the first went with its rotated session key
    assert row.pk != first.pk and row.sid == "second"
    assert row.session_key == client.session.session_key


def test_tokens_expiry_and_sid_are_stored_in_the_oidc_session(client, op):
    state, nonce, _ = start(client)
    token = op.id_token(nonce=nonce, sid="provider-session-7")
    op.answer_tokens(token, expires_in=600)
    _, body, _ = op.token_answer({})
    op.answer_userinfo({"sub": "sub-alice"})
    before = time.time()
    response = client.get(callback_url(state, op=op))
    assert response.status_code == 302
    row = OIDCSession.objects.get()
    assert row.session_key == client.session.session_key
    assert row.user == User.objects.get()
    assert (row.issuer, row.subject, row.sid) == (op.issuer, "sub-alice", "provider-session-7")
    assert token_store.read(row, "id_token") == token
    assert token_store.read(row, "access_token") == body["access_token"]
    assert token_store.read(row, "refresh_token") == body["refresh_token"]
    assert before + 599 <= row.access_expires_at.timestamp() <= time.time() + 601


def test_token_endpoint_outage_gives_a_502_page_in_words(client, op, settings):
    settings.OIDC_OP_TOKEN_ENDPOINT = closed_port_url()
    response = finish(client, op)
    assert_error_page(client, response, "could not be reached", status=502)
    assert "The identity provider is unavailable" in text_of(response)
    assert User.objects.count() == 0


def test_token_endpoint_server_error_gives_a_502_page(client, op):
    state, _, _ = start(client)
    op.token_answer = lambda form: (500, "boom", "text/plain")
    op.answer_userinfo({"sub": "sub-alice"})
    response = client.get(callback_url(state, op=op))
    assert_error_page(client, response, "could not be reached", status=502)


def test_token_endpoint_refusing_the_code_gives_a_4xx_page(client, op):
    state, _, _ = start(client)
    response = client.get(callback_url(state, op=op))  # nothing scripted: invalid_grant
    assert 400 <= response.status_code < 500
    assert "Please sign in again" in text_of(response)
    assert not signed_in(client)


# --- userinfo ---------------------------------------------------------------------------
def test_userinfo_about_a_different_sub_is_rejected(client, op):
    response = finish(client, op, userinfo={"sub": "sub-mallory", "email": "m@example.com"})
    assert_error_page(client, response, "returned details of a different user")
    assert User.objects.count() == 0


def test_userinfo_without_sub_is_rejected(client, op):
    response = finish(client, op, userinfo={"email": "alice@example.com"})
    assert_error_page(client, response, "returned details of a different user")


def test_signed_userinfo_is_verified_and_merged(client, op):
    signed = op.sign(
        {
            "iss": op.issuer,
            "aud": CLIENT_ID,
            "sub": "sub-alice",
            "email": "alice@work.example",
            "groups": ["app-members", "app-staff"],
        }
    )
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce))
    op.answer_userinfo(signed, "application/jwt")
    response = client.get(callback_url(state, op=op))
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "alice@work.example"
    assert user.is_staff
    assert op.count("/me") == 1


def test_signed_userinfo_without_iss_and_aud_is_accepted(client, op):
    """OIDC Core 5.3.2: a signed userinfo SHOULD, not MUST, carry iss and aud."""
    signed = op.sign({"sub": "sub-alice", "email": "alice@signed.example"})
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce))
    op.answer_userinfo(signed, "application/jwt")
    response = client.get(callback_url(state, op=op))
    assert response.status_code == 302
    assert User.objects.get().email == "alice@signed.example"


def test_signed_userinfo_naming_another_audience_is_rejected(client, op):
    signed = op.sign({"sub": "sub-alice", "aud": "someone-else", "iss": op.issuer})
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce))
    op.answer_userinfo(signed, "application/jwt")
    response = client.get(callback_url(state, op=op))
    assert_error_page(client, response, "issued for a different application")
    assert User.objects.count() == 0


def test_basic_auth_form_urlencodes_client_id_and_secret(client, op, settings):
    """RFC 6749 2.3.1: special characters are form-urlencoded before base64."""
    settings.OIDC_RP_CLIENT_SECRET = "s3cr:t/with+spaces &"
    sign_in(client, op)
    assert op.forms[0]["_authorization"] == basic_auth_header(secret="s3cr%3At%2Fwith%2Bspaces+%26")


def test_signed_userinfo_with_a_bad_signature_is_rejected(client, op):
    from tests.support.fakeop import SigningKey

    impostor = SigningKey.rsa(kid=op.keys[0].kid)
    signed = op.sign({"iss": op.issuer, "aud": CLIENT_ID, "sub": "sub-alice"}, key=impostor)
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce))
    op.answer_userinfo(signed, "application/jwt")
    response = client.get(callback_url(state, op=op))
    assert_error_page(client, response, "signature is not valid")
    assert User.objects.count() == 0


def test_signed_userinfo_about_a_different_sub_is_rejected(client, op):
    signed = op.sign({"iss": op.issuer, "aud": CLIENT_ID, "sub": "sub-mallory"})
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce))
    op.answer_userinfo(signed, "application/jwt")
    response = client.get(callback_url(state, op=op))
    assert_error_page(client, response, "returned details of a different user")


def test_no_userinfo_request_when_fetching_is_off(client, op, settings):
    settings.OIDC_FETCH_USERINFO = False
    sign_in(client, op, userinfo={"sub": "sub-alice", "email": "other@example.com"})
    assert op.count("/me") == 0
    assert User.objects.get().email == "alice@example.com"


def test_userinfo_claims_override_id_token_claims(client, op):
    sign_in(
        client,
        op,
        userinfo={"sub": "sub-alice", "email": "alice@work.example", "given_name": "Alicia"},
    )
    assert op.count("/me") == 1
    user = User.objects.get()
    assert (user.email, user.first_name, user.last_name) == (
        "alice@work.example",
        "Alicia",
        "Liddell",
    )


def test_userinfo_refusing_the_access_token_gives_an_error_page(client, op):
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce))
    response = client.get(callback_url(state, op=op))  # userinfo unscripted: 401
    assert 400 <= response.status_code < 600 and response.status_code != 500
    assert "refused to share your details" in text_of(response)
    assert not signed_in(client)


# --- /api/me/ ------------------------------------------------------------------------------
def test_api_me_signed_out_is_401_json(client):
    response = client.get("/api/me/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] and body["message"]


def test_api_me_signed_in_gives_the_interface_fields(client, op):
    sign_in(client, op, groups=["app-members", "app-staff", "other"])
    response = client.get("/api/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["sub"] == "sub-alice"
    assert body["iss"] == op.issuer
    assert body["groups"] == ["app-members", "app-staff"]


def test_api_me_with_a_bearer_token_issued_to_the_site(client, op):
    sign_in(client, op)
    op.answer_introspection(sub="sub-alice")
    api = Client()
    response = api.get("/api/me/", HTTP_AUTHORIZATION="Bearer some-access-token")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert response.json()["sub"] == "sub-alice"
    introspection = op.forms[-1]
    assert introspection["token"] == "some-access-token"
    assert introspection["_authorization"] == basic_auth_header()  # the site authenticates


def test_api_me_bearer_answer_is_cached_under_the_token_hash(client, op):
    sign_in(client, op)
    op.answer_introspection(sub="sub-alice")
    for _ in range(3):
        assert Client().get("/api/me/", HTTP_AUTHORIZATION="Bearer tok").status_code == 200
    assert op.count("/introspect") == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"client_id": "another-client", "aud": None},
        {"client_id": None, "aud": ["another-client"]},
        {"active": False},
        {"iss": "https://evil.example"},
    ],
    ids=["other-client", "other-audience", "inactive", "other-issuer"],
)
def test_api_me_refuses_a_bearer_token_not_valid_for_this_site(client, op, answer):
    sign_in(client, op)
    op.answer_introspection(**answer)
    response = Client().get("/api/me/", HTTP_AUTHORIZATION="Bearer token-for-someone-else")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_api_me_accepts_a_token_naming_the_site_in_its_audience(client, op):
    sign_in(client, op)
    op.answer_introspection(client_id="a-gateway", aud=["a-gateway", CLIENT_ID])
    assert Client().get("/api/me/", HTTP_AUTHORIZATION="Bearer tok").status_code == 200


def test_api_me_without_introspection_refuses_bearer_tokens_in_words(client, op, settings):
    settings.OIDC_OP_INTROSPECTION_ENDPOINT = ""
    response = Client().get("/api/me/", HTTP_AUTHORIZATION="Bearer tok")
    assert response.status_code == 401
    assert "offers no introspection" in response.json()["message"]


def test_api_me_with_a_token_without_an_end_user_is_a_machine_and_refused_403(client, op):
    op.answer_introspection(sub=None)  # client credentials: the client's own token
    response = Client().get("/api/me/", HTTP_AUTHORIZATION="Bearer machine-token")
    assert response.status_code == 403
    assert response.json()["reason"] == "user_required"
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_api_me_with_a_bearer_token_of_a_user_unknown_here_is_401_when_not_provisioning(
    client, op, settings
):
    settings.OIDC_CREATE_USER = False
    op.answer_introspection(sub="sub-nobody")
    response = client.get("/api/me/", HTTP_AUTHORIZATION="Bearer token-of-a-stranger")
    assert response.status_code == 401
    body = response.json()
    assert (body["error"], body["reason"]) == ("invalid_token", "not_provisioned")
    assert "no account on this site" in body["message"]
    assert OIDCIdentity.objects.count() == 0


def test_api_me_with_a_bearer_token_of_a_new_subject_creates_the_user(client, op):
    op.answer_introspection(sub="sub-newcomer", preferred_username="newcomer")
    response = client.get("/api/me/", HTTP_AUTHORIZATION="Bearer token-of-a-newcomer")
    assert response.status_code == 200
    assert response.json()["sub"] == "sub-newcomer"
    identity = OIDCIdentity.objects.get(subject="sub-newcomer")
    assert identity.issuer == op.issuer


def test_api_me_with_an_unknown_bearer_token_is_401_json(client, op):
    sign_in(client, op)
    op.introspection_answer = None  # the provider knows no such token: inactive
    response = Client().get("/api/me/", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_token"
    assert body["message"]


def test_token_endpoint_refusing_the_client_is_a_configuration_error_not_an_outage(
    client, op, caplog
):
    state, _, _ = start(client)
    op.token_answer = lambda form: (401, {"error": "invalid_client"}, "application/json")
    response = client.get(callback_url(state, op=op))
    assert response.status_code == 503
    page = html.unescape(response.content.decode())
    assert "Sign-in is misconfigured" in page
    assert "could not be reached" not in page
    assert "_auth_user_id" not in client.session
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines  # one line for the event, not one per layer
    assert "reason=invalid_client" in lines[0]
    assert "check OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET" in lines[0]
    assert CLIENT_SECRET not in lines[0]
