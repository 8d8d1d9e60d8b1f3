"""Sign in to the live site through the real dev IdP with ``requests`` (no browser).

::

    session = sign_in_with_requests(live_server.url, "alice")
    session.get(f"{live_server.url}/api/me/").json()["username"]  # "alice"

The session follows the redirects exactly as a browser would: the site's
``/oidc/authenticate/`` sends it to the provider, which shows its login form at
``/interaction/<uid>``; the form is posted, consent is granted automatically and the
provider sends it back to the site's callback. Only loopback addresses are used and
proxy settings from the environment are ignored.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import requests

TIMEOUT = 10.0

_FORM_ACTION = re.compile(r'<form[^>]*\baction="(/interaction/[^"]+)"', re.IGNORECASE)


class SignInError(AssertionError):
    """The flow did not end signed in at the site; the message says where it stopped."""


def new_session() -> requests.Session:
    """A ``requests.Session`` that never goes through a proxy."""
    session = requests.Session()
    session.trust_env = False  # ignore HTTP(S)_PROXY & co: everything here is on loopback
    return session


def login_form_action(response: requests.Response) -> str | None:
    """The absolute URL the dev IdP's login form posts to, if this response is that form."""
    if "/interaction/" not in urlsplit(response.url).path:
        return None
    match = _FORM_ACTION.search(response.text)
    if not match or 'id="password"' not in response.text:
        return None
    return urljoin(response.url, html.unescape(match.group(1)))


def sign_in_with_requests(
    site_url: str,
    username: str,
    password: str | None = None,
    *,
    session: requests.Session | None = None,
    next_url: str | None = None,
) -> requests.Session:
    """Sign ``username`` in at ``site_url``; return the session holding the site's cookie.

    ``password`` defaults to the username (the demo users' passwords). Pass ``session``
    to reuse one (its IdP cookies then decide whether the login form is shown; when it is
    not, the flow simply goes straight back to the site). Raises ``SignInError`` when the
    flow does not end back on the site with ``/api/me/`` answering 200.
    """
    site_url = site_url.rstrip("/")
    session = session or new_session()
    params = {"next": next_url} if next_url else None
    response = session.get(f"{site_url}/oidc/authenticate/", params=params, timeout=TIMEOUT)
    action = login_form_action(response)
    if action is not None:
        response = session.post(
            action,
            data={"username": username, "password": username if password is None else password},
            timeout=TIMEOUT,
        )
        if login_form_action(response) is not None:
            raise SignInError(f"the dev IdP refused the credentials of {username!r}")
    if not response.url.startswith(site_url):
        raise SignInError(
            f"sign-in ended at {response.url} ({response.status_code}), not on the site: "
            f"{response.text[:300]}"
        )
    if response.status_code != 200:
        raise SignInError(
            f"the site answered {response.status_code} at {response.url}: {response.text[:300]}"
        )
    me = session.get(f"{site_url}/api/me/", timeout=TIMEOUT)
    if me.status_code != 200:
        raise SignInError(f"not signed in after the flow: {me.status_code} {me.text[:300]}")
    return session
