"""Start and drive the development OpenID Provider (``devidp/server.js``).

Used by pytest fixtures and scripts::

    idp = start_devidp(site_url="http://127.0.0.1:8765", workdir=tmp_path)
    try:
        ...  # point the Django site at idp.issuer / idp.client_id / idp.client_secret
        idp.set_users([...])      # change users (and their groups) between sign-ins
        kid = idp.rotate_keys()   # new signing key, old one stays in the JWKS
        idp.stats()               # request counters, see devidp/server.js
    finally:
        idp.stop()

Only ever talks to 127.0.0.1 / localhost. Needs ``node`` on PATH and
``npm ci`` run once in ``devidp/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVIDP_DIR = REPO_ROOT / "devidp"
SERVER_JS = DEVIDP_DIR / "server.js"
DEMO_USERS_FILE = DEVIDP_DIR / "users.json"
# The second organisation of `make run`: its own issuer (another process), client and users.
GLOBEX_USERS_FILE = DEVIDP_DIR / "users-globex.json"
GLOBEX_SLUG = "globex"
GLOBEX_CLIENT_ID = "globex-site"
GLOBEX_CLIENT_SECRET = "globex-secret-change-me"
# A second client at Globex, for the provider an operator adds in the admin.
PARTNER_SLUG = "partner"
PARTNER_CLIENT_ID = "partner-site"
PARTNER_CLIENT_SECRET = "partner-secret-change-me"

# The third organisation of `make run`: FAPI 2.0 (PAR, DPoP with nonces, private_key_jwt,
# ES256), see devidp/server.js's DEVIDP_FAPI2.
INITECH_USERS_FILE = DEVIDP_DIR / "users-initech.json"
INITECH_SLUG = "initech"
INITECH_CLIENT_ID = "initech-site"

DEFAULT_CLIENT_ID = "django-site"
DEFAULT_CLIENT_SECRET = "dev-client-secret-change-me"
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

# Never go through a proxy, whatever the environment says: the IdP is local.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def load_demo_users(path: Path = DEMO_USERS_FILE) -> list[dict[str, Any]]:
    """Return a fresh copy of the demo users shipped in ``devidp/users.json`` (or ``path``)."""
    return json.loads(path.read_text(encoding="utf-8"))


def globex_env() -> dict[str, str]:
    """The environment of the second organisation's dev IdP (see scripts/dev.py)."""
    extra = [
        {
            "client_id": PARTNER_CLIENT_ID,
            "client_secret": PARTNER_CLIENT_SECRET,
            "callback_path": f"/oidc/callback/{PARTNER_SLUG}/",
        }
    ]
    return {
        "DEVIDP_CLIENT_ID": GLOBEX_CLIENT_ID,
        "DEVIDP_CLIENT_SECRET": GLOBEX_CLIENT_SECRET,
        "DEVIDP_CALLBACK_PATH": f"/oidc/callback/{GLOBEX_SLUG}/",
        "DEVIDP_EXTRA_CLIENTS": json.dumps(extra),
        "DEVIDP_ORG_NAME": "Globex",
    }


