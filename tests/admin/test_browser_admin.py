"""The admin through SSO, the profile, the not-staff page and sign-out, in Chromium (issue 4).

Everything runs against the real dev IdP: ``admin`` is a superuser there, ``alice`` an
ordinary member. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import OIDCSession
from tests.support.browser import screenshot, sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALICE_SUB = "c51f0e28-7b3d-4a96-b2e4-9d8a6f1c3b03"
SIGNED_OUT_MESSAGE = "You are signed out here and at your identity provider."


def sign_in_from_home(page, live_server, idp, username: str) -> None:
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{idp.issuer}/interaction/**")
    sign_in_at_idp(page, username)
    page.wait_for_url(f"{live_server.url}/**")


def api_me_status(page, live_server) -> int:
    return page.request.get(f"{live_server.url}/api/me/").status


def test_superuser_signs_in_to_the_admin_with_sso(idp_site, live_server, page):
    response = page.goto(f"{live_server.url}/admin/")
    assert response.status == 200
    assert page.url.startswith(f"{live_server.url}/admin/login/")
    sso_button = page.locator("#sso-login")
    assert sso_button.is_visible()
    assert sso_button.inner_text() == "Sign in with SSO"
    screenshot(page, "admin-login")

    sso_button.click()
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    sign_in_at_idp(page, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")

    assert page.locator("#site-name").inner_text() == "Acme Portal administration"
    assert page.get_by_role("heading", name="Administration").count() >= 1
    assert page.locator("#user-tools").is_visible()  # the admin's own chrome, not our pages
    screenshot(page, "admin-index")

    user = get_user_model().objects.get(username="admin")
    assert user.is_staff and user.is_superuser


def test_member_sees_profile_and_the_not_staff_page(idp_site, live_server, page):
    page.goto(f"{live_server.url}/")
    assert page.get_by_role("heading", name="Welcome").is_visible()
    screenshot(page, "home")

    sign_in_from_home(page, live_server, idp_site, "alice")
    assert "Hello, Alice" in page.content()

    page.goto(f"{live_server.url}/accounts/profile/")
    main = page.locator("main")
    assert main.get_by_role("heading", name="Your profile").is_visible()
    assert [t.strip() for t in main.locator(".tag").all_inner_texts()] == ["members"]
    text = main.inner_text()
    assert "Alice Member" in text
    assert "alice@example.com" in text
    assert idp_site.issuer in text
    assert ALICE_SUB in text
    screenshot(page, "profile")

    response = page.goto(f"{live_server.url}/admin/")
    assert response.status == 403
    # One redirect (/admin/ -> the admin login page), then an explanation: no loop.
    assert response.request.redirected_from is not None
    assert response.request.redirected_from.redirected_from is None
    assert page.url.startswith(f"{live_server.url}/admin/login/")
    assert page.get_by_role("heading", name="You are signed in, but not as staff").is_visible()
    assert "alice" in page.locator("#content-main").inner_text()
    screenshot(page, "not-staff")
    assert api_me_status(page, live_server) == 200  # still signed in at the site


def test_sign_out_ends_the_session_here_and_at_the_idp(idp_site, live_server, page):
    sign_in_from_home(page, live_server, idp_site, "alice")
    page.goto(f"{live_server.url}/accounts/profile/")
    assert OIDCSession.objects.filter(subject=ALICE_SUB).count() == 1

    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))

    # The "Sign out" form of the profile page (the header has one too); the dev IdP's
    # end_session page submits itself, then sends the browser back to the site.
    page.locator("main form[action='/oidc/logout/'] button").click()
    page.wait_for_url(f"{live_server.url}/")
    assert any(url.startswith(f"{idp_site.issuer}/session/end") for url in visited), visited
    assert page.locator(".messages").inner_text().strip() == SIGNED_OUT_MESSAGE
    assert page.get_by_role("heading", name="Welcome").is_visible()
    screenshot(page, "signed-out")
    assert api_me_status(page, live_server) == 401
    assert OIDCSession.objects.filter(subject=ALICE_SUB).count() == 0

    # The provider's session ended too: the next sign-in asks for the password again.
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{idp_site.issuer}/interaction/**")
    assert page.locator("#password").is_visible()
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/**")
    assert api_me_status(page, live_server) == 200


def test_a_get_to_the_logout_url_signs_no_one_out(idp_site, live_server, page):
    sign_in_from_home(page, live_server, idp_site, "alice")

    # As if a link on another site pointed the browser here.
    response = page.goto(f"{live_server.url}/oidc/logout/", referer="http://evil.example/")
    assert response.status == 200
    assert page.url == f"{live_server.url}/oidc/logout/"  # a confirmation page, no redirect
    assert page.get_by_role("heading", name="Sign out").is_visible()
    assert api_me_status(page, live_server) == 200
    assert OIDCSession.objects.filter(subject=ALICE_SUB).count() == 1
    assert idp_site.stats()["backchannel_logout"]["sent"] == 0

    # A cross-site POST carries no CSRF token: refused, nobody signed out.
    refused = page.request.post(
        f"{live_server.url}/oidc/logout/",
        headers={"Origin": "http://evil.example"},
        max_redirects=0,
    )
    assert refused.status == 403
    assert api_me_status(page, live_server) == 200
    page.goto(f"{live_server.url}/accounts/profile/")
    assert re.search(r"\balice\b", page.locator("main").inner_text())


def test_a_post_without_csrf_token_is_refused_and_signs_no_one_out():
    user = get_user_model().objects.create_user(username="bob", email="bob@example.com")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/me/").status_code == 200

    response = client.post("/oidc/logout/")
    assert response.status_code == 403
    assert client.get("/api/me/").status_code == 200

    # With the CSRF cookie but a token from elsewhere (or none in the form): still refused.
    client.get("/oidc/logout/")  # the confirmation page sets the CSRF cookie
    assert "csrftoken" in client.cookies
    response = client.post("/oidc/logout/", {"csrfmiddlewaretoken": "x" * 64})
    assert response.status_code == 403
    assert client.get("/api/me/").status_code == 200

    # The confirmation page's own form does sign out.
    token = client.cookies["csrftoken"].value
    response = client.post("/oidc/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert client.get("/api/me/").status_code == 401
