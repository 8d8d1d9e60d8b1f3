"""Benchmark ``sync_users`` on 100,000 users in a throwaway PostgreSQL, against its bulk floor.

    .venv/bin/python bench/bench_sync.py [--users 100000] [--batch-size 1000] [--rounds 3]

Starts its own PostgreSQL cluster (``tests/support/postgres.py``), migrates it, writes a
JSON-lines directory of N users (each in one to three of 20 managed groups), then, in each
round, on emptied tables:

- the floor: a naive load of the same file that only writes: ``json.loads`` each line and,
  per batch in one transaction, ``bulk_create`` the users, their identities and their group
  memberships (the same rows the sync writes, random unusable password included, with no
  checks, no reads, no planning, no report);
- ``manage.py sync_users --source file`` on the empty tables (the first load), then once
  more (nothing to change).

The rounds alternate which of the floor and the first load goes first, so that a load on
the machine that rises or falls during the run weighs on both alike. Prints the median
ratio of the first load and of the no-change run to the floor of the same round, wall
times, queries per 1,000 users and peak RSS against the targets, and exits non-zero when
one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from io import StringIO
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {  # metric -> (limit, unit); all are upper bounds
    "first load / bulk floor": (1.2, "x"),
    "no-change run / bulk floor": (1.0, "x"),
    "first run": (30.0, "s"),
    "no-change re-run": (10.0, "s"),
    "queries / 1,000 users (first)": (10.0, ""),
    "queries / 1,000 users (re-run)": (10.0, ""),
    "peak RSS": (300.0, "MB"),
}
GROUPS = [f"app-team-{n:02}" for n in range(20)]


def write_directory(path: Path, users: int) -> None:
    """N claim sets, one per line, streamed to disk."""
    with path.open("w", encoding="utf-8") as handle:
        for n in range(users):
            groups = [GROUPS[n % 20], GROUPS[(n * 7) % 20]][: 1 + n % 2]
            if n % 50 == 0:
                groups.append("app-staff")
            record = {
                "sub": f"00000000-0000-4000-8000-{n:012d}",
                "preferred_username": f"user{n}",
                "email": f"user{n}@example.org",
                "email_verified": True,
                "given_name": f"Given{n}",
                "family_name": f"Family{n % 977}",
                "groups": groups,
                "active": True,
            }
            handle.write(json.dumps(record) + "\n")


def setup_django(database_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
            "DJANGO_ALLOWED_HOSTS": "localhost",
            "DATABASE_URL": database_url,
            "OIDC_OP_ISSUER": ISSUER,
            "OIDC_GROUPS_PREFIX": "app-",
            "OIDC_STAFF_GROUPS": "app-staff",
        }
    )
    import django

    django.setup()
    import logging

    logging.getLogger("accounts").setLevel(logging.WARNING)  # keep the table readable
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


ISSUER = "https://idp.bench.test"


def empty_tables() -> None:
    """Empty what a load writes (users, identities, groups, audit rows) for the next round."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from accounts.models import AuditEvent, OIDCIdentity

    User = get_user_model()
    models = (User, User.groups.through, Group, OIDCIdentity, AuditEvent)
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        cursor.execute(f"ANALYZE {tables}")


