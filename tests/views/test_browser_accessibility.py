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
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    audit.record(audit.SIGN_IN, audit.FAILURE, reason="unknown_state", provider="")
    for n in range(30):  # long values, as real rows have them
        audit.record(
            audit.BEARER_REFUSED,
            audit.FAILURE,
            reason="token_audience_mismatch_for_a_rather_long_reason_code",
            provider="globex",
            subject=f"{n:04d}-8f2c1d5e-0a4b-4c6e-9d1f-3b7a2e5c9d01-with-a-long-tail",
            issuer="https://login.example.com/realms/a-very-long-realm-name/protocol/openid",
        )
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
        if name in ("admin-audit", "admin-sessions", "admin-providers"):
            screenshot(page, f"{name}-1280")
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280, name
            assert page.evaluate(  # no column hidden behind a scroll bar either
                "[...document.querySelectorAll('#changelist .results')]"
                ".every(e => e.scrollWidth <= e.clientWidth)"
            ), name
            heights = page.eval_on_selector_all(
                "#result_list tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
            )
            assert max(heights, default=0) < 45, (name, max(heights))
    screenshot(page, "admin-sessions-1280")
    page.goto(f"{live_server.url}/admin/accounts/auditevent/")
    screenshot(page, "admin-audit-1280")
    record(totals, "admin")
    assert not missing, missing  # the favicon included


def test_the_provider_form_copies_the_full_redirect_uri(two_orgs, live_server, page):
    from accounts.models import OIDCProvider

    acme, _globex = two_orgs
    row = OIDCProvider(slug="partner", label="Partner", issuer=acme.issuer, client_id="p")
    row.set_client_secret("s")
    row.save()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/admin/")
    page.click("#sso-login")
    sign_in_at_idp(page, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/admin/accounts/oidcprovider/{row.pk}/change/")
    uri = f"{live_server.url}/oidc/callback/partner/"
    assert page.locator("#redirect-uri").inner_text() == uri
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("document.getElementById('copy-status').textContent === 'Copied.'")
    assert page.evaluate("navigator.clipboard.readText()") == uri
    assert page.get_by_text("Client secret", exact=False).count() >= 1
    assert page.locator("input[name=client_secret]").count() == 1
    assert page.locator("input[name=client_secret]").input_value() == ""


def record(totals: Counter, part: str) -> None:
    path = ARTIFACTS / "axe" / f"summary-{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(totals), indent=2), encoding="utf-8")
    print(f"axe {part}: lesser violations {dict(totals)}")
