"""Twenty parallel requests of one expired session refresh once at the real dev IdP.

The dev IdP rotates refresh tokens and revokes the grant when a used one comes back, so a
second refresh with the same token would sign the user out. The site's live server is a
threaded WSGI server in this process; the row lock on PostgreSQL serialises the refreshes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.sessions.backends.db import SessionStore

from accounts.models import OIDCSession
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store
from tests.support.signin import sign_in_with_requests

pytestmark = [pytest.mark.devidp, pytest.mark.django_db(transaction=True)]

PARALLEL = 20


def session_key(http: requests.Session, site_url: str) -> str:
    host = urlsplit(site_url).hostname
    keys = [c.value for c in http.cookies if c.name == "sessionid" and host in c.domain]
    assert len(keys) == 1, list(http.cookies)
    return keys[0]


def expire_access_token(key: str) -> None:
    moment = time.time() - 30
    updated = OIDCSession.objects.filter(session_key=key).update(
        access_expires_at=datetime.fromtimestamp(moment, UTC)
    )
    assert updated == 1
    store = SessionStore(session_key=key)
    assert sessions.SESSION_EXPIRES_AT in store.load()
    store[sessions.SESSION_EXPIRES_AT] = moment
    store.save()


def test_parallel_requests_of_an_expired_session_refresh_exactly_once(idp_site, live_server):
    http = sign_in_with_requests(live_server.url, "alice", next_url="/api/me/")
    assert http.get(f"{live_server.url}/api/me/", timeout=10).json()["username"] == "alice"
    assert idp_site.stats()["token"]["authorization_code"] == 1  # through the provider
    key = session_key(http, live_server.url)
    before = OIDCSession.objects.get(session_key=key)
    assert before.refresh_token
    expire_access_token(key)
    idp_site.reset_stats()

    def get_me(_: int) -> requests.Response:
        return http.get(f"{live_server.url}/api/me/", timeout=30, allow_redirects=False)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        answers = list(pool.map(get_me, range(PARALLEL)))

    assert [a.status_code for a in answers] == [200] * PARALLEL, [a.text for a in answers]
    for answer in answers:
        me = answer.json()
        assert (me["username"], me["iss"]) == ("alice", idp_site.issuer)
    stats = idp_site.stats()
    assert stats["token"]["refresh_token"] == 1, stats
    assert stats["token_errors"].get("refresh_token", 0) == 0, stats
    assert not any(stats["token_errors"].values()), stats

    after = OIDCSession.objects.get(session_key=key)

    def read(row, field):
        return token_store.read(row, field)

    assert read(after, "refresh_token")
    assert read(after, "refresh_token") != read(before, "refresh_token")  # rotated
    assert read(after, "access_token") != read(before, "access_token")
    assert after.access_expires_at.timestamp() > time.time() + 60
    assert after.provider_unreachable_since is None

    following = http.get(f"{live_server.url}/api/me/", timeout=10, allow_redirects=False)
    assert following.status_code == 200
    assert following.json()["username"] == "alice"
    assert idp_site.stats()["token"]["refresh_token"] == 1
