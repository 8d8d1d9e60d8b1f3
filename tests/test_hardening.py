"""Edges found in review: stale discovery, missing or absurd lifetimes, a busy lock, logs."""

from __future__ import annotations

import logging
import time

import pytest
from django.core.cache import cache

from accounts.models import OIDCSession
from accounts.security import locks
from accounts.sessions.refresh import lock_key
from tests.sessions.test_backchannel import logout_token, post
from tests.support.scripted_signin import callback_url, sign_in, start, use_discovery

pytestmark = pytest.mark.django_db


def sign_in_with_token_answer(client, op, *, id_claims=None, **token_fields):
    """Sign in with a token answer of exactly these fields (None leaves a field out)."""
    state, nonce, _ = start(client)
    claims = op.claims(nonce=nonce, **(id_claims or {}))
    body = {
        "access_token": "at-1",
        "token_type": "Bearer",
        "refresh_token": "rt-1",
        "expires_in": 300,
        "id_token": op.sign(claims),
        **token_fields,
    }
    body = {k: v for k, v in body.items() if v is not None}
    op.token_answer = lambda form: (200, body, "application/json")
    op.answer_userinfo({k: claims[k] for k in ("sub", "email", "preferred_username")})
    response = client.get(callback_url(state, op=op))
    assert response.status_code == 302, response.content[:500]


def test_sign_in_works_on_the_cached_discovery_document_while_discovery_is_down(
    client, op, settings
):
    use_discovery(settings)
    settings.OIDC_DISCOVERY_CACHE_TTL = 0  # every sign-in wants a fresh document
    sign_in(client, op)
    op.discovery_down = True

    client.logout()
    sign_in(client, op)

    assert op.count("/.well-known/openid-configuration") >= 2  # it did try again


def test_without_expires_in_the_access_token_expires_with_the_id_token(client, op):
    exp = int(time.time()) + 3600
    sign_in_with_token_answer(client, op, id_claims={"exp": exp}, expires_in=None)
    row = OIDCSession.objects.get()
    assert row.access_expires_at.timestamp() == exp


def test_an_absurd_expires_in_is_clamped_not_a_server_error(client, op):
    sign_in_with_token_answer(client, op, expires_in=10**18)
    row = OIDCSession.objects.get()
    assert row.access_expires_at.year < 9999
    assert client.get("/members/").status_code == 200


def test_a_logout_token_with_an_absurd_exp_is_handled_without_a_server_error(op):
    response = post(logout_token(op, exp=10**18))
    assert response.status_code == 200


def test_a_refresh_lock_held_too_long_lets_the_request_through_unrefreshed(
    client, op, settings, monkeypatch
):
    monkeypatch.setattr("accounts.sessions.refresh.cache_is_shared", lambda: True)
    settings.OIDC_REFRESH_LOCK_TIMEOUT = 0.2
    sign_in_with_token_answer(client, op, expires_in=1)  # within the refresh leeway at once
    cache.add(lock_key(client.session.session_key), "someone-else", 60)

    response = client.get("/members/")

    assert response.status_code == 200
    assert op.count("/token") == 1  # the sign-in's only: no unlocked refresh
    assert locks.cache_is_shared() is False  # the real check: local memory in tests


def test_a_provider_error_code_cannot_forge_log_lines(client, op, caplog):
    state = start(client)[0]
    with caplog.at_level(logging.WARNING, logger="accounts.signin"):
        client.get("/oidc/callback/", {"state": state, "error": "x\nFAKE reason=ok"})
    lines = [r.getMessage() for r in caplog.records if r.name == "accounts.signin"]
    assert lines and all("\n" not in line for line in lines)
