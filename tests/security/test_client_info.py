"""The client's address (behind a proxy too) and a readable name for its browser."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from accounts.security.client_info import client_ip, describe_user_agent


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko Firefox/128.0",
            "Firefox on macOS",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown browser"),
    ],
)
def test_user_agents_read_as_browser_on_system(agent, name):
    assert describe_user_agent(agent) == name


def test_the_address_is_remote_addr_unless_a_proxy_header_is_configured(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.9"
    )
    assert client_ip(request) == "10.0.0.5"
    settings.OIDC_CLIENT_IP_HEADER = "X-Forwarded-For"
    assert client_ip(request) == "198.51.100.9"  # the address the proxy saw, not the forged one
    bad = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(bad) is None
