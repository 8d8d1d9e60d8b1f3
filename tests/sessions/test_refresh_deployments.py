"""The session lifecycle under load, on real deployments (issue: sessions that hold under load).

Each deployment runs real server processes (runserver; gunicorn with 2 workers; two
gunicorn instances) on SQLite or PostgreSQL, with or without Redis, against the dev IdP
with access tokens of 2 s and refresh tokens that rotate and revoke the grant on reuse.
After the access token expires, 20 concurrent requests of one session make exactly one
refresh grant and all answer 200; after the next expiry the session refreshes again and is
still signed in; no request answers 500 and the server log shows each refresh once.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.support.deployments import KINDS, start_deployment

pytestmark = pytest.mark.devidp

BURST = 20
TOKEN_LIFETIME = 2
# A refreshed 2 s token is due again after 1.5 s (refreshed when a quarter of its life is
# left). A burst that the machine took longer than that to serve may rightly refresh again,
# so it proves nothing either way: it is tried again, at most ATTEMPTS times. Only bursts
# served within FRESH_FOR are judged, and then they must make exactly one refresh grant.
FRESH_FOR = TOKEN_LIFETIME * 0.75
ATTEMPTS = 3


def refresh_grants(site) -> int:
    stats = site.idp.stats()
    assert not any(stats["token_errors"].values()), stats  # no reuse, no revoked grant
    return stats["token"].get("refresh_token", 0)


def burst_after_expiry(site, http) -> tuple[int, float]:
    """Wait for the access token to expire, then the burst: (grants it made, seconds)."""
    time.sleep(TOKEN_LIFETIME + 0.3)
    before = refresh_grants(site)
    began = time.monotonic()
    answers = site.burst(http, "/api/me/", BURST)
    took = time.monotonic() - began
    assert [a.status_code for a in answers] == [200] * BURST, [a.text[:200] for a in answers]
    assert {a.json()["username"] for a in answers} == {"alice"}
    return refresh_grants(site) - before, took


def assert_a_burst_refreshes_once(site, http) -> int:
    """Judge one burst served in time; return the grants of every burst fired."""
    fired = 0
    for _ in range(ATTEMPTS):
        made, took = burst_after_expiry(site, http)
        fired += made
        assert made >= 1  # the token had expired: it was refreshed
        if took < FRESH_FOR:
            assert made == 1, f"{made} refresh grants for one burst served in {took:.2f} s"
            return fired
    pytest.fail(f"no burst of {BURST} requests was served within {FRESH_FOR} s")


@pytest.mark.parametrize("kind", list(KINDS))
def test_twenty_concurrent_requests_after_expiry_refresh_once_and_the_session_survives(
    kind, tmp_path
):
    with start_deployment(kind, workdir=tmp_path, access_token_ttl=TOKEN_LIFETIME) as site:
        http = site.sign_in("alice")
        site.idp.reset_stats()

        grants = assert_a_burst_refreshes_once(site, http)
        grants += assert_a_burst_refreshes_once(site, http)  # the next expiry: again

        log = site.log_text()
        assert len(re.findall(r"refreshed tokens: iss=\S+ sub=\S+", log)) == grants, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert "database is locked" not in log
        assert not re.search(r'" 500 |\[ERROR\]| ERROR ', log), log[-3000:]
