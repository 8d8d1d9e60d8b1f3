"""Pytest fixtures for integration: the real dev IdP, the live site, headless Chromium.

The site runs on 127.0.0.1 (pytest-django's live server, ``--liveserver=127.0.0.1``) and
the dev IdP on ``localhost``, so their cookies never mix. Chromium is Debian's, driven by
Playwright; ``playwright install`` is never used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.devidp import DevIdP, start_devidp

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests
# make there are still synchronous, so Django's async-safety guard must stand aside.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def devidp(live_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    """The dev OpenID Provider, registered for this worker's live server."""
    idp = start_devidp(
        site_url=live_server.url,
        workdir=tmp_path_factory.mktemp("devidp"),
        access_token_ttl=int(os.environ.get("TEST_DEVIDP_ACCESS_TOKEN_TTL", "300")),
    )
    yield idp
    idp.stop()


@pytest.fixture(scope="session")
def devidp_globex(live_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    """The second organisation's dev IdP (its own issuer, clients and users), as in make run."""
    from tests.support.devidp import GLOBEX_USERS_FILE, globex_env

    idp = start_devidp(
        site_url=live_server.url,
        workdir=tmp_path_factory.mktemp("devidp-globex"),
        extra_env=globex_env(),
        users=GLOBEX_USERS_FILE,
    )
    yield idp
    idp.stop()


@pytest.fixture
def two_orgs(idp_site: DevIdP, devidp_globex: DevIdP, settings) -> tuple[DevIdP, DevIdP]:
    """The site with two providers, as ``make run`` sets it up: Acme (default) and Globex."""
    from tests.support.devidp import GLOBEX_SLUG, GLOBEX_USERS_FILE, load_demo_users

    devidp_globex.set_users(load_demo_users(GLOBEX_USERS_FILE))
    settings.OIDC_OP_LABEL = "Acme"
    settings.OIDC_OP_EMAIL_DOMAINS = ["example.com"]
    settings.OIDC_PROVIDERS = {
        GLOBEX_SLUG: {
            "label": "Globex",
            "issuer": devidp_globex.issuer,
            "client_id": devidp_globex.client_id,
            "client_secret": devidp_globex.client_secret,
            "email_domains": ["globex.example"],
            "groups_allowlist": ["editors", "members", "sso-staff"],
            "staff_groups": ["sso-staff"],
        }
    }
    return idp_site, devidp_globex


@pytest.fixture
def idp_site(devidp: DevIdP, live_server, settings) -> DevIdP:
    """Point the site's settings at the dev IdP (through discovery), with fresh users."""
    devidp.set_users(_demo_users())
    settings.OIDC_OP_ISSUER = devidp.issuer
    for name in ("AUTHORIZATION", "TOKEN", "USER", "JWKS", "LOGOUT"):
        setattr(settings, f"OIDC_OP_{name}_ENDPOINT", "")
    settings.OIDC_OP_DISCOVERY = True
    settings.OIDC_OP_INTROSPECT = True  # opaque access tokens are checked at the dev IdP
    settings.OIDC_RP_CLIENT_ID = devidp.client_id
    settings.OIDC_RP_CLIENT_SECRET = devidp.client_secret
    settings.OIDC_GROUPS_ALLOWLIST = ["editors", "members", "sso-staff", "sso-superusers"]
    settings.OIDC_GROUPS_PREFIX = ""
    settings.OIDC_STAFF_GROUPS = ["sso-staff"]
    settings.OIDC_SUPERUSER_GROUPS = ["sso-superusers"]
    devidp.reset_stats()
    return devidp


def _demo_users() -> list[dict]:
    from tests.support.devidp import load_demo_users

    return load_demo_users()


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium) -> Iterator[object]:
    """A fresh browser context (no cookies) and page for one test."""
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot into the git-ignored artifacts folder."""
    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in_at_idp(page, username: str, password: str | None = None) -> None:
    """Fill in the dev IdP's login form (the page must be on it)."""
    page.fill("#username", username)
    page.fill("#password", password if password is not None else username)
    page.click("button[type=submit]")
