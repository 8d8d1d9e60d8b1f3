"""In the browser: the provider revokes the session, and the site's next page is signed out."""

from __future__ import annotations

import time

import pytest

from accounts.models import OIDCSession
from tests.ssf.devidp_streams import control, reset_streams, ssf_stream
from tests.support.browser import screenshot, sign_in_at_idp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def push_stream(idp_site, live_server):
    reset_streams(idp_site)
    ssf_stream("create", "--site-url", live_server.url)
    yield idp_site
    reset_streams(idp_site)


def test_the_next_page_load_is_signed_out_within_two_seconds_of_the_push(
    push_stream, live_server, page
):
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{push_stream.issuer}/interaction/**")
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".account .username").count() == 1
    assert page.request.get(f"{live_server.url}/api/me/").status == 200

    pushed = control(push_stream, "alice", "revoke-sessions")  # answers once pushed
    pushed_at = time.monotonic()
    assert pushed["streams"][0]["result"] == 202

    page.goto(f"{live_server.url}/")
    signed_out_after = time.monotonic() - pushed_at
    assert page.locator(".account .username").count() == 0
    assert page.get_by_role("link", name="Sign in with SSO").is_visible()
    assert page.request.get(f"{live_server.url}/api/me/").status == 401
    assert signed_out_after < 2.0, signed_out_after
    assert not OIDCSession.objects.filter(user__username="alice").exists()
    screenshot(page, "ssf-session-revoked")


def test_the_dev_page_buttons_send_the_events(push_stream, live_server, page):
    page.goto(f"{live_server.url}/")
    page.click("text=Sign in with SSO")
    page.wait_for_url(f"{push_stream.issuer}/interaction/**")
    sign_in_at_idp(page, "alice")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{push_stream.issuer}/__dev/")
    assert page.get_by_role("heading", name="Shared Signals (dev)").is_visible()
    page.click("#disable-alice")
    page.wait_for_url(f"{push_stream.issuer}/__dev/?done=**")

    page.goto(f"{live_server.url}/")
    assert page.locator(".account .username").count() == 0
    screenshot(page, "ssf-dev-page")
