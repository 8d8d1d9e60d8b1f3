"""Staff rights follow the provider's groups at every sign-in (issue 3, point 3)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.support.browser import sign_in_at_idp
from tests.support.devidp import load_demo_users

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, idp, username: str) -> None:
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{idp.issuer}/interaction/**")  # the login form, every time
    sign_in_at_idp(page, username)
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".account .username").inner_text() == username


def sign_out(page, live_server) -> None:
    page.locator("header form[action='/oidc/logout/'] button").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".account .username").count() == 0


def roles(username: str) -> tuple[bool, bool, set[str]]:
    user = get_user_model().objects.get(username=username)
    return user.is_staff, user.is_superuser, set(user.groups.values_list("name", flat=True))


def test_staff_loses_staff_when_the_provider_drops_the_group(idp_site, live_server, page):
    sign_in(page, live_server, idp_site, "staff")
    assert roles("staff") == (True, False, {"sso-staff", "editors"})
    me = page.request.get(f"{live_server.url}/api/me/").json()
    assert me["is_staff"] is True
    assert me["groups"] == ["editors", "sso-staff"]
    assert page.get_by_role("link", name="Admin").is_visible()
    assert page.goto(f"{live_server.url}/admin/").status == 200

    # The provider removes "sso-staff" from the user's groups.
    users = load_demo_users()
    staff = next(user for user in users if user["username"] == "staff")
    staff["groups"] = [group for group in staff["groups"] if group != "sso-staff"]
    assert staff["groups"] == ["editors"]
    idp_site.set_users(users)

    page.goto(f"{live_server.url}/")
    sign_out(page, live_server)
    sign_in(page, live_server, idp_site, "staff")

    assert roles("staff") == (False, False, {"editors"})
    me = page.request.get(f"{live_server.url}/api/me/").json()
    assert me["is_staff"] is False
    assert me["groups"] == ["editors"]
    assert page.get_by_role("link", name="Admin").count() == 0
    assert page.goto(f"{live_server.url}/admin/").status == 403  # the not-staff page
    assert get_user_model().objects.filter(username="staff").count() == 1  # same account
