"""Signing out at the provider ends the site's session by back-channel logout (issue 5, 3)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from accounts.models import OIDCSession
from tests.support.browser import screenshot, sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALICE_SUB = "c51f0e28-7b3d-4a96-b2e4-9d8a6f1c3b03"


def wait_for_backchannel_ok(idp, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        counts = idp.stats()["backchannel_logout"]
        if counts["ok"] >= 1 or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def test_sign_out_at_the_provider_signs_out_at_the_site(idp_site, live_server, page):
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/")
    assert page.request.get(f"{live_server.url}/api/me/").status == 200
    assert OIDCSession.objects.filter(subject=ALICE_SUB).count() == 1

    # Straight to the provider's end_session page: no id_token_hint, no return address.
    page.goto(f"{idp_site.issuer}/session/end")
    try:
        page.wait_for_url(f"{idp_site.issuer}/session/end/success**", timeout=3_000)
    except PlaywrightTimeoutError:  # the auto-submit is off (DEVIDP_LOGOUT_AUTOSUBMIT=0)
        page.click("#sign-out")
        page.wait_for_url(f"{idp_site.issuer}/session/end/success**")
    assert page.get_by_role("heading", name="Signed out").is_visible()

    counts = wait_for_backchannel_ok(idp_site)
    assert counts["ok"] >= 1, (counts, idp_site.log_tail())
    assert counts["failed"] == 0, (counts, idp_site.log_tail())
    assert OIDCSession.objects.filter(subject=ALICE_SUB).count() == 0

    # The site's next page: signed out, sent to sign in, and the provider asks again.
    response = page.goto(f"{live_server.url}/accounts/profile/")
    first = response.request
    while first.redirected_from is not None:
        first = first.redirected_from
    assert first.url == f"{live_server.url}/accounts/profile/"
    assert first.redirected_to.url.startswith(f"{live_server.url}/oidc/authenticate/")
    assert page.url.startswith(f"{idp_site.issuer}/interaction/")
    assert page.locator("#password").is_visible()
    assert page.request.get(f"{live_server.url}/api/me/").status == 401

    page.goto(f"{live_server.url}/")
    assert page.get_by_role("link", name="Sign in with SSO").is_visible()
    assert page.locator(".account .username").count() == 0
    screenshot(page, "backchannel-signed-out")
