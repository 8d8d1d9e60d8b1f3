"""Who is on the other end of a request: the client's IP address and a readable browser name.

Recorded on sessions (the profile's list of signed-in sessions) and on audit rows. Behind
a proxy, ``OIDC_CLIENT_IP_HEADER`` names the header the proxy sets (``X-Forwarded-For``):
its last address is the one the proxy saw, the only one a client cannot forge.
"""

from __future__ import annotations

import ipaddress
import re

from django.http import HttpRequest

from accounts.conf import oidc_settings

USER_AGENT_LENGTH = 300

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edge", r"Edg(e|A|iOS)?/"),
    ("Opera", r"OPR/"),
    ("Firefox", r"Firefox/|FxiOS/"),
    ("Chromium", r"Chromium/"),
    ("Chrome", r"Chrome/|CriOS/"),
    ("Safari", r"Safari/"),
    ("curl", r"^curl/"),
)
_SYSTEMS = (
    ("Android", r"Android"),
    ("iOS", r"iPhone|iPad|iPod"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("ChromeOS", r"CrOS"),
    ("Linux", r"Linux|X11"),
)


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: from the proxy's header when configured, else REMOTE_ADDR."""
    if request is None:
        return None
    header = oidc_settings.OIDC_CLIENT_IP_HEADER
    if header:
        forwarded = request.headers.get(header, "")
        if forwarded:
            return _valid_ip(forwarded.split(",")[-1])
    return _valid_ip(request.META.get("REMOTE_ADDR", ""))


def user_agent(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return request.headers.get("User-Agent", "")[:USER_AGENT_LENGTH]


def describe_user_agent(agent: str) -> str:
    """``Firefox on Linux`` from a User-Agent header; ``Unknown browser`` when unsure."""
    browser = next((name for name, pattern in _BROWSERS if re.search(pattern, agent)), None)
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, agent)), None)
    if "HeadlessChrome/" in agent:
        browser = "Headless Chrome"
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else "Unknown browser")
