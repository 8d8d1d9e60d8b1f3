"""Admin step-up in Chromium against the real dev IdP: max_age/auth_time and acr_values/acr.

The dev IdP honours ``max_age`` (oidc-provider re-prompts when its session is older) and
reports ``acr`` "mfa" when the one-time code is entered on its login form, "pwd" without.
Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import time

import pytest

from tests.support.browser import screenshot, sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ONE_TIME_CODE = "123456"  # devidp/users.json: admin and staff


@pytest.fixture
def short_limit(settings):
    """An admin limit of two seconds, and a leeway of one, so that a test can outlive it."""
    settings.OIDC_ADMIN_MAX_AUTH_AGE = 2
    settings.OIDC_CLOCK_LEEWAY = 1
    return settings


def record_requests(page) -> list[str]:
    """Every URL the page requests from now on, redirect hops included."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    return requested


def sign_in_to_admin(page, live_server, idp, username: str, otp: str = "") -> None:
    page.goto(f"{live_server.url}/admin/")
    page.locator("#sso-login").click()
    page.wait_for_url(f"{idp.issuer}/interaction/**")
    if otp:
        page.fill("#otp", otp)
    sign_in_at_idp(page, username)


def test_an_old_authentication_goes_back_to_the_provider_then_reaches_the_admin(
    idp_site, live_server, page, short_limit, settings
):
    settings.OIDC_USE_PAR = "0"  # the browser sees max_age only when the request is not pushed
    sign_in_to_admin(page, live_server, idp_site, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    time.sleep(3.5)  # the authentication at the provider is now older than the limit

    visited = record_requests(page)
    page.goto(f"{live_server.url}/admin/auth/group/?o=1")
    # The provider's own session is older than max_age too: it asks for the password again.
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    assert page.locator("#password").is_visible()
    screenshot(page, "stepup-provider-asks-again")
    sign_in_at_idp(page, "admin")
    page.wait_for_url(f"{live_server.url}/admin/auth/group/?o=1")
    assert page.get_by_role("heading", name="Select group to change").is_visible()
    assert any("max_age=2" in url for url in visited if url.startswith(idp_site.issuer)), visited
    screenshot(page, "stepup-admin-reached")


def test_with_acr_values_a_password_alone_is_refused_and_the_second_factor_gets_in(
    idp_site, live_server, page, settings
):
    settings.OIDC_ADMIN_ACR_VALUES = ["mfa"]
    page.goto(f"{live_server.url}/admin/")
    page.locator("#sso-login").click()
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    assert page.locator("#mfa-requested").is_visible()  # acr_values=mfa reached the provider
    sign_in_at_idp(page, "staff")  # no one-time code: acr "pwd"

    page.wait_for_url(f"{live_server.url}/oidc/callback/**")
    assert page.get_by_role("heading", name="The admin needs a fresh sign-in").is_visible()
    assert "The admin needs a stronger sign-in (mfa)" in page.locator("main").inner_text()
    screenshot(page, "stepup-acr-refused")
    assert page.request.get(f"{live_server.url}/api/me/").status == 401

    # Again: the provider's session is only "pwd", so it asks for the second factor only.
    page.goto(f"{live_server.url}/admin/")
    page.locator("#sso-login").click()
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    assert page.locator("#password").count() == 0
    page.fill("#otp", ONE_TIME_CODE)
    page.click("#code-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#site-name").inner_text() == "Acme Portal administration"

    page.goto(f"{live_server.url}/accounts/profile/")
    assert page.locator("#auth-acr").inner_text() == "mfa"
    screenshot(page, "stepup-profile-mfa")


def test_site_pages_never_ask_for_step_up(idp_site, live_server, page, short_limit):
    short_limit.OIDC_ADMIN_ACR_VALUES = ["mfa"]
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    assert page.locator("#mfa-requested").count() == 0  # an ordinary sign-in asks for nothing
    sign_in_at_idp(page, "staff")
    page.wait_for_url(f"{live_server.url}/")
    time.sleep(3.5)  # older than the admin's limit, and without the second factor

    visited = record_requests(page)
    for path in ("/", "/members/", "/accounts/profile/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
    assert not [url for url in visited if url.startswith(idp_site.issuer)], visited
    assert page.locator("#auth-acr").inner_text() == "pwd"
    assert "ago" in page.locator("#auth-time").inner_text()
    screenshot(page, "stepup-profile")

    # The admin, by contrast, asks the provider.
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")


def test_the_demo_step_up_asks_a_password_session_for_the_one_time_code_only(
    idp_site, live_server, page, settings
):
    """``make run``: OIDC_ADMIN_ACR_VALUES=mfa; staff signed in with a password meet the
    step-up at the admin, and the provider asks for nothing but the one-time code."""
    from accounts.audit import log as audit
    from accounts.models import AuditEvent

    settings.OIDC_ADMIN_ACR_VALUES = ["mfa"]
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    assert "optional" in page.locator("label[for=otp]").inner_text()  # nobody asked for it
    sign_in_at_idp(page, "admin")  # the password alone: acr "pwd"
    page.wait_for_url(f"{live_server.url}/")
    assert not AuditEvent.objects.filter(event=audit.ADMIN_STEP_UP).exists()

    page.goto(f"{live_server.url}/admin/")
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    assert page.locator("#password").count() == 0 and page.locator("#username").count() == 0
    assert page.locator("#code-user").inner_text() == "admin"
    assert page.locator("label[for=otp]").inner_text() == (
        "One-time code (second factor, required)"
    )
    screenshot(page, "stepup-code-only")
    page.fill("#otp", "000000")
    page.click("#code-form button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "Invalid one-time code"
    page.fill("#otp", ONE_TIME_CODE)
    page.click("#code-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#site-name").inner_text() == "Acme Portal administration"

    row = AuditEvent.objects.get(event=audit.ADMIN_STEP_UP)
    assert (row.outcome, row.username, row.detail["acr"]) == ("success", "admin", "mfa")
    page.goto(f"{live_server.url}/accounts/profile/")
    assert page.locator("#auth-acr").inner_text() == "mfa"
