"""``GET /api/me/`` on gunicorn: this project against stock mozilla-django-oidc 5.0.2, side by side.

Starts a throwaway PostgreSQL cluster, an SQLite file (``make run``'s database) and the dev
IdP, then, for each database, two gunicorn servers (2 sync workers each, debug off): this
project (``project.settings``) and stock mozilla-django-oidc with its ``SessionRefresh``
middleware, django-csp's own middleware with the same policy, and an ``/api/me/`` view that
answers the same fields (``bench.stock_settings``). It measures, interleaved round by round
and database by database so that machine noise hits every variant alike, requests per
second of:

- a signed-in session (a session cookie holding what a sign-in records; the access token
  is fresh);
- an anonymous request (answered 401);
- this project's bearer path: an RFC 9068 JWT access token minted by the dev IdP;

and the server CPU per request (the gunicorn workers' user + system time over the variant's
own batches, which holds better than requests per second while other work shares the
machine). It prints, per database, the ratios of the medians: session here/stock (target
>= 1.0), anonymous here/stock (>= 1.0), bearer/session here (>= 0.90), the same ratios of
CPU per request (stock/here, so that >= 1.0 means no more CPU than stock), and provider
requests per bearer request (target 0).

    .venv/bin/python bench/bench_api.py [--requests 1000] [--rounds 5] [--concurrency 4]
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

from tests.support.api_client import (  # noqa: E402
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    machine_access_token,
)
from tests.support.deployments import wait_ready  # noqa: E402
from tests.support.devidp import free_port, start_devidp  # noqa: E402
from tests.support.dpop_client import DPoPClient  # noqa: E402
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


def server_cpu(master: int) -> float:
    """CPU seconds (user + system) spent so far by a gunicorn master's workers."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": "127.0.0.1", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def hammer(
    port: int,
    headers: dict[str, str] | list[dict[str, str]],
    count: int,
    concurrency: int,
    path: str = "/api/me/",
) -> float:
    """Seconds for ``count`` requests of ``path`` from ``concurrency`` threads.

    ``headers``: the same for every request, or a list of one set per request (DPoP: a
    fresh proof each, made before the clock starts).
    """
    each = headers if isinstance(headers, list) else [headers] * count
    share = count // concurrency

    def worker(first: int) -> list[int]:
        return [get(port, path, each[i])[0] for i in range(first, first + share)]

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = [
            s for chunk in pool.map(worker, range(0, share * concurrency, share)) for s in chunk
        ]
    elapsed = time.perf_counter() - began
    expected = 401 if not each[0] else 200
    if set(statuses) != {expected}:
        raise SystemExit(f"unexpected answers on {port}: {sorted(set(statuses))}")
    return elapsed


def sessions_in(database_url: str, issuer: str, subject: str) -> tuple[str, str]:
    """``make_sessions`` in a process of its own (Django is set up once per process)."""
    out = subprocess.run(
        [sys.executable, __file__, "--make-sessions", database_url, issuer, subject],
        cwd=ROOT,
        env=server_env(database_url, issuer, "project.settings"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[-2], out[-1]


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
    from accounts.sessions import token_store

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
            # Everything a sign-in records (lifecycle.py), so every per-request check runs.
            sessions.SESSION_PROVIDER: "default",
            sessions.SESSION_AUTH_TIME: now,
            sessions.SESSION_ACR: None,
            token_store.SESSION_KEY_ID: token_store.current_key_id(),
        }
    )
    ours.create()
    ours[sessions.SESSION_ROW_KEY] = ours.session_key
    ours.save()
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


