"""DPoP as a client (RFC 9449) against the scripted provider: proofs, nonces, token types.

The real dev IdP, with nonces required, is in tests/oidc/test_devidp_fapi2.py; here the
provider answers what a real one does only at its own moments (a nonce demanded at the
token endpoint or at userinfo, ``token_type`` spelt ``dpOp``, a plain ``Bearer``).
"""

from __future__ import annotations

import html
import json
import time

import jwt
import pytest
from jwt.algorithms import ECAlgorithm

from accounts.oidc import dpop
from tests.support.fapiop import FapiOP, finish_pushed, proof_in, start_pushed
from tests.support.scripted_signin import USERINFO_CLAIMS, unverified_claims

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def dpop_op(fapi_op: FapiOP, settings) -> FapiOP:
    settings.OIDC_DPOP = True
    return fapi_op


def verified(proof_header: dict, proof: str) -> dict:
    key = ECAlgorithm.from_jwk(json.dumps(proof_header["jwk"]))
    return jwt.decode(proof, key, algorithms=["ES256"])


def tokens_answer(op: FapiOP, id_token: str, token_type: str = "DPoP", **extra):
    body = {
        "access_token": "at-1",
        "token_type": token_type,
        "expires_in": 300,
        "refresh_token": "rt-1",
        "id_token": id_token,
        **extra,
    }
    return lambda headers, form: (200, body, "application/json", {})


def userinfo_ok(id_token: str):
    claims = unverified_claims(id_token)
    body = {k: claims[k] for k in USERINFO_CLAIMS if k in claims}
    return lambda headers, form: (200, body, "application/json", {})


def test_a_proof_has_every_member_of_rfc_9449_and_verifies_with_its_own_key(fapi_op):
    proof = dpop.dpop_proof("get", "https://rs.example/me?x=1#f", nonce="n-1", access_token="at")
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256"
    assert set(header["jwk"]) == {"kty", "crv", "x", "y"}  # public members only, never d
    claims = jwt.decode(
        proof, ECAlgorithm.from_jwk(json.dumps(header["jwk"])), algorithms=["ES256"]
    )
    assert claims["htm"] == "GET" and claims["htu"] == "https://rs.example/me"
    assert claims["nonce"] == "n-1" and claims["ath"] == dpop.access_token_hash("at")
    assert abs(claims["iat"] - time.time()) < 5
    other = jwt.decode(
        dpop.dpop_proof("GET", "https://rs.example/me"), options={"verify_signature": False}
    )
    assert other["jti"] != claims["jti"] and "nonce" not in other and "ath" not in other
    assert dpop.jwk_thumbprint(header["jwk"]) == dpop.dpop_key().jkt


def test_sign_in_sends_a_proof_to_par_token_and_userinfo_and_binds_the_code(client, dpop_op):
    _, form = start_pushed(client, dpop_op)
    assert form["dpop_jkt"] == dpop.dpop_key().jkt
    id_token = dpop_op.id_token(nonce=form["nonce"])
    dpop_op.script["/token"] = tokens_answer(dpop_op, id_token)
    dpop_op.script["/me"] = userinfo_ok(id_token)
    response = finish_pushed(client, dpop_op, form, answer=False)
    assert response.status_code == 302, text_of(response)[:500]
    ((_, par_claims),) = dpop_op.proofs("/par")
    assert (par_claims["htm"], par_claims["htu"]) == ("POST", f"{dpop_op.issuer}/par")
    ((token_header, token_claims),) = dpop_op.proofs("/token")
    assert token_claims["htu"] == f"{dpop_op.issuer}/token" and "ath" not in token_claims
    ((userinfo_headers, _),) = dpop_op.seen_at("/me")
    assert userinfo_headers["Authorization"] == "DPoP at-1"
    ((_, me_claims),) = dpop_op.proofs("/me")
    assert me_claims["htm"] == "GET" and me_claims["ath"] == dpop.access_token_hash("at-1")
    assert dpop.jwk_thumbprint(token_header["jwk"]) == form["dpop_jkt"]
    verified(
        token_header,
        userinfo_headers["Dpop"] if "Dpop" in userinfo_headers else userinfo_headers["DPoP"],
    )


def nonce_demanded(first_status: int, body, nonce: str, then, www: str = ""):
    """Answer ``use_dpop_nonce`` until a proof carries ``nonce``, then ``then``."""

    def answer(headers, form):
        claims = jwt.decode(proof_in(headers), options={"verify_signature": False})
        if claims.get("nonce") != nonce:
            extra = {"DPoP-Nonce": nonce}
            if www:
                extra["WWW-Authenticate"] = www
            return first_status, body, "application/json", extra
        return then(headers, form)

    return answer


