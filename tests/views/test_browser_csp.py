"""Every page under the Content-Security-Policy in Chromium: no violation in the console.

The review's finding: no Content-Security-Policy on any page but front-channel logout. Here
Chromium loads every page (home, sign-in, profile, members, error pages, sign-out, the
admin's sign-in, not-staff page, index, lists, forms, the audit chart and the provider form)
signed out, as a member and as a superuser through the real dev IdP, and the test fails on
any CSP violation Chromium reports.
"""

from __future__ import annotations

import pytest

from accounts.models import OIDCProvider
from tests.support.browser import sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PUBLIC = ["/", "/accounts/signin/", "/no-such-page/", "/admin/login/"]
MEMBER = ["/", "/accounts/profile/", "/members/", "/oidc/logout/", "/admin/"]
ADMIN = [
    "/admin/",
    "/admin/auth/user/",
    "/admin/auth/user/{admin_pk}/change/",
    "/admin/auth/group/",
    "/admin/auth/group/add/",
    "/admin/accounts/oidcprovider/",
    "/admin/accounts/oidcprovider/add/",
    "/admin/accounts/oidcprovider/{provider_pk}/change/",
    "/admin/accounts/auditevent/",
    "/admin/accounts/auditevent/summary/",
    "/admin/accounts/oidcsession/",
    "/admin/accounts/oidcidentity/",
]


def watch_violations(page) -> list[str]:
    found: list[str] = []

    def on_console(message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            found.append(f"{page.url}: {text}")

    page.on("console", on_console)
    return found


def visit(page, base: str, paths: list[str], **ids) -> None:
    for path in paths:
        response = page.goto(base + path.format(**ids))
        assert response is not None and page.url.startswith(base), (path, page.url)
        assert "content-security-policy" in {k.lower() for k in response.headers}, path
        page.wait_for_load_state("load")


def sign_in(page, live_server, idp, username: str, start: str = "/") -> None:
    page.goto(f"{live_server.url}{start}")
    page.click("#sso-login" if start.startswith("/admin") else "text=Sign in with SSO")
    page.wait_for_url(f"{idp.issuer}/interaction/**")
    sign_in_at_idp(page, username)
    page.wait_for_url(f"{live_server.url}/**")


def test_no_page_violates_the_policy(idp_site, live_server, page, chromium):
    violations = watch_violations(page)
    visit(page, live_server.url, PUBLIC)

    sign_in(page, live_server, idp_site, "alice")
    visit(page, live_server.url, MEMBER)  # /admin/ is the not-staff page for alice
    assert "not as staff" in page.content()

    admin = chromium.new_context()
    admin_page = admin.new_page()
    violations += watch_violations(admin_page)
    sign_in(admin_page, live_server, idp_site, "admin", start="/admin/")
    row = OIDCProvider(slug="partner", label="Partner", issuer="https://partner.example")
    row.client_id = "p"
    row.set_client_secret("partner-secret")
    row.save()
    from django.contrib.auth import get_user_model

    admin_pk = get_user_model().objects.get(username="admin").pk
    visit(admin_page, live_server.url, ADMIN, admin_pk=admin_pk, provider_pk=row.pk)
    # The provider form's collapsible fieldset and the chart's script-free SVG, used.
    admin_page.goto(f"{live_server.url}/admin/accounts/oidcprovider/{row.pk}/change/")
    admin_page.click("text=Endpoints (only without discovery, or to override it)")
    admin.close()

    assert violations == []
