"""Several identity providers in Chromium: two dev IdP organisations and one added in the admin.

Acme is the provider ``default`` (the OIDC_OP_* settings), Globex a provider of
``OIDC_PROVIDERS`` with its own issuer, client and users, exactly as ``make run`` sets
them up. A third provider, "partner", is added by an operator in the admin while the site
runs: another client at Globex.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import OIDCProvider
from tests.support.browser import screenshot, sign_in_at_idp
from tests.support.devidp import PARTNER_CLIENT_ID, PARTNER_CLIENT_SECRET, PARTNER_SLUG

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def api_me(page, live_server) -> dict:
    return page.request.get(f"{live_server.url}/api/me/").json()


def test_people_of_each_organisation_sign_in_through_their_own_provider(
    two_orgs, live_server, page, chromium
):
    acme, globex = two_orgs
    page.goto(f"{live_server.url}/accounts/signin/")
    assert page.locator("#signin-default").inner_text() == "Sign in with Acme"
    assert page.locator("#signin-globex").inner_text() == "Sign in with Globex"
    screenshot(page, "signin-two-providers")

    page.click("#signin-default")
    page.wait_for_url(f"{acme.issuer}/interaction/**")
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/**")
    me = api_me(page, live_server)
    assert (me["username"], me["provider"], me["iss"]) == ("alice", "default", acme.issuer)

    context = chromium.new_context()
    other = context.new_page()
    other.goto(f"{live_server.url}/accounts/signin/")
    other.click("#signin-globex")
    other.wait_for_url(f"{globex.issuer}/interaction/**")
    assert other.locator("#org-name").inner_text() == "Globex"
    sign_in_at_idp(other, "bob")
    other.wait_for_url(f"{live_server.url}/**")
    me = api_me(other, live_server)
    assert (me["username"], me["provider"], me["iss"]) == ("bob", "globex", globex.issuer)
    assert me["groups"] == ["members"]

    # The browser remembers Globex: it is offered first next time, and says so.
    context.clear_cookies(name="sessionid")  # signed out here (a signed-in visitor sees who)
    other.goto(f"{live_server.url}/accounts/signin/")
    first = other.locator(".provider-list li").first
    assert "Sign in with Globex" in first.inner_text()
    assert "used last time" in first.inner_text()
    context.close()


def test_a_work_email_routes_to_its_organisation_with_a_login_hint(
    two_orgs, live_server, page, settings
):
    _acme, globex = two_orgs
    # The browser sees the request's parameters only when it is not pushed (PAR); the
    # pushed login_hint is checked in tests/oidc/test_devidp_fapi2.py.
    globex_settings = {**settings.OIDC_PROVIDERS["globex"], "use_par": "0"}
    settings.OIDC_PROVIDERS = {**settings.OIDC_PROVIDERS, "globex": globex_settings}
    authorization_requests = []
    page.on(
        "request",
        lambda request: (
            authorization_requests.append(request.url)
            if request.url.startswith(f"{globex.issuer}/auth")
            else None
        ),
    )
    page.goto(f"{live_server.url}/accounts/signin/")
    page.fill("#work-email", "Bob@Globex.example")
    page.click("#work-email-continue")
    page.wait_for_url(f"{globex.issuer}/interaction/**")
    query = parse_qs(urlsplit(authorization_requests[0]).query)
    assert query["login_hint"] == ["Bob@Globex.example"]
    assert query["redirect_uri"] == [f"{live_server.url}/oidc/callback/globex/"]
    sign_in_at_idp(page, "bob")
    page.wait_for_url(f"{live_server.url}/**")
    assert api_me(page, live_server)["provider"] == "globex"

    page.context.clear_cookies(name="sessionid")  # signed out: the chooser again
    page.goto(f"{live_server.url}/accounts/signin/")
    page.fill("#work-email", "someone@unknown.example")
    page.click("#work-email-continue")
    assert "No identity provider of this site handles that email address" in page.content()


def _add_partner_in_the_admin(page, live_server, globex, settings) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.click("#sso-login")  # Acme, the default provider: the operator is Acme's admin
    sign_in_at_idp(page, "admin")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/admin/accounts/oidcprovider/")
    assert "Providers declared in the settings" in page.content()
    assert globex.issuer in page.locator("#declared-providers").inner_text()
    # One issuer, one provider: while Globex is declared, its issuer cannot be added again.
    _fill_partner(page, live_server, globex)
    assert "already has this issuer" in page.content()
    assert not OIDCProvider.objects.exists()
    # Globex's declaration withdrawn, the partner client becomes the issuer's one provider.
    settings.OIDC_PROVIDERS = {}
    _fill_partner(page, live_server, globex)
    page.wait_for_url(f"{live_server.url}/admin/accounts/oidcprovider/")
    screenshot(page, "admin-providers")


def _fill_partner(page, live_server, globex) -> None:
    page.goto(f"{live_server.url}/admin/accounts/oidcprovider/add/")
    page.fill("#id_slug", PARTNER_SLUG)
    page.fill("#id_label", "Partner")
    page.fill("#id_issuer", globex.issuer)
    page.fill("#id_client_id", PARTNER_CLIENT_ID)
    page.fill("#id_client_secret", PARTNER_CLIENT_SECRET)
    page.fill("#id_groups_allowlist", "members")
    page.click("input[name=_save]")
    page.wait_for_load_state("load")


def test_a_provider_added_in_the_admin_signs_people_in_at_once_and_stops_when_off(
    two_orgs, live_server, page, chromium, settings
):
    _acme, globex = two_orgs
    _add_partner_in_the_admin(page, live_server, globex, settings)
    row = OIDCProvider.objects.get(slug=PARTNER_SLUG)
    assert PARTNER_CLIENT_SECRET not in row.client_secret_encrypted

    context = chromium.new_context()
    visitor = context.new_page()
    visitor.goto(f"{live_server.url}/accounts/signin/")
    visitor.click("#signin-partner")
    visitor.wait_for_url(f"{globex.issuer}/interaction/**")
    sign_in_at_idp(visitor, "bob")
    visitor.wait_for_url(f"{live_server.url}/**")
    me = api_me(visitor, live_server)
    assert (me["username"], me["provider"], me["iss"]) == ("bob", PARTNER_SLUG, globex.issuer)
    context.close()

    # The operator switches it off in the admin: no new sign-in through it.
    page.goto(f"{live_server.url}/admin/accounts/oidcprovider/{row.pk}/change/")
    page.uncheck("#id_enabled")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/accounts/oidcprovider/")

    context = chromium.new_context()
    visitor = context.new_page()
    visitor.goto(f"{live_server.url}/accounts/signin/")
    assert visitor.locator("#signin-partner").count() == 0
    response = visitor.goto(f"{live_server.url}/oidc/authenticate/?provider={PARTNER_SLUG}")
    assert response.status == 404
    assert "This site has no identity provider of that name, or it is switched off." in (
        visitor.content()
    )
    context.close()
