"""Sign-in through the real dev IdP's login form, with ``requests`` (issue 3, point 2).

Key rotation at the provider needs no restart of the site, and a sign-in with everything
cached costs exactly one token request and one userinfo request.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from tests.support.fakeop import SigningKey
from tests.support.signin import login_form_action, new_session, sign_in_with_requests

pytestmark = [pytest.mark.devidp, pytest.mark.django_db(transaction=True)]

COUNTERS = ("token.authorization_code", "token.refresh_token", "userinfo", "jwks", "discovery")


def counters(idp) -> dict[str, int]:
    stats: dict[str, Any] = idp.stats()
    return {
        "token.authorization_code": stats["token"]["authorization_code"],
        "token.refresh_token": stats["token"]["refresh_token"],
        "userinfo": stats["userinfo"],
        "jwks": stats["jwks"],
        "discovery": stats["discovery"],
    }


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in COUNTERS}


def test_sign_in_through_the_login_form(idp_site, live_server):
    # The flow really goes through the provider's login form.
    session = new_session()
    response = session.get(f"{live_server.url}/oidc/authenticate/", timeout=10)
    assert response.url.startswith(f"{idp_site.issuer}/interaction/")
    assert login_form_action(response) is not None

    session = sign_in_with_requests(live_server.url, "alice", session=session)

    me = session.get(f"{live_server.url}/api/me/", timeout=10)
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == "alice"
    assert body["iss"] == idp_site.issuer
    assert body["sub"] == "c51f0e28-7b3d-4a96-b2e4-9d8a6f1c3b03"
    assert body["groups"] == ["members"]
    assert body["is_staff"] is False
    assert counters(idp_site)["token.authorization_code"] == 1


def test_wrong_password_is_refused_at_the_login_form(idp_site, live_server):
    session = new_session()
    response = session.get(f"{live_server.url}/oidc/authenticate/", timeout=10)
    action = login_form_action(response)
    response = session.post(action, data={"username": "alice", "password": "nope"}, timeout=10)
    assert "Invalid username or password" in response.text
    assert session.get(f"{live_server.url}/api/me/", timeout=10).status_code == 401
    assert counters(idp_site)["token.authorization_code"] == 0


def test_key_rotation_needs_no_restart_and_one_jwks_fetch(idp_site, live_server):
    sign_in_with_requests(live_server.url, "alice")
    assert counters(idp_site)["jwks"] == 1  # the first sign-in fetched the keys

    idp_site.rotate_keys()
    before = counters(idp_site)
    session = sign_in_with_requests(live_server.url, "staff")  # fresh session, new key
    after = counters(idp_site)
    assert session.get(f"{live_server.url}/api/me/", timeout=10).json()["username"] == "staff"
    assert delta(before, after)["jwks"] == 1, delta(before, after)
    assert delta(before, after)["token.authorization_code"] == 1

    # The new key is cached now: the next sign-in fetches nothing.
    before = after
    sign_in_with_requests(live_server.url, "alice")
    assert delta(before, counters(idp_site))["jwks"] == 0


def test_steady_state_sign_in_costs_one_token_and_one_userinfo_request(idp_site, live_server):
    sign_in_with_requests(live_server.url, "alice")  # warms the discovery and JWKS caches

    before = counters(idp_site)
    session = sign_in_with_requests(live_server.url, "alice")
    after = counters(idp_site)

    assert session.get(f"{live_server.url}/api/me/", timeout=10).json()["username"] == "alice"
    assert delta(before, after) == {
        "token.authorization_code": 1,
        "token.refresh_token": 0,
        "userinfo": 1,
        "jwks": 0,
        "discovery": 0,
    }


def test_random_kid_logout_tokens_cannot_keep_a_rotated_key_out(idp_site, live_server):
    """50 forged logout tokens with random kids, then a key rotation: sign-in still works."""
    sign_in_with_requests(live_server.url, "alice")
    forger = SigningKey.rsa()
    http = new_session()
    answers = []
    for _ in range(50):
        claims = {
            "iss": idp_site.issuer,
            "aud": idp_site.client_id,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
            "sub": "c51f0e28-7b3d-4a96-b2e4-9d8a6f1c3b03",
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        token = jwt.encode(claims, forger.private, "RS256", headers={"kid": uuid.uuid4().hex})
        url = f"{live_server.url}/oidc/backchannel-logout/"
        answers.append(http.post(url, data={"logout_token": token}, timeout=10).status_code)
    assert answers == [400] * 50
    assert counters(idp_site)["jwks"] <= 2  # the first sign-in's fetch and at most one refetch

    idp_site.rotate_keys()
    before = counters(idp_site)
    session = sign_in_with_requests(live_server.url, "staff")
    assert session.get(f"{live_server.url}/api/me/", timeout=10).json()["username"] == "staff"
    assert delta(before, counters(idp_site))["jwks"] == 1
