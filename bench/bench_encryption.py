"""Cost of tokens encrypted at rest on a request with a fresh access token: none measurable.

Two OIDC sessions of one user go through Django's whole handler and the same middleware
stack on one PostgreSQL database, interleaved batch by batch in one run:

- clear: the tokens stored in clear and the session dict as before encryption (no key id,
  no row key), so the middleware skips the key check and the row-key follow-up;
- sealed: the tokens sealed by ``accounts.sessions.token_store`` and the session dict as sign-in
  now writes it: the middleware compares the key id with the readable ones and checks the
  row key after the view. Nothing is decrypted on this path.

Prints the median time per request of each, their ratio (target <= 1.02), the queries per
request of each (they must be equal), and what one seal / one read costs (the refresh and
logout paths pay that, once per refresh).

    .venv/bin/python bench/bench_encryption.py [--requests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_middleware import (  # noqa: E402
    BATCH,
    queries_per_request,
    setup_database,
    timed,
)


def make_clients():
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from accounts.models import OIDCIdentity, OIDCSession
    from accounts.sessions import lifecycle as sessions
    from accounts.sessions import token_store

    user = get_user_model().objects.create_user("bench", email="bench@example.com")
    OIDCIdentity.objects.create(user=user, issuer="http://op.test", subject="bench")
    expires = timezone.now() + timezone.timedelta(days=1)
    clients = []
    for sealed in (False, True):
        client = Client()
        client.force_login(user, backend="accounts.backends.OIDCBackend")
        session = client.session
        tokens = {"access_token": "at-" + "a" * 800, "refresh_token": "rt-" + "r" * 40}
        if sealed:
            tokens = {name: token_store.seal(value) for name, value in tokens.items()}
        OIDCSession.objects.create(
            session_key=session.session_key, user=user, issuer="http://op.test",
            subject="bench", access_expires_at=expires, **tokens,
        )  # fmt: skip
        session[sessions.SESSION_EXPIRES_AT] = expires.timestamp()
        session[sessions.SESSION_STARTED_AT] = time.time()
        if sealed:
            session[token_store.SESSION_KEY_ID] = token_store.current_key_id()
            session[sessions.SESSION_ROW_KEY] = session.session_key
        session.save()
        clients.append(client)
    return clients


def crypto_costs(n: int = 2000) -> tuple[float, float]:
    """Microseconds per seal and per read of an 800-character token."""
    from accounts.models import OIDCSession
    from accounts.sessions import token_store

    token = "at-" + "a" * 800
    start = time.perf_counter()
    for _ in range(n):
        sealed = token_store.seal(token)
    seal_us = (time.perf_counter() - start) / n * 1e6
    row = OIDCSession(access_token=sealed)
    start = time.perf_counter()
    for _ in range(n):
        token_store.read(row, "access_token")
    return seal_us, (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cluster = setup_database()
    try:
        from django.test.utils import setup_test_environment

        setup_test_environment()
        clear, sealed = make_clients()
        clear_queries, sealed_queries = queries_per_request(clear), queries_per_request(sealed)
        timed(clear, 100), timed(sealed, 100)  # warm up both
        results: dict[str, list[tuple[float, float]]] = {"clear": [], "sealed": []}
        batches = max(1, args.requests // BATCH)
        for round_number in range(args.rounds * batches):
            pair = [("clear", clear), ("sealed", sealed)]
            for name, client in pair if round_number % 2 == 0 else reversed(pair):
                results[name].append(timed(client, BATCH))
        wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in results.items()}
        ratio = wall["sealed"] / wall["clear"]
        print(f"{args.rounds * batches * BATCH} requests per variant in batches of {BATCH}")
        print(f"{'variant':<34}{'wall us/req':>12}{'cpu us/req':>12}{'queries/req':>13}")
        for name, label, queries in (
            ("clear", "tokens in clear (before)", clear_queries),
            ("sealed", "tokens sealed, key check (now)", sealed_queries),
        ):
            print(f"{label:<34}{wall[name] * 1e6:>12.1f}{cpu[name] * 1e6:>12.1f}{queries:>13}")
        verdict = "PASS" if ratio <= 1.02 and sealed_queries == clear_queries else "FAIL"
        print(f"ratio sealed/clear, wall clock: {ratio:.3f} (target <= 1.02) {verdict}")
        print(f"ratio sealed/clear, CPU: {cpu['sealed'] / cpu['clear']:.3f}")
        seal_us, read_us = crypto_costs()
        print(f"off the hot path: seal {seal_us:.1f} us, read {read_us:.1f} us per token")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
