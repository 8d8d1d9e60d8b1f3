"""A DPoP proof is good once across processes and instances (the jti in the shared cache).

Two gunicorn instances of two workers each, sharing PostgreSQL and Redis, behind what a
load balancer would send: the same public URL (``Host``) whichever instance answers. The
dev IdP's API client gets a DPoP-bound access token (``cnf.jkt``) for the site's API.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import jwt
import pytest

from tests.support.api_client import API_CLIENT_ID, API_CLIENT_SECRET
from tests.support.deployments import start_deployment
from tests.support.dpop_client import DPoPClient

pytestmark = [pytest.mark.devidp]


def test_a_proof_replayed_to_another_instance_is_refused(tmp_path):
    with start_deployment(
        "2x-gunicorn2-postgres-redis", workdir=tmp_path, access_token_ttl=300
    ) as site:
        first, second = site.urls
        client = DPoPClient()
        answer = client.token(
            f"{site.idp.issuer}/token",
            {"grant_type": "client_credentials", "scope": "api:read", "resource": f"{first}/api/"},
            (API_CLIENT_ID, API_CLIENT_SECRET),
        )
        token = answer["access_token"]
        assert answer["token_type"] == "DPoP"
        assert jwt.decode(token, options={"verify_signature": False})["cnf"]["jkt"]
        public = urlsplit(first).netloc  # the public host, whichever instance answers
        url = f"{first}/api/whoami/"
        proof = client.proof("GET", url, token)

        def send(base: str, proof: str):
            return client.http.get(
                f"{base}/api/whoami/",
                headers={"Authorization": f"DPoP {token}", "DPoP": proof, "Host": public},
                timeout=10,
            )

        used = send(first, proof)
        assert used.status_code == 200, used.text
        assert used.json()["kind"] == "machine"
        replayed = send(second, proof)
        assert replayed.status_code == 401, replayed.text
        assert replayed.json()["reason"] == "proof_replayed"
        assert 'error="invalid_dpop_proof"' in replayed.headers["WWW-Authenticate"]
        fresh = send(second, client.proof("GET", url, token))
        assert fresh.status_code == 200, fresh.text  # the other instance is fine otherwise
        as_bearer = client.http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert as_bearer.status_code == 401
        assert as_bearer.json()["reason"] == "dpop_bound_token"
