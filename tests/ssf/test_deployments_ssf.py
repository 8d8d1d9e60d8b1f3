"""Two gunicorn instances on PostgreSQL and Redis: a push to one acts for both, once."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest

from accounts.ssf.events import SESSION_REVOKED
from tests.support.deployments import start_deployment
from tests.support.signin import new_session

pytestmark = pytest.mark.devidp

AUTHORIZATION = "Bearer deployment-push-secret"
ALICE_SUB = "c51f0e28-7b3d-4a96-b2e4-9d8a6f1c3b03"


def signed_set(idp, **events) -> str:
    """A SET signed with the dev IdP's own current key, as its transmitter signs them."""
    jwk = json.loads(idp.keys_file.read_text())["jwks"]["keys"][0]
    key = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
    claims = {
        "iss": idp.issuer,
        "aud": idp.client_id,
        "iat": int(time.time()),
        "jti": uuid.uuid4().hex,
        "sub_id": {"format": "iss_sub", "iss": idp.issuer, "sub": ALICE_SUB},
        "events": events or {SESSION_REVOKED: {}},
    }
    return jwt.encode(
        claims, key, algorithm="RS256", headers={"kid": jwk["kid"], "typ": "secevent+jwt"}
    )


def push(url: str, token: str):
    return new_session().post(
        f"{url}/oidc/ssf/push/",
        data=token,
        headers={"Content-Type": "application/secevent+jwt", "Authorization": AUTHORIZATION},
        timeout=30,
    )


def test_a_push_to_instance_a_ends_the_session_served_by_b_and_a_replay_to_b_is_refused(tmp_path):
    with start_deployment(
        "2x-gunicorn2-postgres-redis",
        workdir=tmp_path,
        access_token_ttl=300,
        site_env={"OIDC_SSF_PUSH_AUTHORIZATION": AUTHORIZATION},
    ) as site:
        a, b = site.urls
        http = site.sign_in("alice")
        assert http.get(f"{b}/api/me/", timeout=30).json()["username"] == "alice"

        token = signed_set(site.idp)
        answer = push(a, token)
        assert answer.status_code == 202, (answer.text, site.log_text()[-3000:])

        # B's very next request: signed out (the session is gone from the shared store).
        assert http.get(f"{b}/api/me/", timeout=30).status_code == 401
        assert http.get(f"{a}/api/me/", timeout=30).status_code == 401

        # The same SET to B: its jti is already in the shared database.
        http = site.sign_in("alice")
        replay = push(b, token)
        assert replay.status_code == 400
        assert replay.json()["err"] == "invalid_request"
        assert "already" in replay.json()["description"]
        assert http.get(f"{b}/api/me/", timeout=30).status_code == 200
        assert "reason=replayed" in site.log_text()