def report(
    args: argparse.Namespace,
    rates: dict[str, list[float]],
    cpu: dict[str, list[float]],
    databases,
) -> bool:
    median = {name: statistics.median(values) for name, values in rates.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    print(
        f"GET /api/me/ on gunicorn (2 sync workers each), {args.rounds} rounds of "
        f"{args.requests} requests per variant from {args.concurrency} client threads, "
        "interleaved"
    )
    for name, values in rates.items():
        spread = f"min {min(values):.0f}, max {max(values):.0f}"
        print(
            f"  {name:<38} {median[name]:8.0f} req/s  ({spread})  "
            f"{cpu_median[name] * 1e6:6.0f} us CPU/request"
        )
    ok = True
    for db in databases:
        checks = [
            ("session here/stock", "session, this project", "session, stock", 1.0),
            ("anonymous here/stock", "anonymous, this project", "anonymous, stock", 1.0),
            ("bearer/session here", "bearer JWT, this project", "session, this project", 0.9),
            ("DPoP/bearer here", "whoami DPoP, this project", "whoami bearer, this project", 0.85),
        ]
        for label, ours, theirs, target in checks:
            if f"{db}: {ours}" not in median or f"{db}: {theirs}" not in median:
                continue
            ratio = median[f"{db}: {ours}"] / median[f"{db}: {theirs}"]
            by_cpu = cpu_median[f"{db}: {theirs}"] / cpu_median[f"{db}: {ours}"]
            ok &= ratio >= target
            verdict = "PASS" if ratio >= target else "FAIL"
            print(
                f"  {db:<10} ratio {label:<22} {ratio:5.2f}  (target >= {target:.2f}) {verdict}"
                f"   by CPU per request {by_cpu:5.2f}"
            )
    return ok


def main() -> int:
    if sys.argv[1:2] == ["--make-sessions"]:
        print(*make_sessions(*sys.argv[2:5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--only-dpop", action="store_true", help="only the DPoP and bearer whoami variants"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    cluster = start_postgres()
    databases = {"PostgreSQL": cluster.url, "SQLite": f"sqlite:///{workdir / 'bench.sqlite3'}"}
    ports = {(db, kind): free_port() for db in databases for kind in ("ours", "stock")}
    idp = start_devidp(
        site_url=f"http://127.0.0.1:{ports['PostgreSQL', 'ours']}",
        workdir=workdir / "idp",
        access_token_ttl=3600,
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        from tests.support.api_client import user_access_token

        token = user_access_token(idp, "alice", scope="openid api:read")
        import jwt

        subject = jwt.decode(token, options={"verify_signature": False})["sub"]
        dpop = DPoPClient()  # client credentials, a bearer and a DPoP-bound token
        form = {"grant_type": "client_credentials", "scope": "api:read"}
        form["resource"] = f"{idp.site_url}/api/"
        machine = machine_access_token(idp)
        bound = dpop.token(f"{idp.issuer}/token", form, (API_CLIENT_ID, API_CLIENT_SECRET))
        bound = bound["access_token"]
        variants: dict[str, tuple[int, dict[str, str]]] = {}
        proofs: dict[str, tuple[int, str]] = {}  # DPoP variants: made fresh for each batch
        for db, url in databases.items():
            ours_key, stock_key = sessions_in(url, idp.issuer, subject)
            ours, stock = ports[db, "ours"], ports[db, "stock"]
            for port, module in ((ours, "project.settings"), (stock, "bench.stock_settings")):
                env = server_env(url, idp.issuer, module)
                processes.append(start_gunicorn(port, env, workdir / f"{port}.log"))
            variants.update(
                {
                    f"{db}: session, this project": (ours, {"Cookie": f"sessionid={ours_key}"}),
                    f"{db}: session, stock": (stock, {"Cookie": f"sessionid={stock_key}"}),
                    f"{db}: anonymous, this project": (ours, {}),
                    f"{db}: anonymous, stock": (stock, {}),
                    f"{db}: bearer JWT, this project": (
                        ours,
                        {"Authorization": f"Bearer {token}"},
                    ),
                    f"{db}: whoami bearer, this project": (
                        ours,
                        {"Authorization": f"Bearer {machine}"},
                    ),
                }
            )
            proofs[f"{db}: whoami DPoP, this project"] = (ours, bound)
            if args.only_dpop:
                variants = {k: v for k, v in variants.items() if "whoami" in k}
        variants.update({name: (port, {}) for name, (port, _) in proofs.items()})

        def batch(name: str, size: int) -> dict[str, str] | list[dict[str, str]]:
            if name not in proofs:
                return variants[name][1]
            url = "http://127.0.0.1/api/whoami/"  # the Host the requests send
            return [
                {"Authorization": f"DPoP {bound}", "DPoP": dpop.proof("GET", url, bound)}
                for _ in range(size)
            ]

        def path_of(name: str) -> str:
            return "/api/whoami/" if "whoami" in name else "/api/me/"

        for name, (port, _) in variants.items():  # warm up: connections, caches, JWKS
            hammer(port, batch(name, 40), 40, args.concurrency, path_of(name))
        rates: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        masters = dict(zip(ports.values(), (p.pid for p in processes), strict=True))
        before = provider_requests(idp)
        count = args.requests // BATCH * BATCH
        for _ in range(args.rounds):
            # Small batches, variant after variant: drifting machine load hits all alike.
            seconds = dict.fromkeys(variants, 0.0)
            used = dict.fromkeys(variants, 0.0)
            for _ in range(args.requests // BATCH):
                for name, (port, _) in variants.items():
                    headers = batch(name, BATCH)  # proofs made before the clock starts
                    spent = server_cpu(masters[port])
                    seconds[name] += hammer(port, headers, BATCH, args.concurrency, path_of(name))
                    used[name] += server_cpu(masters[port]) - spent
            for name in variants:
                rates[name].append(count / seconds[name])
                cpu[name].append(used[name] / count)
        bearer_requests = len(databases) * args.rounds * count
        provider_calls = provider_requests(idp) - before
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        idp.stop()
        cluster.stop()

    ok = report(args, rates, cpu, databases)
    per_request = provider_calls / bearer_requests
    print(f"  provider requests per bearer request: {per_request:.4f} (target 0)")
    return 0 if ok and per_request == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
