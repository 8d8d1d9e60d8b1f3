"""The profile lists the user's signed-in sessions; "sign out everywhere else" ends the others."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent, OIDCSession
from tests.support.sessions import is_signed_in, signed_in_session

pytestmark = pytest.mark.django_db

ISSUER = "http://op.test"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def session(username: str = "alice", subject: str = "sub-alice", **details) -> Client:
    client = Client()
    row = signed_in_session(client, issuer=ISSUER, username=username, subject=subject)
    OIDCSession.objects.filter(pk=row.pk).update(**details)
    return client


def test_the_profile_lists_every_session_of_the_user_and_marks_this_one():
    mine = session(user_agent=FIREFOX, ip_address="198.51.100.4")
    session(user_agent="curl/8.5.0", ip_address="2001:db8::1")
    session("bob", "sub-bob", ip_address="192.0.2.99")

    page = mine.get("/accounts/profile/").content.decode()

    assert "Firefox on Linux" in page and "198.51.100.4" in page
    assert "curl" in page and "2001:db8::1" in page
    assert "192.0.2.99" not in page  # bob's
    assert page.count("this session") == 1
    assert "Sign out everywhere else" in page
    for row in OIDCSession.objects.all():
        assert row.session_key not in page


def test_sign_out_everywhere_else_ends_the_other_sessions_and_keeps_this_one():
    mine, other, third = session(), session(), session()
    bob = session("bob", "sub-bob")

    response = mine.post("/accounts/sessions/end-others/", follow=True)

    assert response.status_code == 200
    assert "Signed out 2 other sessions here" in response.content.decode()
    assert is_signed_in(mine) and is_signed_in(bob)
    assert other.get("/api/me/").status_code == 401
    assert third.get("/api/me/").status_code == 401
    assert OIDCSession.objects.filter(user__username="alice").count() == 1
    row = AuditEvent.objects.get(event="sign_out")
    assert (row.reason, row.username, row.detail) == (
        "user_other_sessions",
        "alice",
        {"sessions": 2},
    )


def test_sign_out_everywhere_else_needs_post_and_a_csrf_token():
    mine, other = session(), session()
    assert mine.get("/accounts/sessions/end-others/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = mine.cookies
    assert strict.post("/accounts/sessions/end-others/").status_code == 403
    assert is_signed_in(other)


def test_with_one_session_there_is_nothing_else_to_sign_out():
    page = session().get("/accounts/profile/").content.decode()
    assert "This is your only signed-in session." in page
    assert "Sign out everywhere else" not in page


def test_session_expires_is_the_real_end_and_does_not_move_between_page_loads(settings):
    import re
    import time
    from datetime import UTC, datetime

    from accounts.sessions import lifecycle as sessions

    settings.OIDC_SESSION_MAX_AGE = 3600  # shorter than the Django session (12 hours)
    client = session()
    store = client.session
    started = time.time() - 600
    store[sessions.SESSION_STARTED_AT] = started
    store.save()

    def shown() -> str:
        page = client.get("/accounts/profile/").content.decode()
        return re.search(r"<dt>Session expires</dt>\s*<dd>([^<]+)<", page).group(1).strip()

    first = shown()
    time.sleep(1.1)
    assert shown() == first
    expected = datetime.fromtimestamp(started + 3600, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert first.startswith(expected)

    settings.OIDC_SESSION_MAX_AGE = 10 * 24 * 3600  # now the Django session ends first
    stored = client.session._get_session_from_db().expire_date
    assert shown().startswith(stored.strftime("%Y-%m-%d %H:%M:%S"))
