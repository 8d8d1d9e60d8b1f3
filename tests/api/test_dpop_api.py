"""DPoP-bound access tokens at the site's API (RFC 9449 section 7), plain views and DRF.

Tokens are RFC 9068 JWTs of the scripted provider with ``cnf.jkt``; the client's proofs
are made here with a key of the test's own. Every check of INTERFACE.md is a 401 with a
``WWW-Authenticate: DPoP`` challenge and JSON in words. A replay between two processes
is in tests/api/test_dpop_deployments.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.test import Client
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from accounts.api import dpop as api_dpop
from tests.api.test_access_tokens import access_token
from tests.support.sessions import oidc_user

pytestmark = pytest.mark.django_db

ME = "http://testserver/api/me/"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Holder:
    """A DPoP client: its key, its JWK thumbprint, and proofs on demand."""

    def __init__(self, kind: str = "ec") -> None:
        if kind == "ec":
            self.key = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "PS256"
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jkt = api_dpop.thumbprint(self.jwk)

    def proof(self, token: str, *, header: dict | None = None, **claims: Any) -> str:
        body = {
            "jti": uuid.uuid4().hex,
            "htm": "GET",
            "htu": ME,
            "iat": int(time.time()),
            "ath": b64(hashlib.sha256(token.encode()).digest()),
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        head = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode(body, self.key, algorithm=self.alg, headers=head)


@pytest.fixture
def alice(op):
    return oidc_user(issuer=op.issuer, subject="sub-alice", username="alice")


@pytest.fixture
def holder() -> Holder:
    return Holder()


@pytest.fixture
def bound(op, holder) -> str:
    return access_token(op, cnf={"jkt": holder.jkt})


def call(token: str, proof: str | None, path: str = "/api/me/", method: str = "get", **extra):
    headers = {"HTTP_AUTHORIZATION": f"DPoP {token}", **extra}
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    return getattr(Client(), method)(path, **headers)


def assert_refused(response, reason: str, words: str, error: str = "invalid_dpop_proof"):
    assert response.status_code == 401, response.content
    body = response.json()
    assert (body["reason"], body["error"]) == (reason, error), body
    assert words in body["message"]
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('DPoP algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 EdDSA"')
    assert f'error="{error}"' in challenge


def test_a_bound_token_with_its_proof_is_accepted(alice, bound, holder):
    response = call(bound, holder.proof(bound))
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "alice"


def test_an_rsa_pss_proof_key_works_too(alice, op):
    holder = Holder("rsa")
    token = access_token(op, cnf={"jkt": holder.jkt})
    assert call(token, holder.proof(token)).status_code == 200


def test_drf_accepts_and_refuses_alike(alice, bound, holder):
    ok = call(bound, holder.proof(bound, htu="http://testserver/api/drf/me/"), "/api/drf/me/")
    assert ok.status_code == 200, ok.content
    refused = call(bound, holder.proof(bound), "/api/drf/me/")  # htu of another URL
    assert refused.status_code == 401
    assert refused.json()["reason"] == "proof_htu"
    assert refused["WWW-Authenticate"].startswith("DPoP algs=")


def test_a_bound_token_sent_as_bearer_is_refused(alice, bound):
    response = Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {bound}")
    assert response.status_code == 401
    body = response.json()
    assert body["reason"] == "dpop_bound_token"
    assert "bound to a DPoP key" in body["message"]
    drf = Client().get("/api/drf/me/", HTTP_AUTHORIZATION=f"Bearer {bound}")
    assert drf.status_code == 401 and drf.json()["reason"] == "dpop_bound_token"


def test_an_unbound_token_sent_as_dpop_is_refused(alice, op, holder):
    plain = access_token(op)
    response = call(plain, holder.proof(plain))
    assert response.status_code == 401
    assert response.json()["reason"] == "token_not_bound"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("make", "reason", "words"),
    [
        (lambda h, t: None, "proof_missing", "exactly one DPoP header"),
        (lambda h, t: h.proof(t) + "," + h.proof(t), "proof_missing", "exactly one DPoP header"),
        (lambda h, t: "x" * (16 * 1024 + 1), "proof_too_large", "larger than 16 KB"),
        (lambda h, t: "not-a-jwt", "proof_malformed", "could not be read"),
        (lambda h, t: "e30.e30", "proof_malformed", "could not be read"),
        (lambda h, t: "!!!.e30.sig", "proof_malformed", "could not be read"),
        (
            lambda h, t: b64(b"[" * 5000 + b"]" * 5000) + ".e30.sig",
            "proof_malformed",
            "could not be read",
        ),
        (lambda h, t: b64(b'"just a string"') + ".e30.sig", "proof_malformed", "could not"),
        (lambda h, t: h.proof(t, header={"typ": "JWT"}), "proof_wrong_type", "not dpop+jwt"),
        (lambda h, t: _unsigned(h, t, "none"), "proof_alg", "asymmetric algorithm"),
        (lambda h, t: _unsigned(h, t, "HS256"), "proof_alg", "asymmetric algorithm"),
        (
            lambda h, t: h.proof(t, header={"jwk": {**h.jwk, "d": "secret"}}),
            "proof_key",
            "not a public key",
        ),
        (lambda h, t: h.proof(t, header={"jwk": "a string"}), "proof_key", "not a public key"),
        (
            lambda h, t: h.proof(t, header={"jwk": {"kty": "RSA", "n": "x", "e": "AQAB"}}),
            "proof_key",
            "not a public key",
        ),
        (lambda h, t: h.proof(t, htm="POST"), "proof_htm", "another HTTP method"),
        (lambda h, t: h.proof(t, htu="http://testserver/api/other/"), "proof_htu", "another URL"),
        (lambda h, t: h.proof(t, htu="https://evil.example/api/me/"), "proof_htu", "another URL"),
        (lambda h, t: h.proof(t, iat=int(time.time()) - 120), "proof_iat", "too old"),
        (lambda h, t: h.proof(t, iat=int(time.time()) + 120), "proof_iat", "from the future"),
        (lambda h, t: h.proof(t, iat="now"), "proof_iat", "too old"),
        (lambda h, t: h.proof(t, jti=None), "proof_jti", "no usable jti"),
        (lambda h, t: h.proof(t, jti="x" * 300), "proof_jti", "no usable jti"),
        (lambda h, t: h.proof(t, ath=None), "proof_ath", "another access token"),
        (lambda h, t: h.proof(t, ath=b64(b"0" * 32)), "proof_ath", "another access token"),
        (lambda h, t: Holder().proof(t), "proof_key_mismatch", "another key"),
        (lambda h, t: _tampered(h.proof(t)), "proof_signature", "does not verify"),
    ],
    ids=[
        "missing", "two-headers", "too-large", "one-part", "two-parts", "bad-base64",
        "deeply-nested-json", "not-an-object", "typ", "alg-none", "alg-hmac", "private-jwk",
        "jwk-not-object", "jwk-wrong-kty", "htm", "htu-path", "htu-host", "iat-old",
        "iat-future", "iat-not-number", "jti-missing", "jti-huge", "ath-missing", "ath-wrong",
        "other-key", "signature",
    ],
)  # fmt: skip
def test_every_proof_check_is_a_401_in_words(alice, bound, holder, make, reason, words):
    assert_refused(call(bound, make(holder, bound)), reason, words)


def _unsigned(holder: Holder, token: str, alg: str) -> str:
    proof = holder.proof(token)
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": holder.jwk}
    return b64(json.dumps(header).encode()) + "." + proof.split(".", 1)[1]


def _tampered(proof: str) -> str:
    head, body, signature = proof.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["jti"] = "changed-" + claims["jti"]
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


def test_a_proof_is_good_once(alice, bound, holder):
    proof = holder.proof(bound)
    assert call(bound, proof).status_code == 200
    assert_refused(call(bound, proof), "proof_replayed", "already used")


def test_htu_is_compared_without_query_and_fragment(alice, op, holder):
    token = access_token(op, cnf={"jkt": holder.jkt})
    proof = holder.proof(token, htu="http://testserver/api/whoami/?ignored=1#f")
    response = call(token, proof, "/api/whoami/?x=1")
    assert response.status_code == 200, response.content  # the query is not part of htu


def test_a_server_nonce_is_demanded_when_configured(alice, bound, holder, settings):
    settings.OIDC_API_DPOP_NONCE = True
    first = call(bound, holder.proof(bound))
    assert_refused(first, "use_dpop_nonce", "with its nonce", error="use_dpop_nonce")
    nonce = first["DPoP-Nonce"]
    assert nonce and first.json()["dpop_nonce"] == nonce
    assert call(bound, holder.proof(bound, nonce=nonce)).status_code == 200
    assert_refused(
        call(bound, holder.proof(bound, nonce="made-up")),
        "use_dpop_nonce",
        "nonce",
        "use_dpop_nonce",
    )


def test_scope_refusals_of_a_dpop_caller_use_the_dpop_scheme(alice, op, holder):
    token = access_token(op, cnf={"jkt": holder.jkt}, scope="other")
    response = call(token, holder.proof(token, htu="http://testserver/api/whoami/"), "/api/whoami/")
    assert response.status_code == 403
    assert response["WWW-Authenticate"].startswith("DPoP algs=")
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_a_dpop_request_costs_one_signature_verification_more_than_bearer(
    alice, bound, holder, monkeypatch
):
    """The token's check is cached as for Bearer; the proof's signature is the only extra."""
    call(bound, holder.proof(bound))  # warm: the token's signature and the JWKS are cached
    verified = []
    for algorithm in (ECAlgorithm, RSAAlgorithm):
        real = algorithm.verify

        def counting(self, *args, _real=real, **kwargs):
            verified.append(type(self).__name__)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(algorithm, "verify", counting)
    assert call(bound, holder.proof(bound)).status_code == 200
    assert verified == ["ECAlgorithm"]  # the proof's; the token's check is remembered