def fapi2_env(*, client_id: str = DEFAULT_CLIENT_ID, callback_path: str = "/oidc/callback/"):
    """The environment of a FAPI 2.0 dev IdP (Initech in scripts/dev.py)."""
    return {
        "DEVIDP_FAPI2": "1",
        "DEVIDP_TOKEN_AUTH_METHOD": "private_key_jwt",
        "DEVIDP_CLIENT_ID": client_id,
        "DEVIDP_CALLBACK_PATH": callback_path,
        "DEVIDP_ORG_NAME": "Initech",
    }


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request_json(method: str, url: str, timeout: float = 10.0) -> Any:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with _OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class DevIdP:
    """A running devidp process and the settings a relying party needs."""

    def __init__(
        self,
        *,
        issuer: str,
        port: int,
        client_id: str,
        client_secret: str,
        users_file: Path,
        keys_file: Path,
        log_file: Path,
        site_url: str,
        process: subprocess.Popen[bytes],
    ) -> None:
        self.issuer = issuer
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.users_file = users_file
        self.keys_file = keys_file
        self.log_file = log_file
        self.site_url = site_url
        self.process = process

    @property
    def discovery_url(self) -> str:
        """URL of the OpenID discovery document."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def stats(self) -> dict[str, Any]:
        """Return the counters of ``GET /__dev/stats``."""
        return _request_json("GET", f"{self.issuer}/__dev/stats")

    def reset_stats(self) -> None:
        """Zero the counters (``POST /__dev/stats/reset``)."""
        _request_json("POST", f"{self.issuer}/__dev/stats/reset")

    def rotate_keys(self) -> str:
        """Make a new RSA key the signing key; return its ``kid``.

        The previous key stays in the published JWKS; sessions, grants and
        refresh tokens survive.
        """
        return str(_request_json("POST", f"{self.issuer}/__dev/rotate-keys")["kid"])

    def set_clock_offset(self, seconds: float) -> None:
        """Shift the provider's clock (its tokens' iat/exp) by ``seconds`` from now on."""
        _request_json("POST", f"{self.issuer}/__dev/clock?offset={seconds}")

    def pause(self) -> None:
        """Stop the process (SIGSTOP): connections are accepted by the kernel, never answered."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def set_users(self, users: list[dict[str, Any]]) -> None:
        """Atomically replace the users file.

        The IdP re-reads it on every login and every claims lookup, so the next
        sign-in / token refresh / userinfo call sees the new data.
        """
        data = json.dumps(users, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".users-", suffix=".tmp", dir=self.users_file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.users_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the IdP's log."""
        return _tail(self.log_file, lines)

    def stop(self) -> None:
        """Terminate the process: SIGTERM, then SIGKILL after 5 s. Idempotent."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)  # a paused process cannot stop
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> DevIdP:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_devidp(
    *,
    site_url: str,
    workdir: Path,
    port: int | None = None,
    access_token_ttl: int | None = None,
    extra_env: dict[str, str] | None = None,
    users: Path = DEMO_USERS_FILE,
) -> DevIdP:
    """Start ``node devidp/server.js`` for the relying party at ``site_url``.

    ``workdir`` receives ``users.json`` (a copy of the demo users),
    ``keys.json`` and ``devidp.log``. Returns once discovery answers 200;
    raises ``RuntimeError`` with the log tail if it does not within 20 s.
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH; devidp needs Node.js 20+")
    if not (DEVIDP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(f"oidc-provider is not installed: run `npm ci` in {DEVIDP_DIR}")

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    users_file = workdir / "users.json"
    keys_file = workdir / "keys.json"
    log_file = workdir / "devidp.log"
    shutil.copyfile(users, users_file)

    port = port or free_port()
    issuer = f"http://localhost:{port}"

    # Drop DEVIDP_* inherited from a developer's shell so they cannot point
    # this instance somewhere else; extra_env can still set anything.
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEVIDP_")}
    env.update(
        {
            "DEVIDP_PORT": str(port),
            "DEVIDP_HOST": "127.0.0.1",
            "DEVIDP_ISSUER": issuer,
            "DEVIDP_SITE_URL": site_url.rstrip("/"),
            "DEVIDP_USERS_FILE": str(users_file),
            "DEVIDP_KEYS_FILE": str(keys_file),
        }
    )
    if access_token_ttl is not None:
        env["DEVIDP_ACCESS_TOKEN_TTL"] = str(access_token_ttl)
    env.update(extra_env or {})

    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [node, str(SERVER_JS)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    idp = DevIdP(
        issuer=issuer,
        port=port,
        client_id=env.get("DEVIDP_CLIENT_ID", DEFAULT_CLIENT_ID),
        client_secret=env.get("DEVIDP_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
        users_file=users_file,
        keys_file=keys_file,
        log_file=log_file,
        site_url=site_url.rstrip("/"),
        process=process,
    )
    try:
        _wait_until_ready(idp)
    except BaseException:
        idp.stop()
        raise
    return idp


def _wait_until_ready(idp: DevIdP, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if idp.process.poll() is not None:
            code = idp.process.returncode
            raise RuntimeError(f"devidp exited with code {code} during startup:\n{idp.log_tail()}")
        try:
            with _OPENER.open(idp.discovery_url, timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise RuntimeError(
        f"devidp did not answer {idp.discovery_url} within {timeout:.0f}s ({last_error}):\n"
        f"{idp.log_tail()}"
    )
