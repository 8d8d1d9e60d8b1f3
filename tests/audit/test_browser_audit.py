"""In Chromium, against the dev IdP: the audit log an operator reads, the summary chart, and
a user signing out their other session from the profile page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts.models import AuditEvent, OIDCSession
from tests.support.browser import screenshot, sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

User = get_user_model()


def new_page(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in_from_home(page, live_server, idp, username: str) -> None:
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{idp.issuer}/interaction/**")
    sign_in_at_idp(page, username)
    page.wait_for_url(f"{live_server.url}/**")


def test_an_operator_filters_the_audit_log_by_user_and_sees_the_summary_chart(
    idp_site, live_server, chromium
):
    # Alice signs in, signs out, is deactivated here, and is refused at her next sign-in.
    alice = new_page(chromium)
    sign_in_from_home(alice, live_server, idp_site, "alice")
    alice.locator("header form[action='/oidc/logout/'] button").click()
    alice.wait_for_url(f"{live_server.url}/")
    User.objects.filter(username="alice").update(is_active=False)
    sign_in_from_home(alice, live_server, idp_site, "alice")
    assert "deactivated" in alice.locator("main").inner_text()
    alice.context.close()

    operator = new_page(chromium)
    sign_in_from_home(operator, live_server, idp_site, "admin")
    operator.goto(f"{live_server.url}/admin/accounts/auditevent/")
    operator.locator("#changelist-filter").get_by_role("link", name="alice", exact=True).click()
    operator.wait_for_url("**user__id__exact=**")
    rows = operator.locator("#result_list tbody tr").all_inner_texts()
    assert all("alice" in row for row in rows), rows
    kinds = {tuple(row.split("\t")[1:4]) for row in rows}
    assert ("sign_in", "success", "-") in kinds, rows
    assert ("sign_in", "failure", "inactive") in kinds, rows
    assert ("sign_out", "success", "rp_initiated") in kinds, rows
    screenshot(operator, "audit-log-filtered")

    operator.click("text=Summary chart")
    chart = operator.locator("svg.audit-svg").first
    chart.wait_for()
    assert chart.is_visible()
    assert chart.bounding_box()["height"] > 100
    successes = operator.locator("svg.audit-svg rect.success").evaluate_all(
        "rects => rects.filter(r => r.getBBox().height > 0).length"
    )
    failures = operator.locator("svg.audit-svg rect.failure").evaluate_all(
        "rects => rects.filter(r => r.getBBox().height > 0).length"
    )
    assert (successes, failures) == (1, 1)  # today: alice and admin signed in, one refusal
    assert "2 sign-ins, 1 refusal" in operator.locator("#content-main").inner_text()
    screenshot(operator, "audit-summary")


def test_a_user_signs_out_their_other_session_from_the_profile_page(
    idp_site, live_server, chromium
):
    laptop, phone = new_page(chromium), new_page(chromium)
    sign_in_from_home(laptop, live_server, idp_site, "alice")
    sign_in_from_home(phone, live_server, idp_site, "alice")
    assert OIDCSession.objects.filter(user__username="alice").count() == 2

    laptop.goto(f"{live_server.url}/accounts/profile/")
    table = laptop.locator("#signed-in-sessions tbody tr")
    assert table.count() == 2
    assert "this session" in laptop.locator("tr.current-session").inner_text()
    assert "Headless Chrome on Linux" in table.first.inner_text()
    assert "127.0.0.1" in table.first.inner_text()
    screenshot(laptop, "profile-sessions")
    laptop.get_by_role("button", name="Sign out everywhere else").click()
    laptop.wait_for_url(f"{live_server.url}/accounts/profile/")
    messages = laptop.locator(".messages").inner_text()
    assert "Signed out 1 other session here" in messages
    assert "The other browser may still be signed in at" in messages
    assert laptop.locator(".messages a.provider-account").is_visible()  # the dev IdP's page
    assert laptop.locator("#signed-in-sessions tbody tr").count() == 1

    assert phone.request.get(f"{live_server.url}/api/me/").status == 401
    assert laptop.request.get(f"{live_server.url}/api/me/").status == 200
    assert OIDCSession.objects.filter(user__username="alice").count() == 1
    assert AuditEvent.objects.filter(reason="user_other_sessions").count() == 1
