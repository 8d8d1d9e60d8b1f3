"""Mix-up defence and per-provider isolation between two providers (RFC 9700 4.4, RFC 9207).

Provider A is ``op`` (the provider ``default``, redirect URI ``/oidc/callback/``), provider
B is ``op_b`` (``OIDC_PROVIDERS``, redirect URI ``/oidc/callback/b/``), each with its own
keys, issuer and client.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import OIDCIdentity, OIDCSession
from tests.api.test_access_tokens import access_token as api_access_token
from tests.sessions.test_backchannel import LOGOUT_TYP, logout_claims
from tests.support.fakeop import CLIENT_ID, basic_auth_header
from tests.support.providers import (
    B_CLIENT_ID,
    B_SLUG,
    answer_with,
    callback,
    sign_in_at_b,
    start_at,
)
from tests.support.scripted_signin import sign_in, signed_in, start
from tests.support.sessions import expire_access_token, is_signed_in

pytestmark = pytest.mark.django_db


def token_requests(*ops) -> int:
    return sum(op.count("/token") for op in ops)


# --- responses at the wrong redirect URI, or naming the wrong issuer ----------------------


def test_b_response_at_a_redirect_uri_is_refused_and_no_code_is_redeemed(client, op, op_b):
    state, nonce, params = start_at(client, B_SLUG)
    assert params["redirect_uri"] == "http://testserver/oidc/callback/b/"
    assert params["client_id"] == B_CLIENT_ID
    answer_with(op_b, op_b.id_token(aud=B_CLIENT_ID, nonce=nonce))
    answer_with(op, op.id_token(nonce=nonce))

    response = callback(client, "/oidc/callback/", state, iss=op_b.issuer)

    assert response.status_code == 400
    assert "came back to another identity provider" in response.content.decode()
    assert token_requests(op, op_b) == 0
    assert not signed_in(client)
    # The state is spent: replayed at B's own redirect URI it is refused too.
    again = callback(client, "/oidc/callback/b/", state, iss=op_b.issuer)
    assert again.status_code == 400
    assert token_requests(op, op_b) == 0


def test_a_response_at_b_redirect_uri_is_refused_too(client, op, op_b):
    state, _, _ = start(client)

    response = callback(client, "/oidc/callback/b/", state, iss=op.issuer)

    assert response.status_code == 400
    assert token_requests(op, op_b) == 0


@pytest.mark.parametrize("started_at", ["default", B_SLUG])
def test_an_iss_naming_the_other_provider_is_refused_before_the_token_request(
    client, op, op_b, started_at
):
    if started_at == "default":
        state, _, _ = start(client)
        path, wrong_iss = "/oidc/callback/", op_b.issuer
    else:
        state, _, _ = start_at(client, B_SLUG)
        path, wrong_iss = "/oidc/callback/b/", op.issuer
    op.answer_tokens(op.id_token())
    op_b.answer_tokens(op_b.id_token(aud=B_CLIENT_ID))

    response = callback(client, path, state, iss=wrong_iss)

    assert response.status_code == 400
    assert "came from a different provider" in response.content.decode()
    assert token_requests(op, op_b) == 0
    assert not signed_in(client)


@pytest.mark.parametrize("signer", ["a-key", "b-key"])
def test_an_id_token_in_a_name_from_b_token_endpoint_is_refused(client, op, op_b, signer):
    state, nonce, _ = start_at(client, B_SLUG)
    claims = op.claims(nonce=nonce, aud=B_CLIENT_ID, sub="sub-mallory")  # iss: provider A
    id_token = op.sign(claims) if signer == "a-key" else op_b.sign(claims)
    answer_with(op_b, id_token)

    response = callback(client, "/oidc/callback/b/", state, iss=op_b.issuer)

    assert response.status_code in (400, 401)
    assert op_b.count("/token") == 1 and op.count("/token") == 0
    assert not signed_in(client)
    assert not OIDCIdentity.objects.filter(subject="sub-mallory").exists()


def test_each_provider_uses_its_own_client_and_the_same_sub_is_two_users(client, op, op_b):
    sign_in(client, op)  # sub-alice at A
    other = Client()
    sign_in_at_b(other, op_b)  # sub-alice at B

    assert op_b.forms[-1]["_authorization"] == basic_auth_header(B_CLIENT_ID, "b-secret")
    assert op_b.forms[-1]["redirect_uri"] == "http://testserver/oidc/callback/b/"
    assert op.forms[-1]["_authorization"] == basic_auth_header(CLIENT_ID, "site-secret")
    identities = OIDCIdentity.objects.filter(subject="sub-alice")
    assert {i.issuer for i in identities} == {op.issuer, op_b.issuer}
    assert len({i.user_id for i in identities}) == 2
    assert other.get("/api/me/").json()["provider"] == B_SLUG
    assert client.get("/api/me/").json()["provider"] == "default"
    assert OIDCSession.objects.get(issuer=op_b.issuer).provider == B_SLUG
    assert other.cookies["oidc_last_provider"].value == B_SLUG
    assert (
        "Signed in through</dt>\n    <dd>Provider B</dd>"
        in other.get("/accounts/profile/").content.decode()
    )


def test_an_unknown_or_default_slug_gets_a_404_page_in_words(client, op, op_b):
    for url in ("/oidc/authenticate/?provider=nope", "/oidc/callback/nope/?state=x&code=c"):
        response = client.get(url)
        assert response.status_code == 404
        assert "no identity provider of that name" in response.content.decode()
    assert client.get("/oidc/callback/default/?state=x&code=c").status_code == 404
    assert token_requests(op, op_b) == 0


# --- refresh and RP-initiated logout go to the session's provider -------------------------


def test_refresh_and_logout_of_a_b_session_go_to_b(client, op, op_b):
    sign_in_at_b(client, op_b)
    expire_access_token(OIDCSession.objects.get(), client.session)
    op_b.answer_tokens(None)

    assert client.get("/members/").status_code == 200

    assert op_b.forms[-1]["grant_type"] == "refresh_token"
    assert op.count("/token") == 0
    response = client.post("/oidc/logout/")
    assert response["Location"].startswith(f"{op_b.issuer}/session/end?")
    assert f"client_id={B_CLIENT_ID}" in response["Location"]


# --- back-channel logout and bearer tokens, routed by issuer -----------------------------


def logout_token(signer, *, iss: str, aud: str, **claims) -> str:
    payload = logout_claims(signer, iss=iss, aud=aud, **claims)
    return signer.sign(payload, headers=LOGOUT_TYP)


def test_a_logout_token_signed_by_b_naming_a_session_of_a_ends_nothing(client, op, op_b):
    sign_in(client, op, sid="sid-1")  # Alice's session at A

    genuine_b = logout_token(op_b, iss=op_b.issuer, aud=B_CLIENT_ID)  # valid, but B's
    in_a_name = logout_token(op_b, iss=op.issuer, aud=CLIENT_ID)  # B's key, A's name

    assert Client().post("/oidc/backchannel-logout/", {"logout_token": genuine_b}).json() == {
        "ended_sessions": 0
    }
    refused = Client().post("/oidc/backchannel-logout/", {"logout_token": in_a_name})
    assert refused.status_code == 400
    assert is_signed_in(client)
    assert OIDCSession.objects.filter(sid="sid-1", issuer=op.issuer).exists()


def test_a_logout_token_of_b_ends_b_sessions(client, op, op_b):
    sign_in_at_b(client, op_b, sid="sid-1")
    a_client = Client()
    sign_in(a_client, op, sid="sid-1")

    token = logout_token(op_b, iss=op_b.issuer, aud=B_CLIENT_ID)
    response = Client().post("/oidc/backchannel-logout/", {"logout_token": token})

    assert response.json() == {"ended_sessions": 1}
    assert not is_signed_in(client)
    assert is_signed_in(a_client)


def test_a_logout_token_from_an_unconfigured_issuer_is_refused_in_words(op, op_b):
    token = logout_token(op_b, iss="https://stranger.example", aud=B_CLIENT_ID)

    response = Client().post("/oidc/backchannel-logout/", {"logout_token": token})

    assert response.status_code == 400
    assert response.json()["error_description"] == (
        "The token was issued by an identity provider this site does not know."
    )
    assert op.count("/jwks") == 0 and op_b.count("/jwks") == 0


def access_token(signer, *, iss: str, aud: str, sub: str = "sub-bea") -> str:
    """An RFC 9068 JWT access token for this site's API."""
    return api_access_token(signer, iss=iss, aud=aud, sub=sub)


