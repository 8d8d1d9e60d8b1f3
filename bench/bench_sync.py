"""Benchmark ``sync_users`` on 100,000 users in a throwaway PostgreSQL.

    .venv/bin/python bench/bench_sync.py [--users 100000] [--batch-size 1000]

Starts its own PostgreSQL cluster (``tests/support/postgres.py``), migrates it, writes a
JSON-lines directory of N users (each in one to three of 20 managed groups), then runs
``manage.py sync_users --source file`` twice: the first run creates everything, the second
finds nothing to change. Prints wall times, queries per 1,000 users and peak RSS against
the targets, and exits non-zero when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {  # metric -> (limit, unit); all are upper bounds
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
            "OIDC_OP_ISSUER": "https://idp.bench.test",
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
    args = parser.parse_args()

    from tests.support.postgres import start_postgres

    cluster = start_postgres()
    try:
        setup_django(cluster.url)
        with tempfile.TemporaryDirectory(prefix="bench-sync-") as workdir:
            path = Path(workdir) / "directory.jsonl"
            write_directory(path, args.users)
            first, first_queries, summary = timed_sync(path, args.batch_size)
            assert summary["created"] == args.users, summary
            second, second_queries, summary = timed_sync(path, args.batch_size)
            assert summary["unchanged"] == args.users, summary
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        per_k = 1000 / args.users
        print(f"sync_users --source file: {args.users} users, batch size {args.batch_size}")
        ok = print_table(
            [
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
