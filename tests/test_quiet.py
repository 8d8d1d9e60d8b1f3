"""Quiet what does not need to be seen: the sid in the admin, codes in the dev server's log."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import OIDCSession

ROOT = Path(__file__).resolve().parents[1]


def admin_client(**flags) -> Client:
    user = get_user_model().objects.create(username=f"u{len(flags)}", is_staff=True, **flags)
    user.user_permissions.set(Permission.objects.filter(codename="view_oidcsession"))
    client = Client()
    client.force_login(user, backend="accounts.backends.OIDCBackend")
    return client


@pytest.mark.django_db
def test_only_superusers_see_a_sessions_sid_in_the_admin():
    owner = get_user_model().objects.create(username="alice")
    row = OIDCSession.objects.create(
        session_key="k", user=owner, issuer="https://idp.example", subject="s", sid="SID-7f3a9c"
    )
    urls = ["/admin/accounts/oidcsession/", f"/admin/accounts/oidcsession/{row.pk}/change/"]
    staff, root = admin_client(), admin_client(is_superuser=True)
    for url in urls:
        seen = staff.get(url)
        assert seen.status_code == 200
        assert "SID-7f3a9c" not in seen.content.decode()
        assert "SID-7f3a9c" in root.get(url).content.decode()
    # Nor can staff find a session by guessing its sid.
    found = staff.get(urls[0], {"q": "SID-7f3a9c"}).content.decode()
    assert "alice" not in found.split("<tbody>")[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_dev_server_does_not_log_the_callbacks_query_string(tmp_path):
    """``make run`` runs ``manage.py runserver``: its request lines keep no code or state."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "OIDC_OP_ISSUER": "http://localhost:9",
        "OIDC_RP_CLIENT_ID": "c",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}/oidc/callback/?code=CODE-SECRET-1&state=STATE-2"
            for _ in range(100):
                try:
                    urllib.request.urlopen(url, timeout=2)  # loopback only
                    break
                except urllib.error.HTTPError:
                    break  # answered (400: unknown state)
                except OSError:
                    time.sleep(0.1)
            time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=10)
    text = log.read_text()
    assert "GET /oidc/callback/?... HTTP/1.1" in text, text[-2000:]
    assert "CODE-SECRET-1" not in text and "STATE-2" not in text