def test_a_nonce_demanded_at_the_token_endpoint_is_sent_on_one_retry(client, dpop_op):
    _, form = start_pushed(client, dpop_op)
    id_token = dpop_op.id_token(nonce=form["nonce"])
    dpop_op.script["/token"] = nonce_demanded(
        400, {"error": "use_dpop_nonce"}, "n-token", tokens_answer(dpop_op, id_token)
    )
    dpop_op.script["/me"] = userinfo_ok(id_token)
    response = finish_pushed(client, dpop_op, form, answer=False)
    assert response.status_code == 302, text_of(response)[:500]
    nonces = [claims.get("nonce") for _, claims in dpop_op.proofs("/token")]
    assert nonces == [None, "n-token"]
    # Remembered for the server: userinfo (same origin) sends it on its first try.
    assert [claims.get("nonce") for _, claims in dpop_op.proofs("/me")] == ["n-token"]
    assert dpop.remembered_nonce(f"{dpop_op.issuer}/anything") == "n-token"


def test_a_nonce_demanded_at_userinfo_with_a_mixed_case_scheme_is_retried_once(client, dpop_op):
    _, form = start_pushed(client, dpop_op)
    id_token = dpop_op.id_token(nonce=form["nonce"])
    dpop_op.script["/token"] = tokens_answer(dpop_op, id_token)
    www = 'dPoP error="use_dpop_nonce", error_description="Resource server requires nonce"'
    dpop_op.script["/me"] = nonce_demanded(
        401, {"error": "use_dpop_nonce"}, "n-me", userinfo_ok(id_token), www=www
    )
    response = finish_pushed(client, dpop_op, form, answer=False)
    assert response.status_code == 302, text_of(response)[:500]
    assert [c.get("nonce") for _, c in dpop_op.proofs("/me")] == [None, "n-me"]


def test_a_provider_that_keeps_demanding_a_nonce_gets_exactly_one_retry(client, dpop_op):
    _, form = start_pushed(client, dpop_op)
    counter = iter(range(100))
    dpop_op.script["/token"] = lambda headers, form: (
        400,
        {"error": "use_dpop_nonce"},
        "application/json",
        {"DPoP-Nonce": f"n-{next(counter)}"},
    )
    response = finish_pushed(client, dpop_op, form, answer=False)
    assert len(dpop_op.proofs("/token")) == 2
    assert response.status_code in (502, 503)
    assert "_auth_user_id" not in client.session


def test_a_nonce_demanded_at_par_is_retried_once(client, dpop_op):
    calls = []

    def par(headers, form):
        claims = jwt.decode(
            headers.get("DPoP") or headers["Dpop"], options={"verify_signature": False}
        )
        calls.append(claims.get("nonce"))
        if claims.get("nonce") != "n-par":
            return 400, {"error": "use_dpop_nonce"}, "application/json", {"DPoP-Nonce": "n-par"}
        return 201, {"request_uri": "urn:x", "expires_in": 60}, "application/json", {}

    dpop_op.script["/par"] = par
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 302
    assert calls == [None, "n-par"]


def test_token_type_is_compared_case_insensitively(client, dpop_op):
    _, form = start_pushed(client, dpop_op)
    id_token = dpop_op.id_token(nonce=form["nonce"])
    dpop_op.script["/token"] = tokens_answer(dpop_op, id_token, token_type="dpOp")
    dpop_op.script["/me"] = userinfo_ok(id_token)
    response = finish_pushed(client, dpop_op, form, answer=False)
    assert response.status_code == 302, text_of(response)[:500]


def test_a_bearer_answer_to_a_dpop_request_is_a_configuration_error(client, dpop_op, caplog):
    _, form = start_pushed(client, dpop_op)
    id_token = dpop_op.id_token(nonce=form["nonce"])
    dpop_op.script["/token"] = tokens_answer(dpop_op, id_token, token_type="Bearer")
    response = finish_pushed(client, dpop_op, form, answer=False)
    assert response.status_code == 503
    assert "DPoP-bound tokens" in text_of(response)
    assert "token_type='Bearer'" in caplog.text
    assert "_auth_user_id" not in client.session


def test_a_malformed_nonce_is_not_remembered(dpop_op):
    class Answer:
        headers = {"DPoP-Nonce": 'bad"nonce'}

    assert dpop.remember_nonce(dpop_op.issuer, Answer()) is None
    assert dpop.remembered_nonce(dpop_op.issuer) is None


def test_client_credentials_and_introspection_stay_plain(dpop_op):
    from accounts.oidc.token_endpoint import token_request

    dpop_op.script["/token"] = lambda headers, form: (
        200,
        {"access_token": "x", "token_type": "Bearer"},
        "application/json",
        {},
    )
    token_request(f"{dpop_op.issuer}/token", {"grant_type": "client_credentials"})
    assert dpop_op.proofs("/token") == []
