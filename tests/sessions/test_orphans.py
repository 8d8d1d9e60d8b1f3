"""Nothing outlives its session: clearsessions, the profile's list, anonymous sign-in starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client

from accounts.models import OIDCSession
from accounts.sessions import lifecycle as sessions
from tests.support.scripted_signin import finish, sign_in
from tests.support.sessions import signed_in_session

pytestmark = pytest.mark.django_db


def expire(session_key: str) -> None:
    Session.objects.filter(session_key=session_key).update(
        expire_date=datetime.now(tz=UTC) - timedelta(seconds=1)
    )


def test_clearsessions_removes_the_oidc_state_of_every_session_that_is_gone(op):
    rows = []
    for index in range(50):
        client = Client()
        rows.append(
            signed_in_session(client, issuer=op.issuer, subject=f"s{index}", username=f"u{index}")
        )
    live = rows[:5]
    for row in rows[5:40]:
        expire(row.session_key)
    Session.objects.filter(session_key__in=[r.session_key for r in rows[40:]]).delete()  # flushed

    call_command("clearsessions", verbosity=0)

    assert sorted(OIDCSession.objects.values_list("pk", flat=True)) == sorted(r.pk for r in live)
    assert Session.objects.count() == 5


def test_the_profile_never_lists_a_session_that_expired(client, op):
    here = signed_in_session(client, issuer=op.issuer)
    elsewhere = Client()
    gone = signed_in_session(elsewhere, issuer=op.issuer)
    expire(gone.session_key)
    assert list(sessions.user_sessions(here.user)) == [here]
    page = client.get("/accounts/profile/")
    assert page.status_code == 200
    assert page.content.count(b"this session") >= 1
    assert OIDCSession.objects.filter(pk=gone.pk).exists()  # until clearsessions runs


def test_anonymous_sign_in_starts_leave_no_row_past_the_state_ttl(op, settings):
    settings.OIDC_STATE_TTL = 600
    for _ in range(2000):
        assert Client().get("/oidc/authenticate/").status_code == 302
    assert Session.objects.count() == 2000
    latest = Session.objects.order_by("-expire_date").first().expire_date
    assert latest <= datetime.now(tz=UTC) + timedelta(seconds=600)
    # Once the state has expired, clearsessions removes every one of them.
    Session.objects.update(expire_date=datetime.now(tz=UTC) - timedelta(seconds=1))
    call_command("clearsessions", verbosity=0)
    assert Session.objects.count() == 0


def test_pending_states_per_browser_stay_bounded(client, op, settings):
    settings.OIDC_MAX_STATES = 5
    for _ in range(30):
        client.get("/oidc/authenticate/")
    assert len(client.session["oidc_states"]) == 5
    assert Session.objects.count() == 1


def test_signing_in_gives_the_session_its_full_lifetime_again(client, op, settings):
    client.get("/oidc/authenticate/")
    assert client.session.get_expiry_age() == settings.OIDC_STATE_TTL
    sign_in(client, op)
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def test_a_clock_ahead_at_sign_in_says_so_in_words(client, op):
    import time

    answer = finish(client, op, iat=int(time.time()) + 120)
    assert answer.status_code == 400
    assert b"clock is ahead of this site" in answer.content
