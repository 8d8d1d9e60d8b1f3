"""Shared set-up of the fault tests: a deployment under load, and what to assert after.

Two gunicorn instances (2 workers x 4 threads each) on PostgreSQL and Redis, the dev IdP
with access tokens of 3 s and refresh tokens that rotate and revoke the grant on reuse,
20 signed-in sessions asking about four times a second each (~80 requests/s).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.deployments import Deployment, start_deployment
from tests.support.load import Load, Seen, lost_sessions

TOKEN_LIFETIME = 3
SESSIONS = 20
FAULT_SITE_ENV = {"OIDC_REFRESH_TIMEOUT": "30", "OIDC_REFRESH_WAIT": "2"}


@contextlib.contextmanager
def loaded_deployment(workdir: Path) -> Iterator[tuple[Deployment, list, Load]]:
    with start_deployment(
        "2x-gunicorn2-postgres-redis",
        workdir=workdir,
        access_token_ttl=TOKEN_LIFETIME,
        site_env=FAULT_SITE_ENV,
    ) as site:
        sessions = [site.sign_in("alice") for _ in range(SESSIONS)]
        site.idp.reset_stats()
        load = Load(site.urls, sessions).start()
        try:
            yield site, sessions, load
        finally:
            load.stop()


def assert_nothing_lost(site: Deployment, sessions: list, seen: Seen) -> None:
    """No session ended, no grant reused, no 500 in any log."""
    assert seen.unauthorized == set(), f"sessions that answered 401: {seen.unauthorized}"
    assert lost_sessions(site.urls, sessions) == []
    stats = site.idp.stats()
    assert not any(stats["token_errors"].values()), stats["token_errors"]  # no reuse
    log = site.log_text()
    assert "Traceback" not in log, log[-4000:]
    assert not re.search(r'" 500 ', log), log[-4000:]


def refreshes_per_lifetime(site: Deployment, seconds: float) -> float:
    """Refresh grants per session per token lifetime over ``seconds`` of load."""
    grants = site.idp.stats()["token"].get("refresh_token", 0)
    return grants / SESSIONS / (seconds / TOKEN_LIFETIME)


def wait(seconds: float) -> None:
    time.sleep(seconds)
