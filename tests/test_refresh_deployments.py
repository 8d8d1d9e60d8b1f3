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


def wait_for_expiry() -> None:
    time.sleep(TOKEN_LIFETIME + 0.3)


def assert_burst_refreshes_once(site, http, *, refreshes_so_far: int) -> None:
    wait_for_expiry()
    answers = site.burst(http, "/api/me/", BURST)
    assert [a.status_code for a in answers] == [200] * BURST, [a.text[:200] for a in answers]
    assert {a.json()["username"] for a in answers} == {"alice"}
    stats = site.idp.stats()
    assert stats["token"].get("refresh_token", 0) == refreshes_so_far + 1, stats
    assert not any(stats["token_errors"].values()), stats


@pytest.mark.parametrize("kind", list(KINDS))
def test_twenty_concurrent_requests_after_expiry_refresh_once_and_the_session_survives(
    kind, tmp_path
):
    with start_deployment(kind, workdir=tmp_path, access_token_ttl=TOKEN_LIFETIME) as site:
        http = site.sign_in("alice")
        site.idp.reset_stats()

        assert_burst_refreshes_once(site, http, refreshes_so_far=0)
        assert_burst_refreshes_once(site, http, refreshes_so_far=1)

        log = site.log_text()
        assert len(re.findall(r"refreshed tokens: iss=\S+ sub=\S+", log)) == 2, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert "database is locked" not in log
        assert not re.search(r'" 500 |\[ERROR\]| ERROR ', log), log[-3000:]
