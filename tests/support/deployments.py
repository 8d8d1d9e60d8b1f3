"""Real deployments of the site for tests and benchmarks: real server processes, real stores.

``start_deployment(kind, workdir=...)`` starts the dev IdP (access tokens of a few seconds,
refresh tokens rotated and revoked on reuse unless ``rotate=False``), the database (a
SQLite file, or a throwaway PostgreSQL cluster), Redis when the kind says so, migrates, and
starts the site's server processes as a deployment would::

    with start_deployment("gunicorn2-sqlite", workdir=tmp_path) as site:
        http = site.sign_in("alice")
        answers = site.burst(http, "/api/me/", 20)

Only ever listens on and talks to 127.0.0.1 / localhost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tests.support.devidp import REPO_ROOT, DevIdP, free_port, start_devidp
from tests.support.postgres import start_postgres
from tests.support.redis import start_redis
from tests.support.signin import new_session, sign_in_with_requests

# name -> (server, workers per instance, instances, database, shared cache)
KINDS: dict[str, tuple[str, int, int, str, bool]] = {
    "runserver-sqlite": ("runserver", 1, 1, "sqlite", False),
    "gunicorn2-sqlite": ("gunicorn", 2, 1, "sqlite", False),
    "gunicorn2-postgres": ("gunicorn", 2, 1, "postgres", False),
    "2x-gunicorn2-postgres-redis": ("gunicorn", 2, 2, "postgres", True),
}
READY_TIMEOUT = 30.0


@dataclass
class Deployment:
    kind: str
    idp: DevIdP
    urls: list[str]
    logs: list[Path]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stoppers: list[Any] = field(default_factory=list)

    def sign_in(self, username: str) -> requests.Session:
        """The authorization-code flow over plain HTTP: site -> IdP login form -> site."""
        http = new_session()
        http.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
        return sign_in_with_requests(self.urls[0], username, session=http)

    def burst(self, http: requests.Session, path: str, count: int) -> list[requests.Response]:
        """``count`` requests at once, spread over every instance."""

        def get(index: int) -> requests.Response:
            url = self.urls[index % len(self.urls)] + path
            return http.get(url, timeout=60, allow_redirects=False)

        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(get, range(count)))

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for stop in reversed(self.stoppers):
            stop()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_deployment(
    kind: str,
    *,
    workdir: Path,
    access_token_ttl: int = 2,
    rotate: bool = True,
    site_env: dict[str, str] | None = None,
) -> Deployment:
    """Start everything ``kind`` needs (see ``KINDS``); stop it with ``stop()``.

    ``site_env``: more environment variables of the site's processes (settings to try).
    """
    server, workers, instances, database, shared_cache = KINDS[kind]
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(instances)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    idp = start_devidp(
        site_url=urls[0],
        workdir=workdir / "idp",
        access_token_ttl=access_token_ttl,
        extra_env={"DEVIDP_ROTATE_REFRESH_TOKENS": "1" if rotate else "0"},
    )
    deployment = Deployment(kind=kind, idp=idp, urls=urls, logs=[], stoppers=[idp.stop])
    try:
        env = _site_env(deployment, workdir, database=database, shared_cache=shared_cache)
        env.update(site_env or {})
        manage = [sys.executable, "manage.py"]
        subprocess.run(
            [*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env, check=True
        )
        for index, port in enumerate(ports):
            log = workdir / f"site-{index}.log"
            deployment.logs.append(log)
            if server == "runserver":
                command = [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"]
            else:
                command = [
                    *(sys.executable, "-m", "gunicorn", "project.wsgi"),
                    *("--workers", str(workers), "--threads", "4"),
                    *("--bind", f"127.0.0.1:{port}", "--timeout", "60"),
                ]
            with log.open("ab") as handle:
                deployment.processes.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO_ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                    )
                )
        for url, process, log in zip(urls, deployment.processes, deployment.logs, strict=True):
            wait_ready(url, process, log)
    except BaseException:
        deployment.stop()
        raise
    return deployment


def _site_env(
    deployment: Deployment, workdir: Path, *, database: str, shared_cache: bool
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "OIDC_", "DATABASE_URL", "CACHE_URL"))
    }
    if database == "sqlite":
        database_url = f"sqlite:///{workdir / 'site.sqlite3'}"
    else:
        cluster = start_postgres()
        deployment.stoppers.append(cluster.stop)
        database_url = cluster.url
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_DEBUG": "1",  # plain-HTTP cookies; runserver's and gunicorn's defaults
            "DJANGO_SECRET_KEY": "deployment-test-secret-key",
            "DATABASE_URL": database_url,
            "OIDC_OP_ISSUER": deployment.idp.issuer,
            "OIDC_RP_CLIENT_ID": deployment.idp.client_id,
            "OIDC_RP_CLIENT_SECRET": deployment.idp.client_secret,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if shared_cache:
        redis = start_redis(workdir / "redis")
        deployment.stoppers.append(redis.stop)
        env["CACHE_URL"] = redis.url
    return env


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once ``url``/healthz answers 200; raise with the log if the server died."""
    http = new_session()
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if http.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer /healthz within {READY_TIMEOUT:.0f}s")
