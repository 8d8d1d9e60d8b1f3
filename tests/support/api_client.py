"""Access tokens minted by the real dev IdP for the site's API, as an API client gets them.

The dev IdP registers a second client, ``api-client``, and the site's API as an RFC 8707
resource (``<site>/api/``): a token request naming that resource gets an RFC 9068 JWT access
token (``typ: at+jwt``) for the API's audience. ::

    token = user_access_token(idp, "alice", scope="openid api:read")   # a user's token
    token = machine_access_token(idp, scope="api:read")                # client credentials
    token = user_access_token(idp, "alice", resource=None)             # opaque (userinfo)
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from tests.support.devidp import DevIdP
from tests.support.signin import TIMEOUT, login_form_action, new_session

API_CLIENT_ID = "api-client"
API_CLIENT_SECRET = "api-client-secret"


def api_resource(idp: DevIdP) -> str:
    return f"{idp.site_url}/api/"


def _redirect_uri(idp: DevIdP) -> str:
    return f"{idp.site_url}/api-client/callback/"


def _token(idp: DevIdP, form: dict[str, str]) -> dict:
    http = new_session()
    response = http.post(
        f"{idp.issuer}/token", data=form, auth=(API_CLIENT_ID, API_CLIENT_SECRET), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json()


def machine_access_token(idp: DevIdP, *, scope: str = "api:read") -> str:
    """A client-credentials access token of ``api-client`` for the site's API."""
    form = {"grant_type": "client_credentials", "scope": scope, "resource": api_resource(idp)}
    return _token(idp, form)["access_token"]


def user_access_token(
    idp: DevIdP, username: str, *, scope: str = "openid api:read", resource: str | None = ""
) -> str:
    """The authorization-code flow of ``api-client`` for ``username``; its access token.

    ``resource``: "" (the default) asks for the site's API; None asks for no resource (an
    opaque token for userinfo).
    """
    resource = api_resource(idp) if resource == "" else resource
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    params = {
        "client_id": API_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": _redirect_uri(idp),
        "scope": scope,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if resource:
        params["resource"] = resource
    http = new_session()
    response = http.get(f"{idp.issuer}/auth?{urlencode(params)}", timeout=TIMEOUT)
    action = login_form_action(response)
    assert action, response.text[:500]
    response = http.post(
        action, data={"username": username, "password": username}, allow_redirects=False
    )
    for _ in range(10):
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(_redirect_uri(idp)):
            break
        response = http.get(location, allow_redirects=False, timeout=TIMEOUT)
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _redirect_uri(idp),
        "code_verifier": verifier,
    }
    if resource:
        form["resource"] = resource
    return _token(idp, form)["access_token"]
