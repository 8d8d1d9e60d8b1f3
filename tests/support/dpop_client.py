"""A DPoP client of the site's API, as an API client would write one (RFC 9449).

It holds its own EC P-256 key, makes a fresh proof per request and retries a token request
once with the server's ``DPoP-Nonce`` (the README shows the same calls)::

    client = DPoPClient()
    token = client.client_credentials(idp, scope="api:read", resource=f"{site}/api/")
    response = client.get(f"{site}/api/whoami/", token)
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.support.signin import TIMEOUT, new_session


class DPoPClient:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        self.http = new_session()

    def proof(self, method: str, url: str, token: str | None = None, nonce: str | None = None):
        claims: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url.split("?", 1)[0],
            "iat": int(time.time()),
        }
        if token is not None:
            digest = hashlib.sha256(token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if nonce:
            claims["nonce"] = nonce
        headers = {"typ": "dpop+jwt", "jwk": self.jwk}
        return jwt.encode(claims, self.key, algorithm="ES256", headers=headers)

    def token(self, url: str, form: dict[str, str], auth: tuple[str, str]) -> dict[str, Any]:
        """A token request with a proof; once more with the server's nonce if it asks."""
        response = self.http.post(
            url, data=form, auth=auth, headers={"DPoP": self.proof("POST", url)}, timeout=TIMEOUT
        )
        if response.status_code == 400 and response.json().get("error") == "use_dpop_nonce":
            nonce = response.headers["DPoP-Nonce"]
            headers = {"DPoP": self.proof("POST", url, nonce=nonce)}
            response = self.http.post(url, data=form, auth=auth, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, url: str, token: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"DPoP {token}", "DPoP": self.proof("GET", url, token)}
        return self.http.get(url, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)
