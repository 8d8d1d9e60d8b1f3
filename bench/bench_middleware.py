"""Per-request overhead of OIDCSessionMiddleware for a valid session, against plain Django.

Both variants serve the same page (/members/, which reads request.user) through Django's
whole handler on the same PostgreSQL database, in one run, interleaved round by round so
that machine noise hits both alike:

- baseline: Django's session + auth middleware, a session made by ``login()``;
- oidc: the same stack plus OIDCSessionMiddleware, a session with a valid access token.

Prints the median time per request of each, their ratio (target <= 1.03), and the database
queries per request of each (they must be equal: the fast path makes none).

    .venv/bin/python bench/bench_middleware.py [--requests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def setup_database():
    from tests.support.postgres import start_postgres

    cluster = start_postgres()
    from django.conf import settings

    settings.DATABASES["default"].update(
        ENGINE="django.db.backends.postgresql", NAME="postgres", USER="postgres",
        PASSWORD="", HOST="127.0.0.1", PORT=str(cluster.port), OPTIONS={},
    )  # fmt: skip
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return cluster


def make_clients():
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from accounts.models import OIDCIdentity, OIDCSession
    from accounts.sessions import lifecycle as sessions
    from accounts.sessions import token_store

    user = get_user_model().objects.create_user("bench", email="bench@example.com")
    OIDCIdentity.objects.create(user=user, issuer="http://op.test", subject="bench")
    plain = Client()
    plain.force_login(user, backend="accounts.backends.OIDCBackend")
    oidc = Client()
    oidc.force_login(user, backend="accounts.backends.OIDCBackend")
    session = oidc.session
    expires = timezone.now() + timezone.timedelta(days=1)
    OIDCSession.objects.create(
        session_key=session.session_key, user=user, issuer="http://op.test", subject="bench",
        access_token=token_store.seal("at"), refresh_token=token_store.seal("rt"),
        access_expires_at=expires,
    )  # fmt: skip
    session[sessions.SESSION_EXPIRES_AT] = expires.timestamp()
    session[sessions.SESSION_STARTED_AT] = time.time()
    session[token_store.SESSION_KEY_ID] = token_store.current_key_id()
    session[sessions.SESSION_ROW_KEY] = session.session_key
    session.save()
    return plain, oidc


def timed(client, n: int) -> tuple[float, float]:
    """Wall-clock and this process's CPU seconds per request over ``n`` requests."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        response = client.get("/members/")
        if response.status_code != 200:
            raise SystemExit(f"unexpected status {response.status_code}")
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def queries_per_request(client) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        client.get("/members/")
    return len(ctx.captured_queries)


BATCH = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cluster = setup_database()
    try:
        from django.conf import settings
        from django.test.utils import setup_test_environment

        setup_test_environment()
        plain, oidc = make_clients()
        # Build the baseline's middleware chain once without ours; no override_settings, whose
        # settings wrapper would slow every settings lookup of the baseline only.
        full_stack = settings.MIDDLEWARE
        settings.MIDDLEWARE = [
            m for m in full_stack if m != "accounts.sessions.middleware.OIDCSessionMiddleware"
        ]
        plain.handler.load_middleware()
        settings.MIDDLEWARE = full_stack
        oidc.handler.load_middleware()
        plain_queries, oidc_queries = queries_per_request(plain), queries_per_request(oidc)
        timed(plain, 100), timed(oidc, 100)  # warm up both
        baseline, measured = [], []
        # Small interleaved batches: a burst of load from elsewhere hits both variants.
        batches = max(1, args.requests // BATCH)
        for round_number in range(args.rounds * batches):
            pair = [(plain, baseline), (oidc, measured)]
            for client, results in pair if round_number % 2 == 0 else reversed(pair):
                results.append(timed(client, BATCH))
        base_wall = statistics.median(w for w, _ in baseline)
        mine_wall = statistics.median(w for w, _ in measured)
        base_cpu = statistics.median(c for _, c in baseline)
        mine_cpu = statistics.median(c for _, c in measured)
        ratio = mine_wall / base_wall
        total = args.rounds * batches * BATCH
        print(f"{total} requests per variant in batches of {BATCH}, PostgreSQL")
        print(f"{'variant':<30}{'wall us/req':>12}{'cpu us/req':>12}{'queries/req':>13}")
        rows = [
            ("plain Django session auth", base_wall, base_cpu, plain_queries),
            ("with OIDCSessionMiddleware", mine_wall, mine_cpu, oidc_queries),
        ]
        for name, wall, cpu, queries in rows:
            print(f"{name:<30}{wall * 1e6:>12.1f}{cpu * 1e6:>12.1f}{queries:>13}")
        verdict = "PASS" if ratio <= 1.03 and oidc_queries == plain_queries else "FAIL"
        print(f"ratio oidc/plain, wall clock: {ratio:.3f} (target <= 1.03) {verdict}")
        print(f"ratio oidc/plain, CPU of the Django process: {mine_cpu / base_cpu:.3f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
