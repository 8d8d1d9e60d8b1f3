"""`make run`: the site on 127.0.0.1:8000 (SQLite) and the dev IdP on localhost:9000.

Migrates, starts both, prints the URLs and the demo logins, and stops both on Ctrl-C.
Every setting can still be overridden from the environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = os.environ.get("SITE_URL", "http://127.0.0.1:8000")
IDP_PORT = os.environ.get("DEVIDP_PORT", "9000")
ISSUER = f"http://localhost:{IDP_PORT}"

SITE_ENV = {
    "DJANGO_DEBUG": "1",
    "OIDC_OP_ISSUER": ISSUER,
    "OIDC_RP_CLIENT_ID": "django-site",
    "OIDC_RP_CLIENT_SECRET": "dev-client-secret-change-me",
    "OIDC_GROUPS_ALLOWLIST": "editors,members,sso-staff,sso-superusers",
    "OIDC_STAFF_GROUPS": "sso-staff",
    "OIDC_SUPERUSER_GROUPS": "sso-superusers",
}


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # loopback only
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def main() -> None:
    env = {**SITE_ENV, **os.environ}
    python = sys.executable
    migrate = [python, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)
    idp = subprocess.Popen(
        ["node", "devidp/server.js"],
        cwd=ROOT,
        env={**os.environ, "DEVIDP_PORT": IDP_PORT, "DEVIDP_SITE_URL": SITE},
    )
    host_port = SITE.split("://", 1)[1]
    site = subprocess.Popen([python, "manage.py", "runserver", host_port], cwd=ROOT, env=env)
    try:
        wait_for(f"{ISSUER}/.well-known/openid-configuration")
        wait_for(f"{SITE}/healthz")
        users = json.loads((ROOT / "devidp" / "users.json").read_text())
        print(f"\n  Site:    {SITE}/\n  Admin:   {SITE}/admin/\n  Dev IdP: {ISSUER}/\n")
        print("  Demo logins (username / password, groups):")
        for user in users:
            print(f"    {user['username']:<8} / {user['password']:<8} {', '.join(user['groups'])}")
        print("\n  Ctrl-C stops both.\n", flush=True)
        site.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for process in (site, idp):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (site, idp):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
