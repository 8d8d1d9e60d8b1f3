"""Refresh storms on real deployments: grants per burst, HTTP errors, and whether sessions survive.

For each deployment (runserver + SQLite; gunicorn with 2 workers + SQLite, no shared cache;
gunicorn with 2 workers + PostgreSQL, no Redis; two gunicorn instances + PostgreSQL + Redis)
and each kind of refresh token (plain: reusable; rotating: revoked on reuse), it signs one
user in through the dev IdP with access tokens of 2 s, then, ``--bursts`` times: waits for
the access token to expire and fires ``--burst`` concurrent requests of that session. It
prints the refresh grants the dev IdP counted per burst, the HTTP answers other than 200,
and whether the session was still signed in at the end. Want: 1, 0, yes.

    .venv/bin/python bench/bench_refresh.py [--burst 20] [--bursts 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.deployments import KINDS, start_deployment  # noqa: E402

TOKEN_LIFETIME = 2


def run(kind: str, *, rotate: bool, burst: int, bursts: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-refresh-{kind}-"))
    with start_deployment(
        kind, workdir=workdir, access_token_ttl=TOKEN_LIFETIME, rotate=rotate
    ) as site:
        http = site.sign_in("alice")
        site.idp.reset_stats()
        errors = 0
        grants: list[int] = []
        for _ in range(bursts):
            time.sleep(TOKEN_LIFETIME + 0.3)
            before = site.idp.stats()["token"].get("refresh_token", 0)
            answers = site.burst(http, "/api/me/", burst)
            errors += sum(1 for answer in answers if answer.status_code != 200)
            grants.append(site.idp.stats()["token"].get("refresh_token", 0) - before)
        time.sleep(TOKEN_LIFETIME + 0.3)
        last = http.get(f"{site.urls[0]}/api/me/", timeout=30, allow_redirects=False)
        survived = last.status_code == 200 and last.json().get("username") == "alice"
        refused = site.idp.stats()["token_errors"].get("refresh_token", 0)
    return {"grants": grants, "errors": errors, "survived": survived, "refused": refused}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=20, help="concurrent requests per burst")
    parser.add_argument("--bursts", type=int, default=3, help="bursts per deployment")
    args = parser.parse_args()
    header = (
        f"{'deployment':<30} {'refresh tokens':<15} {'grants per burst':<18} "
        f"{'HTTP errors':>11} {'refused grants':>14} {'survived':>9}"
    )
    print(f"{args.burst} concurrent requests per burst, access tokens of {TOKEN_LIFETIME} s")
    print(header)
    print("-" * len(header))
    for kind in KINDS:
        for rotate in (False, True):
            result = run(kind, rotate=rotate, burst=args.burst, bursts=args.bursts)
            grants = ", ".join(str(g) for g in result["grants"])
            print(
                f"{kind:<30} {'rotating' if rotate else 'plain':<15} {grants:<18} "
                f"{result['errors']:>11} {result['refused']:>14} "
                f"{'yes' if result['survived'] else 'NO':>9}",
                flush=True,
            )
    print("want: 1 grant per burst, 0 HTTP errors, 0 refused grants, survived")


if __name__ == "__main__":
    main()