def timed_floor(path: Path, batch_size: int) -> float:
    """The naive load of the same users: parse, then bulk_create every row, batch by batch."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.contrib.auth.models import Group
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import OIDCIdentity

    User = get_user_model()
    Through = User.groups.through
    started = time.perf_counter()
    now = timezone.now()
    group_ids: dict[str, int] = {}
    with path.open("rb") as handle:
        while lines := list(islice(handle, batch_size)):
            records = [json.loads(line) for line in lines]
            with transaction.atomic():
                users = User.objects.bulk_create(
                    [
                        User(
                            username=r["preferred_username"],
                            email=r["email"],
                            first_name=r["given_name"],
                            last_name=r["family_name"],
                            is_staff="app-staff" in r["groups"],
                            password=UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30),
                        )
                        for r in records
                    ]
                )
                OIDCIdentity.objects.bulk_create(
                    [
                        OIDCIdentity(
                            user_id=u.pk,
                            issuer=ISSUER,
                            provider="default",
                            subject=r["sub"],
                            email=r["email"],
                            email_verified=r["email_verified"],
                            last_synced_at=now,
                        )
                        for u, r in zip(users, records, strict=True)
                    ]
                )
                for r in records:
                    for name in r["groups"]:
                        if name not in group_ids:
                            group_ids[name] = Group.objects.create(name=name).pk
                Through.objects.bulk_create(
                    [
                        Through(user_id=u.pk, group_id=group_ids[name])
                        for u, r in zip(users, records, strict=True)
                        for name in r["groups"]
                    ]
                )
    return time.perf_counter() - started


def timed_sync(path: Path, batch_size: int) -> tuple[float, int, dict]:
    """Run the command once; return (seconds, queries, summary)."""
    from django.core.management import call_command
    from django.db import connection

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    out = StringIO()
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        call_command(
            "sync_users",
            "--source",
            "file",
            "--file",
            str(path),
            "--json",
            "--batch-size",
            str(batch_size),
            stdout=out,
        )
    return time.perf_counter() - started, queries, json.loads(out.getvalue())


def one_round(path: Path, args: argparse.Namespace, n: int) -> tuple[float, ...]:
    """(floor s, first load s, no-change s, first-load queries, no-change queries)."""
    empty_tables()
    if n % 2:  # odd rounds: the sync first, then the floor
        first, first_queries, summary = timed_sync(path, args.batch_size)
        second, second_queries, again = timed_sync(path, args.batch_size)
        empty_tables()
        floor = timed_floor(path, args.batch_size)
    else:
        floor = timed_floor(path, args.batch_size)
        empty_tables()
        first, first_queries, summary = timed_sync(path, args.batch_size)
        second, second_queries, again = timed_sync(path, args.batch_size)
    assert summary["created"] == args.users, summary
    assert again["unchanged"] == args.users, again
    return floor, first, second, first_queries, second_queries


def print_table(rows: list[tuple[str, float]]) -> bool:
    print(f"{'metric':<32} {'value':>10} {'target':>10}  result")
    ok_all = True
    for name, value in rows:
        limit, unit = TARGETS[name]
        ok = value <= limit
        ok_all &= ok
        print(
            f"{name:<32} {value:>9.2f}{unit:<1} {'<= ' + format(limit, 'g') + unit:>10}  "
            f"{'PASS' if ok else 'FAIL'}"
        )
    return ok_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from tests.support.postgres import start_postgres

    cluster = start_postgres()
    try:
        setup_django(cluster.url)
        with tempfile.TemporaryDirectory(prefix="bench-sync-") as workdir:
            path = Path(workdir) / "directory.jsonl"
            write_directory(path, args.users)
            rounds = [one_round(path, args, n) for n in range(args.rounds)]
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        per_k = 1000 / args.users
        _, first, second, first_queries, second_queries = (
            statistics.median(r[i] for r in rounds) for i in range(5)
        )
        print(
            f"sync_users --source file: {args.users} users, batch size {args.batch_size}, "
            f"median of {args.rounds} rounds"
        )
        for n, (f, a, b, _, _) in enumerate(rounds, start=1):
            print(f"  round {n}: floor {f:.2f}s, first load {a:.2f}s, no-change {b:.2f}s")
        ok = print_table(
            [
                ("first load / bulk floor", statistics.median(r[1] / r[0] for r in rounds)),
                ("no-change run / bulk floor", statistics.median(r[2] / r[0] for r in rounds)),
                ("first run", first),
                ("no-change re-run", second),
                ("queries / 1,000 users (first)", first_queries * per_k),
                ("queries / 1,000 users (re-run)", second_queries * per_k),
                ("peak RSS", peak_mb),
            ]
        )
    finally:
        cluster.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
