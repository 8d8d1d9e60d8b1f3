"""Faults of the site's own stores, on a real deployment under load (issue 17).

- Redis killed for 20 s: every cache call degrades to the process (locks to PostgreSQL's
  advisory lock, documents to the process's copy): no 5xx, no session lost, and still about
  one refresh per session per token lifetime.
- PostgreSQL stopped for 10 s with refreshes in flight (the IdP held back so that they
  answer while the database is down): 503 in words while it is down and only then, and the
  rotated tokens are stored once it is back: no session lost.
"""

from __future__ import annotations

import time

import pytest

from tests.sessions.faults import (
    assert_nothing_lost,
    loaded_deployment,
    refreshes_per_lifetime,
    wait,
)

pytestmark = [pytest.mark.devidp, pytest.mark.faults]


def test_redis_killed_for_20_seconds_costs_no_5xx_and_no_session(tmp_path):
    with loaded_deployment(tmp_path) as (site, sessions, load):
        wait(3)
        began = time.monotonic()
        site.redis.kill()
        try:
            wait(20)
        finally:
            site.redis.restart()
        wait(5)
        took = time.monotonic() - began
        seen = load.stop()
        rate = refreshes_per_lifetime(site, took + 3)
        log = site.log_text()
        assert seen.server_errors == [], seen.server_errors[:10]
        assert_nothing_lost(site, sessions, seen)

    # A 3 s token is refreshed when a quarter of its life is left: ~1.33 grants per
    # lifetime per session; without the lock it would be one per request (~12).
    assert 0.5 < rate < 2.0, rate
    print(
        f"Redis killed 20 s: {len(seen.statuses)} requests, 5xx={len(seen.server_errors)}, "
        f"sessions lost=0/20, refresh grants per session per token lifetime={rate:.2f}"
    )
    assert log.count("shared cache unavailable") <= 2 * 4  # once a minute per process


def test_postgresql_stopped_for_10_seconds_answers_503_only_while_down_and_keeps_sessions(
    tmp_path,
):
    with loaded_deployment(tmp_path) as (site, sessions, load):
        wait(3)
        site.idp.pause()  # refreshes started now hang at the provider ...
        wait(1.5)
        down_at = time.monotonic() - load.began
        site.postgres.pause()
        site.idp.resume()  # ... and answer while the database is down
        try:
            wait(10)
        finally:
            site.postgres.resume()
        up_at = time.monotonic() - load.began
        wait(6)
        seen = load.stop()
        log = site.log_text()
        assert_nothing_lost(site, sessions, seen)

    errors = seen.server_errors
    assert errors, "the database was down: some requests must have said so"
    assert {code for _, _, code in errors} == {503}
    assert all(down_at - 1 <= at <= up_at + 3 for at, _, _ in errors), errors[:5]
    print(
        f"PostgreSQL stopped 10 s: {len(seen.statuses)} requests, {len(errors)} x 503 "
        f"(all within the outage), other 5xx=0, sessions lost=0/20"
    )
    lines = [
        line for line in log.splitlines() if "accounts.refresh" in line and "refreshed" not in line
    ]
    assert "rotated tokens stored after" in log, lines[-30:]  # a refresh met the outage
