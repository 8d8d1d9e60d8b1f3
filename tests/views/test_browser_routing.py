"""Sign-in routing with two organisations in Chromium: Acme (default) and Globex, as make run.

Every sign-in that names no provider shows the chooser, ``next`` survives every hop, a
remembered organisation skips the chooser, error pages retry at the attempt's provider, and
an unknown email domain shows the buttons.
"""

from __future__ import annotations

import pytest

from tests.support.browser import screenshot, sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def api_me(page, live_server) -> dict:
    return page.request.get(f"{live_server.url}/api/me/").json()


def test_an_anonymous_protected_page_shows_the_chooser_and_comes_back_to_it(
    two_orgs, live_server, page
):
    _acme, globex = two_orgs
    page.goto(f"{live_server.url}/members/?tab=2")
    page.wait_for_url(f"{live_server.url}/accounts/signin/?next=%2Fmembers%2F%3Ftab%3D2")
    assert page.locator("#signin-default").inner_text() == "Sign in with Acme"
    screenshot(page, "routing-chooser")
    page.click("#signin-globex")
    page.wait_for_url(f"{globex.issuer}/interaction/**")
    assert page.locator("#org-name").inner_text() == "Globex"
    sign_in_at_idp(page, "bob")
    page.wait_for_url(f"{live_server.url}/members/?tab=2")
    assert api_me(page, live_server)["provider"] == "globex"


def test_the_header_sign_in_link_shows_the_chooser_keeping_the_page(two_orgs, live_server, page):
    page.goto(f"{live_server.url}/")
    page.click(".site-header >> text=Sign in")
    page.wait_for_url(f"{live_server.url}/accounts/signin/?next=%2F")
    assert page.locator(".provider-list button").count() == 2


def test_a_remembered_organisation_goes_straight_there_until_forgotten(two_orgs, live_server, page):
    _acme, globex = two_orgs
    page.goto(f"{live_server.url}/accounts/profile/")
    page.wait_for_url(f"{live_server.url}/accounts/signin/**")
    page.check("#remember")
    page.click("#signin-globex")
    sign_in_at_idp(page, "bob")
    page.wait_for_url(f"{live_server.url}/accounts/profile/")

    page.click(".site-header >> text=Sign out")  # here and at Globex (its session ends too)
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/members/")  # no chooser: straight to Globex
    page.wait_for_url(f"{globex.issuer}/interaction/**")
    sign_in_at_idp(page, "bob")
    page.wait_for_url(f"{live_server.url}/members/")

    page.goto(f"{live_server.url}/accounts/signin/")  # signed in: who, continue, switch
    assert "bob" in page.locator("#signed-in-as").inner_text()
    assert page.locator("#signin-globex").count() == 0
    page.click("#signin-switch")  # signs out here and at Globex, back to the chooser
    page.wait_for_url(f"{live_server.url}/accounts/signin/")
    assert "Globex" in page.locator("#remembered").inner_text()
    page.click("#forget-organisation")
    page.wait_for_url(f"{live_server.url}/accounts/signin/")
    assert page.locator("#remembered").count() == 0
    page.goto(f"{live_server.url}/members/")
    page.wait_for_url(f"{live_server.url}/accounts/signin/?next=%2Fmembers%2F")


def test_a_cancelled_sign_in_offers_its_provider_again_and_the_chooser(two_orgs, live_server, page):
    acme, globex = two_orgs
    page.goto(f"{live_server.url}/members/")
    page.click("#signin-globex")  # the wrong organisation for an Acme user
    page.wait_for_url(f"{globex.issuer}/interaction/**")
    page.click("#cancel")
    page.wait_for_url(f"{live_server.url}/oidc/callback/globex/**")
    assert page.get_by_role("heading", name="Sign-in was cancelled").is_visible()
    again = page.locator("#sign-in-again")
    assert again.inner_text() == "Sign in again with Globex"
    assert again.get_attribute("href") == "/oidc/authenticate/?provider=globex&next=%2Fmembers%2F"
    screenshot(page, "routing-error")

    page.click("#choose-another")
    page.wait_for_url(f"{live_server.url}/accounts/signin/?next=%2Fmembers%2F")
    page.click("#signin-default")
    page.wait_for_url(f"{acme.issuer}/interaction/**")
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/members/")
    assert api_me(page, live_server)["provider"] == "default"


def test_an_unknown_email_domain_shows_the_buttons_and_keeps_next(two_orgs, live_server, page):
    acme, _globex = two_orgs
    page.goto(f"{live_server.url}/members/")
    page.fill("#work-email", "carol@unknown.example")
    page.click("#work-email-continue")
    assert "No identity provider of this site handles that email" in (
        page.locator("#signin-error").inner_text()
    )
    assert page.locator("#work-email").input_value() == "carol@unknown.example"
    screenshot(page, "routing-unknown-domain")
    page.click("#signin-default")
    page.wait_for_url(f"{acme.issuer}/interaction/**")
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/members/")
