"""refresh.py outside a transaction: the grant runs in the background and is never lost.

These tests commit (``transaction=True``) as a real request does, so the refresh runs in a
thread of its own, as it does under runserver and gunicorn.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from accounts.models import OIDCSession
from accounts.sessions import token_store
from tests.support.sessions import is_signed_in, signed_in_session

pytestmark = pytest.mark.django_db(transaction=True)


def slow_refresh(op, seconds: float, *, refresh_token: str = "rt-rotated", **answer):
    release = threading.Event()

    def answer_later(form):
        release.wait(seconds)
        return (
            200,
            {
                "access_token": "at-new",
                "refresh_token": refresh_token,
                "token_type": "Bearer",
                "expires_in": 600,
                **answer,
            },
            "application/json",
        )

    op.token_answer = answer_later
    return release


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_slow_provider_does_not_hold_the_request_and_its_answer_is_stored(client, op, settings):
    settings.OIDC_REFRESH_WAIT = 0.3
    settings.OIDC_TIMEOUT = 0.5  # the refresh has a longer timeout of its own
    settings.OIDC_REFRESH_TIMEOUT = 10
    row = signed_in_session(client, issuer=op.issuer, expires_in=-5, refresh_token="rt-old")
    release = slow_refresh(op, 10)

    began = time.monotonic()
    assert client.get("/members/").status_code == 200  # served with the session as it is
    assert time.monotonic() - began < 2
    assert is_signed_in(client)
    time.sleep(0.7)  # longer than OIDC_TIMEOUT: the refresh is still waiting for its answer
    release.set()

    def stored() -> bool:
        row.refresh_from_db()
        return token_store.read(row, "refresh_token") == "rt-rotated"

    assert wait_for(stored)
    assert row.refresh_started_at is None  # the claim ended with the write
    assert op.count("/token") == 1
    assert client.get("/members/").status_code == 200
    assert op.count("/token") == 1  # the stored answer is used: no second grant


def test_requests_of_a_session_join_the_refresh_in_flight(client, op, settings):
    settings.OIDC_REFRESH_WAIT = 0.2
    signed_in_session(client, issuer=op.issuer, expires_in=-5)
    release = slow_refresh(op, 10)
    for _ in range(5):
        assert client.get("/members/").status_code == 200
    release.set()
    assert wait_for(lambda: OIDCSession.objects.filter(refresh_started_at=None).exists())
    assert op.count("/token") == 1


def test_a_row_claimed_elsewhere_is_not_refreshed_again(client, op):
    from django.utils import timezone

    row = signed_in_session(client, issuer=op.issuer, expires_in=-5)
    OIDCSession.objects.filter(pk=row.pk).update(refresh_started_at=timezone.now())
    assert client.get("/members/").status_code == 200
    time.sleep(0.3)
    assert op.count("/token") == 0  # another process holds the claim: its answer will come


def test_a_provider_clock_ahead_keeps_the_session_and_audits_once(client, op, caplog):
    from accounts.models import AuditEvent

    signed_in_session(client, issuer=op.issuer, subject="sub-alice", expires_in=-5)
    ahead = op.id_token(iat=int(time.time()) + 60, nonce=None)
    slow_refresh(op, 0, id_token=ahead)
    for _ in range(2):
        assert client.get("/members/").status_code == 200
    assert wait_for(lambda: "clock differs" in caplog.text)
    assert is_signed_in(client)
    assert re.search(r"differs from ours by about \+(5[5-9]|6[0-5]) s", caplog.text)
    assert AuditEvent.objects.filter(reason="provider_clock_skew").count() == 1
