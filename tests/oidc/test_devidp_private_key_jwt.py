"""private_key_jwt against the real dev IdP, with no client secret configured at the site.

The dev IdP registers the site's client with ``token_endpoint_auth_method=private_key_jwt``
and ``jwks_uri`` = the live site's ``/oidc/jwks.json``, which it fetches over loopback to
verify each assertion, and it refuses an assertion whose ``jti`` it has seen before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.contrib.sessions.backends.db import SessionStore

from accounts.models import OIDCSession
from accounts.oidc import signing_keys
from accounts.oidc.client_auth import ASSERTION_TYPE, client_assertion
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store
from accounts.sync.tokens import ClientCredentials
from tests.support.devidp import DevIdP, load_demo_users, start_devidp
from tests.support.signin import login_form_action, new_session, sign_in_with_requests

pytestmark = [pytest.mark.devidp, pytest.mark.django_db(transaction=True)]


def start_key_idp(live_server, workdir) -> DevIdP:
    return start_devidp(
        site_url=live_server.url,
        workdir=workdir,
        extra_env={"DEVIDP_TOKEN_AUTH_METHOD": "private_key_jwt"},
    )


@pytest.fixture
def key_idp(live_server, tmp_path) -> Iterator[DevIdP]:
    """A dev IdP of its own: it caches the site's JWKS, so no test inherits another's."""
    idp = start_key_idp(live_server, tmp_path / "devidp")
    yield idp
    idp.stop()


def point_site_at(idp: DevIdP, settings) -> None:
    idp.set_users(load_demo_users())
    settings.OIDC_OP_ISSUER = idp.issuer
    for name in ("AUTHORIZATION", "TOKEN", "USER", "JWKS", "LOGOUT", "INTROSPECTION"):
        setattr(settings, f"OIDC_OP_{name}_ENDPOINT", "")
    settings.OIDC_OP_DISCOVERY = True
    settings.OIDC_OP_INTROSPECT = True  # opaque access tokens are checked at the dev IdP
    settings.OIDC_RP_CLIENT_ID = idp.client_id


@pytest.fixture
def key_site(key_idp, settings, tmp_path) -> DevIdP:
    """The site signs its client assertions; it has no client secret at all."""
    point_site_at(key_idp, settings)
    settings.OIDC_RP_CLIENT_SECRET = ""
    settings.OIDC_TOKEN_AUTH_METHOD = "private_key_jwt"
    settings.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "site-keys.pem")
    settings.OIDC_GROUPS_ALLOWLIST = ["editors", "members", "sso-staff", "sso-superusers"]
    settings.OIDC_GROUPS_PREFIX = ""
    settings.OIDC_SCIM_URL = ""
    signing_keys.rotate()
    return key_idp


def session_key(http, site_url: str) -> str:
    host = urlsplit(site_url).hostname
    (key,) = [c.value for c in http.cookies if c.name == "sessionid" and host in c.domain]
    return key


def expire_access_token(key: str) -> None:
    moment = time.time() - 30
    OIDCSession.objects.filter(session_key=key).update(
        access_expires_at=datetime.fromtimestamp(moment, UTC)
    )
    store = SessionStore(session_key=key)
    store.load()
    store[sessions.SESSION_EXPIRES_AT] = moment
    store.save()


def test_sign_in_refresh_introspection_and_client_credentials_need_no_secret(key_site, live_server):
    http = sign_in_with_requests(live_server.url, "alice")
    key = session_key(http, live_server.url)
    row = OIDCSession.objects.get(session_key=key)

    expire_access_token(key)
    assert http.get(f"{live_server.url}/api/me/").json()["username"] == "alice"
    refreshed = OIDCSession.objects.get(session_key=key)
    assert refreshed.refreshed_at is not None
    fresh_token = token_store.read(refreshed, "access_token")
    assert fresh_token != token_store.read(row, "access_token")

    bearer = new_session().get(
        f"{live_server.url}/api/me/",
        headers={"Authorization": f"Bearer {fresh_token}"},
    )
    assert bearer.status_code == 200 and bearer.json()["username"] == "alice"

    assert ClientCredentials(scope="directory").token()  # the grant directory sync uses
    stats = key_site.stats()
    assert stats["token"] == {"authorization_code": 1, "refresh_token": 1, "client_credentials": 1}
    assert not any(stats["token_errors"].values()), stats
    assert stats["introspection"] == 1


def test_an_assertion_is_good_once_and_the_site_never_reuses_one(key_site, live_server):
    token_endpoint = f"{key_site.issuer}/token"
    assertion = client_assertion(audience=token_endpoint)
    form = {
        "grant_type": "client_credentials",
        "client_id": key_site.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    first = new_session().post(token_endpoint, data=form, timeout=10)
    assert first.status_code == 200, first.text
    replayed = new_session().post(token_endpoint, data=form, timeout=10)
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "invalid_client"

    # The site's own calls, one after the other: each new assertion is accepted.
    for _ in range(3):
        assert ClientCredentials(scope="directory").token()
    assert key_site.stats()["token_errors"]["client_credentials"] == 1  # the replay only


def test_sign_in_keeps_working_across_a_key_rotation(key_site, live_server, settings, tmp_path):
    sign_in_with_requests(live_server.url, "alice")  # the IdP now caches the site's JWKS
    old = signing_keys.signing_key()

    fresh, kept = signing_keys.rotate()
    assert kept.kid == old.kid
    published = new_session().get(f"{live_server.url}/oidc/jwks.json").json()
    assert [k["kid"] for k in published["keys"]] == [fresh.kid, old.kid]
    # The old key signs until providers had time to see the new one: no failed sign-in.
    sign_in_with_requests(live_server.url, "alice")
    assert signing_keys.signing_key().kid == old.kid

    # Once the delay has passed the new key signs; a provider fetching the JWKS now (here a
    # second dev IdP, with a cold cache) accepts it.
    settings.OIDC_RP_SIGNING_KEY_DELAY = 0
    assert signing_keys.signing_key().kid == fresh.kid
    other = start_key_idp(live_server, tmp_path / "devidp-2")
    try:
        point_site_at(other, settings)
        sign_in_with_requests(live_server.url, "alice")
        assert other.stats()["token"]["authorization_code"] == 1
    finally:
        other.stop()


def test_without_a_usable_key_sign_in_says_it_is_misconfigured(key_site, live_server, settings):
    signing_keys.key_file().write_text("not a key")
    http = new_session()
    # The dev IdP offers PAR, so the pushed request is the first call that needs the key.
    answer = http.get(f"{live_server.url}/oidc/authenticate/", timeout=10)
    assert answer.url.startswith(f"{live_server.url}/oidc/authenticate/")
    assert answer.status_code == 503
    assert "Sign-in is misconfigured" in answer.text
    assert "identity provider is unavailable" not in answer.text
    # Without PAR the code exchange is: the callback says the same.
    settings.OIDC_USE_PAR = "0"
    form = http.get(f"{live_server.url}/oidc/authenticate/", timeout=10)
    action = login_form_action(form)
    assert action is not None
    answer = http.post(action, data={"username": "alice", "password": "alice"}, timeout=10)
    assert answer.url.startswith(f"{live_server.url}/oidc/callback/")
    assert answer.status_code == 503
    assert "Sign-in is misconfigured" in answer.text
    assert key_site.stats()["token"]["authorization_code"] == 0
