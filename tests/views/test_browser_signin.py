"""Headless Chromium signs in through the real dev IdP's login page."""

from __future__ import annotations

import pytest

from tests.support.browser import screenshot, sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_demo_user_signs_in_through_the_dev_idp_and_lands_signed_in(idp_site, live_server, page):
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    assert page.url.startswith(idp_site.issuer)  # on the provider's login page
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/**")
    assert "Hello, Alice" in page.content()
    screenshot(page, "home-signed-in")
    me = page.request.get(f"{live_server.url}/api/me/").json()
    assert me["username"] == "alice"
    assert me["iss"] == idp_site.issuer
    assert me["groups"] == ["members"]