def test_a_bearer_token_from_an_unconfigured_issuer_is_refused_in_words(op, op_b):
    token = access_token(op_b, iss="https://stranger.example", aud=B_CLIENT_ID)

    response = Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 401
    assert response.json()["message"] == (
        "This access token was issued by an identity provider this site does not know."
    )
    assert op.requests == [] and op_b.requests == []  # no key fetch, no introspection


def test_a_jwt_access_token_of_b_is_checked_with_b_keys_and_names_b(op, op_b):
    user = get_user_model().objects.create(username="bea")
    OIDCIdentity.objects.create(user=user, issuer=op_b.issuer, subject="sub-bea", provider=B_SLUG)

    response = Client().get(
        "/api/me/",
        HTTP_AUTHORIZATION=f"Bearer {access_token(op_b, iss=op_b.issuer, aud=B_CLIENT_ID)}",
    )

    assert response.status_code == 200, response.content
    assert (response.json()["username"], response.json()["provider"]) == ("bea", B_SLUG)
    assert op.requests == [] and op_b.count("/jwks") == 1
    # B's key in A's name: checked with A's keys, refused.
    forged = access_token(op_b, iss=op.issuer, aud=CLIENT_ID, sub="sub-alice")
    refused = Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert refused.status_code == 401


def test_an_opaque_bearer_token_goes_to_the_default_provider_only(op, op_b):
    op.answer_introspection(sub="sub-nobody")

    Client().get("/api/me/", HTTP_AUTHORIZATION="Bearer opaque-token")

    assert op.count("/introspect") == 1 and op_b.count("/introspect") == 0


def test_front_channel_logout_ends_only_sessions_of_the_named_issuer(client, op, op_b):
    sign_in(client, op, sid="sid-1")
    at_b = Client()
    sign_in_at_b(at_b, op_b, sid="sid-1")

    response = Client().get("/oidc/frontchannel-logout/", {"iss": op_b.issuer, "sid": "sid-1"})

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == f"frame-ancestors {op_b.issuer}"
    assert not is_signed_in(at_b)
    assert is_signed_in(client)


def test_switching_a_provider_off_ends_its_sessions_at_their_next_refresh(
    client, op, op_b, settings
):
    sign_in_at_b(client, op_b)
    settings.OIDC_PROVIDERS = {B_SLUG: {**settings.OIDC_PROVIDERS[B_SLUG], "enabled": False}}
    expire_access_token(OIDCSession.objects.get(), client.session)

    response = client.get("/members/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/signin/")
    assert not is_signed_in(client)
    assert op_b.count("/token") == 1  # the sign-in's only: no refresh at a switched-off provider
