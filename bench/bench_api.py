"""``GET /api/me/`` on gunicorn: this project against stock mozilla-django-oidc 5.0.2, side by side.

Starts a throwaway PostgreSQL cluster and the dev IdP, then two gunicorn servers (2 sync
workers each, debug off) on one database: this project (``project.settings``) and stock
mozilla-django-oidc with its ``SessionRefresh`` middleware and an ``/api/me/`` view that
answers the same fields (``bench.stock_settings``). It measures, interleaved round by round
so that machine noise hits every variant alike, requests per second of:

- a signed-in session (a session cookie; the access token is fresh);
- an anonymous request (answered 401);
- this project's bearer path: an RFC 9068 JWT access token minted by the dev IdP;

and prints the ratios: session here/stock (target >= 0.90), anonymous here/stock (>= 0.95),
bearer/session here (>= 0.90), and provider requests per bearer request (target 0).

    .venv/bin/python bench/bench_api.py [--requests 1500] [--rounds 5] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.deployments import wait_ready  # noqa: E402
from tests.support.devidp import free_port, start_devidp  # noqa: E402
from tests.support.postgres import start_postgres  # noqa: E402

SECRET_KEY = "bench-api-secret-key-not-for-production-0123456789"
BATCH = 100  # requests per variant before the next variant's turn


def server_env(database_url: str, issuer: str, settings_module: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_LOG_LEVEL": "ERROR",
            "DJANGO_CONN_MAX_AGE": "60",  # persistent connections, as in production
            "DATABASE_URL": database_url,
            "OIDC_OP_ISSUER": issuer,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{issuer}/auth",
            "OIDC_OP_TOKEN_ENDPOINT": f"{issuer}/token",
            "OIDC_OP_USER_ENDPOINT": f"{issuer}/me",
            "OIDC_OP_JWKS_ENDPOINT": f"{issuer}/jwks",
            "OIDC_OP_INTROSPECTION_ENDPOINT": f"{issuer}/token/introspection",
            "OIDC_OP_INTROSPECT": "1",  # as before opaque tokens needed an opt-in
            "OIDC_RP_CLIENT_ID": "django-site",
            "OIDC_RP_CLIENT_SECRET": "dev-client-secret-change-me",
        }
    )
    return env


def start_gunicorn(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [
        *(sys.executable, "-m", "gunicorn", "project.wsgi"),
        *("--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "error"),
    ]
    with log.open("ab") as handle:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=handle)
    wait_ready(f"http://127.0.0.1:{port}", process, log)
    return process


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": "127.0.0.1", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def hammer(port: int, headers: dict[str, str], count: int, concurrency: int) -> float:
    """Seconds for ``count`` requests of ``/api/me/`` from ``concurrency`` threads."""

    def worker(share: int) -> list[int]:
        return [get(port, "/api/me/", headers)[0] for _ in range(share)]

    shares = [count // concurrency] * concurrency
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = [s for chunk in pool.map(worker, shares) for s in chunk]
    elapsed = time.perf_counter() - began
    expected = 401 if not headers else 200
    if set(statuses) != {expected}:
        raise SystemExit(f"unexpected answers on {port}: {sorted(set(statuses))}")
    return elapsed


def make_sessions(database_url: str, issuer: str, subject: str) -> tuple[str, str]:
    """The same user signed in on each variant: (this project's key, stock's key)."""
    os.environ.update(server_env(database_url, issuer, "project.settings"))
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group, User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import OIDCIdentity, OIDCSession
    from accounts.sessions import lifecycle as sessions

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("alice", email="alice@example.com", first_name="Alice")
    user.groups.add(*(Group.objects.create(name=name) for name in ("members", "editors")))
    OIDCIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    now = time.time()
    login = {
        SESSION_KEY: str(user.pk),
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }
    ours = SessionStore()
    ours.update(login)
    ours[BACKEND_SESSION_KEY] = "accounts.backends.OIDCBackend"
    ours.update(
        {
            sessions.SESSION_EXPIRES_AT: now + 3600,
            sessions.SESSION_LIFETIME: 3600,
            sessions.SESSION_STARTED_AT: now,
            sessions.SESSION_ISSUER: issuer,
            sessions.SESSION_SUBJECT: subject,
        }
    )
    ours.create()
    OIDCSession.objects.create(
        session_key=ours.session_key,
        user=user,
        issuer=issuer,
        subject=subject,
        access_expires_at=timezone.now() + timezone.timedelta(hours=1),
    )
    stock = SessionStore()
    stock.update(login)
    stock[BACKEND_SESSION_KEY] = "mozilla_django_oidc.auth.OIDCAuthenticationBackend"
    stock["oidc_id_token_expiration"] = now + 3600
    stock.create()
    return ours.session_key, stock.session_key


def provider_requests(idp) -> int:
    stats = idp.stats()
    counted = ("userinfo", "introspection", "jwks", "discovery")
    return sum(stats["token"].values()) + sum(stats[name] for name in counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    cluster = start_postgres()
    ours_port, stock_port = free_port(), free_port()
    idp = start_devidp(
        site_url=f"http://127.0.0.1:{ours_port}", workdir=workdir / "idp", access_token_ttl=3600
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        from tests.support.api_client import user_access_token

        token = user_access_token(idp, "alice", scope="openid api:read")
        import jwt

        subject = jwt.decode(token, options={"verify_signature": False})["sub"]
        ours_key, stock_key = make_sessions(cluster.url, idp.issuer, subject)
        for port, module in ((ours_port, "project.settings"), (stock_port, "bench.stock_settings")):
            env = server_env(cluster.url, idp.issuer, module)
            processes.append(start_gunicorn(port, env, workdir / f"{port}.log"))

        variants = {
            "session, this project": (ours_port, {"Cookie": f"sessionid={ours_key}"}),
            "session, stock": (stock_port, {"Cookie": f"sessionid={stock_key}"}),
            "anonymous, this project": (ours_port, {}),
            "anonymous, stock": (stock_port, {}),
            "bearer JWT, this project": (ours_port, {"Authorization": f"Bearer {token}"}),
        }
        for port, headers in variants.values():  # warm up: connections, caches, JWKS
            hammer(port, headers, 40, args.concurrency)
        rates: dict[str, list[float]] = {name: [] for name in variants}
        before = provider_requests(idp)
        for _ in range(args.rounds):
            # Small batches, variant after variant: drifting machine load hits all alike.
            seconds = dict.fromkeys(variants, 0.0)
            for _ in range(args.requests // BATCH):
                for name, (port, headers) in variants.items():
                    seconds[name] += hammer(port, headers, BATCH, args.concurrency)
            for name in variants:
                rates[name].append(args.requests // BATCH * BATCH / seconds[name])
        bearer_requests = args.rounds * (args.requests // BATCH * BATCH)
        provider_calls = provider_requests(idp) - before
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        idp.stop()
        cluster.stop()

    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"GET /api/me/ on gunicorn (2 sync workers each), PostgreSQL, {args.rounds} rounds of "
        f"{args.requests} requests from {args.concurrency} client threads, interleaved"
    )
    for name, values in rates.items():
        spread = f"min {min(values):.0f}, max {max(values):.0f}"
        print(f"  {name:<26} {median[name]:8.0f} req/s  ({spread})")
    checks = [
        ("session here/stock", median["session, this project"] / median["session, stock"], 0.90),
        (
            "anonymous here/stock",
            median["anonymous, this project"] / median["anonymous, stock"],
            0.95,
        ),
        (
            "bearer/session here",
            median["bearer JWT, this project"] / median["session, this project"],
            0.90,
        ),
    ]
    for label, ratio, target in checks:
        verdict = "PASS" if ratio >= target else "FAIL"
        print(f"  ratio {label:<22} {ratio:5.2f}  (target >= {target:.2f}) {verdict}")
    per_request = provider_calls / bearer_requests
    print(f"  provider requests per bearer request: {per_request:.4f} (target 0)")


if __name__ == "__main__":
    main()
