"""axe-core on the site's and the admin's pages, in Chromium with two organisations.

No page may have a ``serious`` or ``critical`` violation. The lesser ones are counted into
``artifacts/axe/summary.json``. Screenshots at 1280 px and 375 px of the chooser, the
profile, the provider form and the audit summary go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from accounts.audit import log as audit
from tests.support.axe import assert_no_serious_violations
from tests.support.browser import ARTIFACTS, screenshot, sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"1280": 1280, "375": 375}


def check(page, name: str, totals: Counter, *, shots: bool = False) -> None:
    totals.update(assert_no_serious_violations(page, name))
    if shots:
        for label, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            screenshot(page, f"{name}-{label}")
        page.set_viewport_size({"width": 1280, "height": 900})


def test_the_site_pages_have_no_serious_accessibility_violations(two_orgs, live_server, page):
    acme, _globex = two_orgs
    totals: Counter = Counter()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/")
    check(page, "home-anonymous", totals)
    page.goto(f"{live_server.url}/members/")
    page.wait_for_url(f"{live_server.url}/accounts/signin/**")
    check(page, "chooser", totals, shots=True)
    page.fill("#work-email", "x@unknown.example")
    page.click("#work-email-continue")
    check(page, "chooser-unknown-domain", totals)
    page.goto(f"{live_server.url}/oidc/callback/?state=forged&code=x")
    check(page, "error", totals, shots=True)

    page.goto(f"{live_server.url}/members/")
    page.click("#signin-default")
    page.wait_for_url(f"{acme.issuer}/interaction/**")
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/members/")
    check(page, "members", totals)
    page.goto(f"{live_server.url}/")
    check(page, "home", totals)
    page.goto(f"{live_server.url}/accounts/profile/")
    check(page, "profile", totals, shots=True)
    page.goto(f"{live_server.url}/accounts/signin/")
    check(page, "signin-signed-in", totals)
    record(totals, "site")


def test_the_admin_pages_have_no_serious_accessibility_violations(two_orgs, live_server, page):
    acme, _globex = two_orgs
    totals: Counter = Counter()
    audit.record(audit.SIGN_IN, audit.FAILURE, reason="unknown_state", provider="")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/")
    check(page, "admin-login", totals)
    page.click("#sso-login")
    page.wait_for_url(f"{acme.issuer}/interaction/**")
    sign_in_at_idp(page, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    check(page, "admin-index", totals)
    for name, path in (
        ("admin-providers", "/admin/accounts/oidcprovider/"),
        ("admin-provider-form", "/admin/accounts/oidcprovider/add/"),
        ("admin-audit", "/admin/accounts/auditevent/"),
        ("admin-audit-summary", "/admin/accounts/auditevent/summary/"),
        ("admin-sessions", "/admin/accounts/oidcsession/"),
    ):
        page.goto(f"{live_server.url}{path}")
        check(page, name, totals, shots=name in ("admin-provider-form", "admin-audit-summary"))
    record(totals, "admin")


def record(totals: Counter, part: str) -> None:
    path = ARTIFACTS / "axe" / f"summary-{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(totals), indent=2), encoding="utf-8")
    print(f"axe {part}: lesser violations {dict(totals)}")  # noqa: T201
