"""Ending a session here revokes its refresh token at the real dev IdP (RFC 7009).

"Sign out everywhere else", the site's own sign-out and ``end_sessions`` hand the ended
sessions' refresh tokens to the provider's ``revocation_endpoint`` in the background; the
provider then refuses them. The page says in words that the other browser may still have a
session at the provider, and links to the provider's account page it advertises.
"""

from __future__ import annotations

import threading
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from accounts.models import OIDCSession
from accounts.oidc import revocation
from accounts.sessions import token_store
from tests.support.signin import new_session, sign_in_with_requests

pytestmark = [pytest.mark.devidp, pytest.mark.django_db(transaction=True)]


def refresh_token_of(session: requests.Session) -> str:
    key = session.cookies["sessionid"]
    return token_store.read(OIDCSession.objects.get(session_key=key), "refresh_token")


def provider_refresh(idp, refresh_token: str) -> requests.Response:
    """The refresh grant, sent straight to the provider as the site would send it."""
    return new_session().post(
        f"{idp.issuer}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(idp.client_id, idp.client_secret),
        timeout=10,
    )


def csrf_post(session: requests.Session, url: str, page: str) -> requests.Response:
    session.get(page, timeout=10)
    token = session.cookies["csrftoken"]
    return session.post(
        url, data={"csrfmiddlewaretoken": token}, headers={"Referer": page}, timeout=10
    )


def test_sign_out_everywhere_else_revokes_the_other_sessions_refresh_token(idp_site, live_server):
    here = sign_in_with_requests(live_server.url, "alice")
    other = sign_in_with_requests(live_server.url, "alice")  # another browser
    theirs = refresh_token_of(other)
    mine = refresh_token_of(here)

    profile = f"{live_server.url}/accounts/profile/"
    response = csrf_post(here, f"{live_server.url}/accounts/sessions/end-others/", profile)
    assert response.url == profile
    revocation.wait_for_revocations()

    refused = provider_refresh(idp_site, theirs)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert provider_refresh(idp_site, mine).status_code == 200  # this session's grant lives
    page = response.text
    assert "Signed out 1 other session here" in page
    assert "The other browser may still be signed in at" in page
    assert f'href="{idp_site.issuer}/account"' in page  # the provider advertises it
    assert other.get(f"{live_server.url}/api/me/", timeout=10).status_code == 401


def test_the_sites_sign_out_revokes_the_refresh_token_too(idp_site, live_server):
    session = sign_in_with_requests(live_server.url, "alice")
    token = refresh_token_of(session)
    home = f"{live_server.url}/"
    csrf_post(session, f"{live_server.url}/oidc/logout/", home)
    revocation.wait_for_revocations()
    assert provider_refresh(idp_site, token).json()["error"] == "invalid_grant"


def test_end_sessions_revokes_the_refresh_tokens(idp_site, live_server):
    session = sign_in_with_requests(live_server.url, "alice")
    token = refresh_token_of(session)
    call_command("end_sessions", "--username", "alice", stdout=StringIO())
    revocation.wait_for_revocations()
    assert provider_refresh(idp_site, token).json()["error"] == "invalid_grant"


def test_a_slow_provider_never_holds_up_the_sign_out(idp_site, live_server, monkeypatch):
    release = threading.Event()
    asked = []

    def held_revocation(provider, token, hint):
        asked.append(provider.slug)
        release.wait(timeout=30)  # the provider answers only after the sign-out finished
        asked.append("answered")
        return True

    monkeypatch.setattr(revocation, "revoke_token", held_revocation)
    session = sign_in_with_requests(live_server.url, "alice")
    response = csrf_post(session, f"{live_server.url}/oidc/logout/", f"{live_server.url}/")
    assert response.status_code == 200  # signed out while the revocation still waits
    assert session.get(f"{live_server.url}/api/me/", timeout=10).status_code == 401
    assert asked == ["default"]  # asked, not yet answered: the sign-out did not wait
    release.set()
    revocation.wait_for_revocations()
    assert asked == ["default", "answered"]
