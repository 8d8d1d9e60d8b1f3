"""The JWKS cache (fetch once, rotate, rate-limited refetch, outages) and discovery."""

from __future__ import annotations

import html
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.support.fakeop import SigningKey
from tests.support.scripted_signin import finish, sign_in, signed_in, start, use_discovery

pytestmark = pytest.mark.django_db

DISCOVERY = "/.well-known/openid-configuration"


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def closed_port_url(path: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def test_two_sign_ins_fetch_the_jwks_once(op):
    sign_in(Client(), op)
    sign_in(Client(), op)
    assert op.count("/jwks") == 1


def test_rotated_key_is_picked_up_with_exactly_one_refetch(op):
    sign_in(Client(), op)
    assert op.count("/jwks") == 1
    op.keys.insert(0, SigningKey.rsa())  # the provider publishes a new key and signs with it
    sign_in(Client(), op)
    assert op.count("/jwks") == 2
    sign_in(Client(), op)  # the new key is now cached
    assert op.count("/jwks") == 2


def test_key_withdrawn_by_the_provider_is_refused_once_the_cache_is_refreshed(op, settings):
    old = op.keys[0]
    sign_in(Client(), op)
    op.keys[:] = [SigningKey.rsa()]
    settings.OIDC_JWKS_CACHE_TTL = 0  # the cached set is stale: the next sign-in refetches
    client = Client()
    state, nonce, _ = start(client)
    response = finish(client, op, op.sign(op.claims(nonce=nonce), key=old), state=state)
    assert response.status_code == 400
    assert "signed with an unknown key" in text_of(response)
    assert not signed_in(client)
    assert op.count("/jwks") >= 2


def test_an_id_token_with_an_unknown_kid_refetches_once_per_sign_in(op):
    for _ in range(3):
        client = Client()
        state, nonce, _ = start(client)
        token = op.sign(op.claims(nonce=nonce), headers={"kid": "bogus-kid"})
        response = finish(client, op, token, state=state)
        assert response.status_code == 400
        assert "signed with an unknown key" in text_of(response)
    # The first sign-in's own fetch counts as its refetch; each later one refetches once:
    # a token from the token endpoint is the provider's word that it has a new key.
    assert op.count("/jwks") == 3


def test_concurrent_sign_ins_with_a_new_key_share_one_refetch(op, settings):
    sign_in(Client(), op)
    op.keys.insert(0, SigningKey.rsa())
    op.jwks_delay = 0.3  # the refetch is slow: every sign-in asks while it runs

    def validate(_: int) -> str:
        from accounts.oidc import tokens

        try:
            return tokens.validate_id_token(op.id_token(), nonce=None)["sub"]
        finally:
            from django.db import connection

            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        subjects = list(pool.map(validate, range(5)))
    assert subjects == ["sub-alice"] * 5
    assert op.count("/jwks") == 2  # the sign-in's first fetch, then one shared refetch


def _post_logout_token_with_random_kid(op) -> int:
    from tests.sessions.test_backchannel import logout_claims

    token = op.sign(logout_claims(op), headers={"kid": uuid.uuid4().hex, "typ": "logout+jwt"})
    return Client().post("/oidc/backchannel-logout/", {"logout_token": token}).status_code


def test_logout_tokens_with_random_kids_cannot_block_sign_in_after_a_rotation(op):
    sign_in(Client(), op)
    assert op.count("/jwks") == 1
    assert [_post_logout_token_with_random_kid(op) for _ in range(50)] == [400] * 50
    assert op.count("/jwks") == 2  # the outsiders' budget: one refetch, whatever the kids
    op.keys.insert(0, SigningKey.rsa())  # the provider rotates its key
    sign_in(Client(), op)
    assert op.count("/jwks") == 3  # exactly one fetch for the sign-in with the new key


def test_an_outsider_kid_refetches_at_most_once_per_interval(op, settings):
    settings.OIDC_JWKS_REFETCH_INTERVAL = 30
    sign_in(Client(), op)
    from tests.sessions.test_backchannel import logout_claims

    token = op.sign(logout_claims(op), headers={"kid": "same-kid", "typ": "logout+jwt"})
    for _ in range(3):
        assert (
            Client().post("/oidc/backchannel-logout/", {"logout_token": token}).status_code == 400
        )
    assert op.count("/jwks") == 2


def test_a_logout_token_signed_with_a_new_key_is_accepted_after_one_refetch(op):
    from tests.sessions.test_backchannel import logout_claims, new_session

    alice = new_session(op, sid="sid-1")
    sign_in(Client(), op)
    fetches = op.count("/jwks")
    op.keys.insert(0, SigningKey.rsa())
    token = op.sign(logout_claims(op), headers={"typ": "logout+jwt"})
    assert Client().post("/oidc/backchannel-logout/", {"logout_token": token}).status_code == 200
    assert op.count("/jwks") == fetches + 1
    assert "_auth_user_id" not in alice.session


def test_jwks_down_while_the_key_rotates_refuses_in_words_then_recovers(op, caplog):
    sign_in(Client(), op)
    op.keys.insert(0, SigningKey.rsa())
    op.jwks_down = True
    client = Client()
    response = finish(client, op)
    assert response.status_code == 502
    assert "new key that this site could not fetch" in text_of(response)
    assert not signed_in(client)
    assert any("reason=jwks_unavailable" in r.getMessage() for r in caplog.records)
    op.jwks_down = False  # the endpoint is back: the very next sign-in fetches the new key
    sign_in(Client(), op)
    assert op.count("/jwks") == 3


def test_jwks_down_with_keys_cached_still_signs_in(op, settings):
    sign_in(Client(), op)
    settings.OIDC_JWKS_CACHE_TTL = 0  # the cached keys are stale from now on
    op.jwks_down = True
    sign_in(Client(), op)
    assert op.count("/jwks") == 2  # it did try


def test_jwks_down_and_nothing_cached_gives_an_error_page_not_500(client, op):
    op.jwks_down = True
    response = finish(client, op)
    assert response.status_code == 502
    assert "could not be reached" in text_of(response)
    assert "Sign in again" in text_of(response)
    assert not signed_in(client)
    assert get_user_model().objects.count() == 0


def test_jwks_unreachable_and_nothing_cached_gives_an_error_page(client, op, settings):
    settings.OIDC_OP_JWKS_ENDPOINT = closed_port_url("/jwks")
    response = finish(client, op)
    assert response.status_code == 502
    assert "could not be reached" in text_of(response)
    assert not signed_in(client)


def test_jwks_not_a_key_set_gives_an_error_page(client, op, monkeypatch):
    original = op.handle

    def handle(method, path, headers, body):
        if path == "/jwks":
            return 200, {"keys": "nope"}, "application/json"
        return original(method, path, headers, body)

    monkeypatch.setattr(op, "handle", handle)
    response = finish(client, op)
    assert response.status_code == 502
    assert "keys could not be read" in text_of(response)


# --- discovery -----------------------------------------------------------------------------
def test_discovery_document_naming_another_issuer_is_a_configuration_error(
    client, op, settings, caplog
):
    use_discovery(settings)
    op.extra_metadata = {"issuer": op.issuer + "/"}
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 503
    page = text_of(response)
    assert "Sign-in is misconfigured" in page
    assert "does not match this site's settings" in page
    assert "could not be reached" not in page
    assert not signed_in(client)
    [record] = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert "reason=discovery_issuer_mismatch" in record.getMessage()
    assert f"issuer='{op.issuer}/'" in record.getMessage()


def test_discovery_document_is_fetched_once_for_two_sign_ins(op, settings):
    use_discovery(settings)
    sign_in(Client(), op)
    sign_in(Client(), op)
    assert op.count(DISCOVERY) == 1
    assert op.count("/token") == 2
    assert op.count("/jwks") == 1


def test_discovery_endpoints_are_used_when_no_endpoint_is_set(client, op, settings):
    use_discovery(settings)
    op.extra_metadata = {"authorization_endpoint": f"{op.issuer}/auth?realm=main"}
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{op.issuer}/auth?realm=main&response_type=code&")


def test_explicit_endpoint_settings_win_over_discovery(client, op, settings):
    settings.OIDC_OP_DISCOVERY = True  # the op fixture's explicit endpoints stay set
    elsewhere = closed_port_url("")
    op.extra_metadata = {
        "authorization_endpoint": f"{elsewhere}/auth",
        "token_endpoint": f"{elsewhere}/token",
        "userinfo_endpoint": f"{elsewhere}/me",
        "jwks_uri": f"{elsewhere}/jwks",
        "authorization_response_iss_parameter_supported": True,
    }
    response = client.get("/oidc/authenticate/")
    assert response["Location"].startswith(f"{op.issuer}/auth?")
    sign_in(client, op)
    assert op.count(DISCOVERY) == 1  # consulted, for what the settings do not say
    assert (op.count("/token"), op.count("/me"), op.count("/jwks")) == (1, 1, 1)


def test_discovery_unavailable_gives_an_error_page(client, op, settings):
    use_discovery(settings)
    settings.OIDC_OP_ISSUER = closed_port_url("")
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 502
    assert "could not be reached" in text_of(response)
