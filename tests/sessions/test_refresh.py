"""refresh.py: once per token lifetime, waiters use what the holder stored, writes retried."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.test import RequestFactory

from accounts.models import OIDCSession
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store
from accounts.sessions.refresh import Outcome, refresh_session
from tests.support.sessions import is_signed_in, signed_in_session

pytestmark = pytest.mark.django_db


def sign_in(client, op, **kwargs) -> OIDCSession:
    return signed_in_session(client, issuer=op.issuer, **kwargs)


def answer_refresh(op, *, access_token="at-new", refresh_token="rt-new", expires_in=600):
    op.token_answer = lambda form: (
        200,
        {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
        },
        "application/json",
    )


@pytest.mark.parametrize(
    ("lifetime", "leeway", "expected"),
    [
        (None, 60, 60),  # lifetime unknown: the configured leeway
        (3600, 60, 60),  # a long token: the configured leeway
        (240, 60, 60),
        (60, 60, 15),  # the leeway would be the whole token: a quarter of it
        (2, 60, 0.5),  # a 2-second token is refreshed after 1.5 seconds, not at once
        (0, 60, 0),
        (-5, 60, 0),  # a provider's nonsense never makes the leeway negative
    ],
)
def test_refresh_leeway_is_at_most_a_quarter_of_the_token_lifetime(lifetime, leeway, expected):
    assert sessions.refresh_leeway(lifetime, leeway) == expected


def test_a_short_token_just_issued_is_not_refreshed(client, op, settings):
    settings.OIDC_REFRESH_LEEWAY = 60
    sign_in(client, op, expires_in=2, lifetime=2)
    answer_refresh(op)
    assert client.get("/members/").status_code == 200
    assert op.count("/token") == 0


def test_a_short_token_past_three_quarters_of_its_life_is_refreshed_once(client, op, settings):
    settings.OIDC_REFRESH_LEEWAY = 60
    sign_in(client, op, expires_in=0.4, lifetime=2)
    answer_refresh(op, expires_in=2)
    assert client.get("/members/").status_code == 200
    assert client.get("/members/").status_code == 200
    assert op.count("/token") == 1
    assert client.session[sessions.SESSION_LIFETIME] == pytest.approx(2, abs=0.5)


def request_of(client, path: str = "/members/"):
    request = RequestFactory().get(path)
    request.session = SessionStore(session_key=client.session.session_key)
    return request


def test_a_request_that_waited_uses_the_tokens_refreshed_since_it_began(client, op):
    row = sign_in(client, op, expires_in=-5, refresh_token="rt-old")
    began = time.time()
    # The holder of the lock refreshed while this request waited: a short token, which
    # by its expiry alone could look due again.
    OIDCSession.objects.filter(pk=row.pk).update(
        access_token=token_store.seal("at-holder"),
        refresh_token=token_store.seal("rt-holder"),
        refreshed_at=datetime.fromtimestamp(began + 0.01, UTC),
        access_expires_at=datetime.fromtimestamp(began + 0.02, UTC),
    )
    answer_refresh(op)
    request = request_of(client)
    assert refresh_session(request, started=began) is Outcome.FRESH
    assert op.count("/token") == 0
    assert request.session[sessions.SESSION_EXPIRES_AT] == pytest.approx(began + 0.02)
    assert token_store.read(OIDCSession.objects.get(pk=row.pk), "refresh_token") == "rt-holder"


def test_a_request_that_began_after_the_refresh_but_carries_the_old_expiry_does_not_refresh(
    client, op
):
    row = sign_in(client, op, expires_in=-5, lifetime=300)
    now = time.time()
    OIDCSession.objects.filter(pk=row.pk).update(
        refreshed_at=datetime.fromtimestamp(now - 1, UTC),
        access_expires_at=datetime.fromtimestamp(now + 299, UTC),
    )
    answer_refresh(op)
    assert client.get("/members/").status_code == 200
    assert op.count("/token") == 0
    assert client.session[sessions.SESSION_EXPIRES_AT] == pytest.approx(now + 299)


def failing_saves(monkeypatch, failures: int) -> list[int]:
    """OIDCSession.save raises "database is locked" ``failures`` times, then works."""
    calls: list[int] = []
    original = OIDCSession.save

    def save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise OperationalError("database is locked")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(OIDCSession, "save", save)
    monkeypatch.setattr("accounts.sessions.refresh.time.sleep", lambda seconds: None)
    return calls


def test_rotated_tokens_meeting_a_busy_database_are_stored_on_a_retry(client, op, monkeypatch):
    sign_in(client, op, expires_in=-5, refresh_token="rt-old")
    answer_refresh(op, refresh_token="rt-rotated")
    calls = failing_saves(monkeypatch, failures=2)
    assert client.get("/members/").status_code == 200
    assert len(calls) == 3
    row = OIDCSession.objects.get(session_key=client.session.session_key)
    tokens = (token_store.read(row, "access_token"), token_store.read(row, "refresh_token"))
    assert tokens == ("at-new", "rt-rotated")
    assert op.count("/token") == 1


def test_a_database_that_stays_busy_never_makes_a_500(client, op, monkeypatch, caplog):
    row = sign_in(client, op, expires_in=-5, refresh_token="rt-old")
    answer_refresh(op)
    monkeypatch.setattr("accounts.sessions.refresh.STORE_DEADLINE", 0.2)
    failing_saves(monkeypatch, failures=10**9)
    assert client.get("/members/").status_code == 200
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "could not be stored" in errors[0]
    assert "rt-" not in errors[0] and "at-" not in errors[0]
    # The rotated token never reached the row: its claim stays, so no request spends the
    # old refresh token (the provider would revoke the grant) until the claim lapses.
    assert OIDCSession.objects.get(pk=row.pk).refresh_started_at is not None
    monkeypatch.undo()
    assert client.get("/members/").status_code == 200
    assert op.count("/token") == 1


def test_refused_client_credentials_keep_the_session_and_log_a_configuration_error(
    client, op, caplog
):
    sign_in(client, op, expires_in=-5)
    op.token_answer = lambda form: (401, {"error": "invalid_client"}, "application/json")
    assert client.get("/members/").status_code == 200
    assert is_signed_in(client)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert "reason=invalid_client" in lines[0]
    assert "check OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET" in lines[0]
    assert "rt-1" not in lines[0]


def test_a_waiter_after_a_failed_attempt_does_not_call_the_provider_again(client, op):
    sign_in(client, op, expires_in=-5)
    op.token_answer = lambda form: (503, "busy", "text/plain")
    began = time.time()
    assert refresh_session(request_of(client), started=began) is Outcome.PROVIDER_DOWN
    assert refresh_session(request_of(client), started=began) is Outcome.PROVIDER_DOWN
    assert op.count("/token") == 1
