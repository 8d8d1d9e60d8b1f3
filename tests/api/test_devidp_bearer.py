"""Bearer access tokens on /api/me/, judged by the real dev IdP's introspection endpoint."""

from __future__ import annotations

import pytest

from accounts.models import OIDCSession
from accounts.sessions import token_store
from tests.support.signin import new_session, sign_in_with_requests

pytestmark = [pytest.mark.devidp, pytest.mark.django_db(transaction=True)]


def test_an_access_token_issued_to_the_site_reads_api_me(idp_site, live_server):
    sign_in_with_requests(live_server.url, "alice")
    access_token = token_store.read(OIDCSession.objects.get(), "access_token")

    response = new_session().get(
        f"{live_server.url}/api/me/", headers={"Authorization": f"Bearer {access_token}"}
    )

    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert idp_site.stats()["introspection"] == 1


def test_a_client_credentials_token_has_no_user_and_is_refused_on_api_me(idp_site, live_server):
    grant = new_session().post(
        f"{idp_site.issuer}/token",
        data={"grant_type": "client_credentials", "scope": "directory"},
        auth=(idp_site.client_id, idp_site.client_secret),
        timeout=10,
    )
    token = grant.json()["access_token"]

    response = new_session().get(
        f"{live_server.url}/api/me/", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403
    assert response.json()["reason"] == "user_required"
