"""The foundation: settings from the environment, PostgreSQL, SQLite by default, check --deploy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import DatabaseError, connection

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x7$kq!9vZ2pL@m4Rt8wYc#3nB6hJ1sF5dG0aE-uQ_iO+yT*rW&zX^vN%bM(cK)lP",
    "DJANGO_ALLOWED_HOSTS": "sso.example.com",
    "DATABASE_URL": "postgres://site:secret@db.internal:5432/site",
    "CACHE_URL": "redis://cache.internal:6379/0",
    "OIDC_OP_ISSUER": "https://login.example.com/realms/main",
    "OIDC_RP_CLIENT_ID": "site",
    "OIDC_RP_CLIENT_SECRET": "client-secret",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("CACHE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "project.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_suite_runs_on_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


def test_check_deploy_is_clean_with_a_production_environment():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_about_a_local_memory_cache_in_production():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "CACHE_URL"}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "accounts.W001" in result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_settings_read_urls_for_database_and_cache():
    script = (
        "from django.conf import settings as s; import json; print(json.dumps({"
        "'engine': s.DATABASES['default']['ENGINE'], 'host': s.DATABASES['default']['HOST'],"
        "'cache': s.CACHES['default']['BACKEND'], 'location': s.CACHES['default']['LOCATION'],"
        "'ssl_redirect': s.SECURE_SSL_REDIRECT, 'hsts': s.SECURE_HSTS_SECONDS,"
        "'algos': s.OIDC_RP_SIGN_ALGO}))"
    )
    env = {**PRODUCTION_ENV, "OIDC_RP_SIGN_ALGO": "RS256,ES256"}
    result = run_manage("shell", "--no-imports", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values == {
        "engine": "django.db.backends.postgresql",
        "host": "db.internal",
        "cache": "django.core.cache.backends.redis.RedisCache",
        "location": "redis://cache.internal:6379/0",
        "ssl_redirect": True,
        "hsts": 31536000,
        "algos": ["RS256", "ES256"],
    }


def test_sqlite_default_migrates_and_serves_healthz(tmp_path):
    """The default database (SQLite) keeps working: migrate, then a request through the stack."""
    env = {
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}",
        "OIDC_OP_ISSUER": "http://localhost:9000",
        "OIDC_RP_CLIENT_ID": "django-site",
    }
    migrate = run_manage("migrate", "--noinput", env=env)
    assert migrate.returncode == 0, migrate.stderr
    script = (
        "from django.db import connection; from django.test import Client;"
        "r = Client(HTTP_HOST='127.0.0.1').get('/healthz');"
        "print(connection.vendor, r.status_code, r.json()['status'])"
    )
    result = run_manage("shell", "--no-imports", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sqlite", "200", "ok"]


@pytest.mark.django_db
def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_does_not(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


@pytest.mark.parametrize("debug", ["1", "0"])
def test_each_log_record_is_printed_once(debug):
    """Django's own loggers (a 5xx of django.request) and ours print one line per record."""
    script = (
        "import logging\n"
        "logging.getLogger('django.request').error('marker-django-request')\n"
        "logging.getLogger('accounts.refresh').warning('marker-accounts')\n"
    )
    env = {**PRODUCTION_ENV, "DJANGO_DEBUG": debug, "DATABASE_URL": "sqlite:///:memory:"}
    result = run_manage("shell", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("marker-django-request") == 1, result.stderr
    assert result.stderr.count("marker-accounts") == 1, result.stderr


def test_sqlite_waits_for_a_writer_instead_of_failing(tmp_path):
    """The SQLite default: immediate transactions, a busy timeout and WAL."""
    env = {**PRODUCTION_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    script = (
        "from django.db import connection\n"
        "c = connection.cursor()\n"
        "print(c.execute('PRAGMA journal_mode').fetchone()[0])\n"
        "print(c.execute('PRAGMA busy_timeout').fetchone()[0])\n"
        "print(connection.settings_dict['OPTIONS']['transaction_mode'])\n"
    )
    result = run_manage("shell", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["wal", "20000", "IMMEDIATE"]
