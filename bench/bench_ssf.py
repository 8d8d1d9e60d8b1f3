"""Shared Signals push receiver: 1,000 pushed SETs naming 1,000 different users.

    .venv/bin/python bench/bench_ssf.py [--users 1000]

Starts a throwaway PostgreSQL cluster and a scripted provider serving the JWKS, migrates,
creates N users each with an identity and one signed-in session (database sessions), signs
one CAEP ``session-revoked`` SET per user, and pushes each to ``POST /oidc/ssf/push/``
through Django's full request path (middleware, view, verification, jti, events, audit).
The first 100 pushes count database queries; the others are timed. Prints events per
second, queries per event (min = max: a constant number), and the RP's CPU per event
against the target (< 10 ms), and exits non-zero when one is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUTHORIZATION = "Bearer bench-ssf-push-secret"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
COUNTED = 100
CPU_TARGET_MS = 10.0


def setup_django(database_url: str, issuer: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": database_url,
            "OIDC_OP_ISSUER": issuer,
            "OIDC_OP_DISCOVERY": "0",
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{issuer}/auth",
            "OIDC_OP_TOKEN_ENDPOINT": f"{issuer}/token",
            "OIDC_OP_JWKS_ENDPOINT": f"{issuer}/jwks",
            "OIDC_RP_CLIENT_ID": "site-client",
            "OIDC_RP_CLIENT_SECRET": "site-secret",
            "OIDC_SSF_PUSH_AUTHORIZATION": AUTHORIZATION,
        }
    )
    import django

    django.setup()
    import logging

    logging.getLogger("accounts").setLevel(logging.WARNING)
    logging.getLogger("django").setLevel(logging.ERROR)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def create_users(count: int, issuer: str) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import OIDCIdentity, OIDCSession

    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"user{n}") for n in range(count)])
    OIDCIdentity.objects.bulk_create(
        [OIDCIdentity(user=u, issuer=issuer, subject=f"sub-{n}") for n, u in enumerate(users)]
    )
    rows = []
    for n, user in enumerate(users):
        store = SessionStore()
        store["_auth_user_id"] = str(user.pk)
        store.create()
        rows.append(
            OIDCSession(
                session_key=store.session_key,
                user=user,
                issuer=issuer,
                subject=f"sub-{n}",
                sid=f"sid-{n}",
            )
        )
    OIDCSession.objects.bulk_create(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()

    from tests.support.fakeop import FakeOP, serve
    from tests.support.postgres import start_postgres

    op = FakeOP()
    server, _ = serve(op)
    op.reset()
    cluster = start_postgres()
    try:
        setup_django(cluster.url, op.issuer)
        return run(op, args.users)
    finally:
        server.shutdown()
        cluster.stop()


def run(op, count: int) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import OIDCSession

    create_users(count, op.issuer)
    now = int(time.time())
    sets = [
        op.sign(
            {
                "iss": op.issuer,
                "aud": "site-client",
                "iat": now,
                "jti": uuid.uuid4().hex,
                "sub_id": {"format": "iss_sub", "iss": op.issuer, "sub": f"sub-{n}"},
                "events": {SESSION_REVOKED: {"event_timestamp": now}},
            },
            headers={"typ": "secevent+jwt"},
        )
        for n in range(count)
    ]
    client = Client()

    def push(token: str) -> None:
        response = client.post(
            "/oidc/ssf/push/",
            data=token,
            content_type="application/secevent+jwt",
            HTTP_AUTHORIZATION=AUTHORIZATION,
        )
        assert response.status_code == 202, response.content

    push(sets[0])  # warm-up: JWKS and SSF configuration fetched once, then cached
    queries = []
    for token in sets[1 : COUNTED + 1]:
        with CaptureQueriesContext(connection) as captured:
            push(token)
        queries.append(len(captured.captured_queries))
    if os.environ.get("BENCH_SHOW_QUERIES"):
        for query in captured.captured_queries:
            print(query["sql"][:160])
    timed = sets[COUNTED + 1 :]
    wall, cpu = time.perf_counter(), time.process_time()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        cProfile.runctx("for t in timed: push(t)", globals(), locals(), sort="cumulative")
    else:
        for token in timed:
            push(token)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    left = OIDCSession.objects.count()

    per_second = len(timed) / wall
    cpu_ms = 1000 * cpu / len(timed)
    constant = min(queries) == max(queries)
    print(f"SETs pushed: {count} naming {count} users; sessions left: {left}")
    print(f"events/s (one process, {len(timed)} timed): {per_second:,.0f}")
    print(
        f"queries/event over {len(queries)}: min {min(queries)}, max {max(queries)}, "
        f"mean {statistics.mean(queries):.1f} -> {'constant' if constant else 'NOT constant'}"
    )
    print(f"RP CPU per event: {cpu_ms:.2f} ms (target < {CPU_TARGET_MS:.0f} ms)")
    print(f"provider requests: JWKS {op.count('/jwks')}")
    ok = constant and cpu_ms < CPU_TARGET_MS and left == 0
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
