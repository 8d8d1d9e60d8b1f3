"""No token reaches a 500: crafted bearer and logout tokens are refused in words on every URL.

The review's finding: a bearer token whose header is ``[`` x 1000 raised ``RecursionError`` in
the access-token peek on ``/api/me/`` and ``/api/drf/me/`` (debug off too), a traceback per
request and no audit row. Every URL that parses a token (API access tokens and DPoP proofs,
logout tokens, Security Event Tokens) is fuzzed here with hypothesis.
"""

from __future__ import annotations

import base64

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.audit import log as audit
from accounts.models import AuditEvent
from accounts.oidc.jose_safe import MAX_TOKEN_BYTES

pytestmark = pytest.mark.django_db

API_URLS = ["/api/me/", "/api/drf/me/", "/api/whoami/", "/api/drf/whoami/"]
LOGOUT_URL = "/oidc/backchannel-logout/"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


NESTED = f"{b64(b'[' * 1000)}.{b64(b'{}')}.c2ln"


def bearer(path: str, token: str):
    return Client(raise_request_exception=False).get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_refused_in_words(response, status: int = 401) -> dict:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body.get("message") or body.get("detail") or body.get("error_description"), body
    return body


@pytest.mark.parametrize("path", API_URLS)
def test_the_nested_json_header_is_refused_in_words_on_every_api_url(op, settings, path):
    settings.DEBUG = False
    body = assert_refused_in_words(bearer(path, NESTED))
    assert "could not be read" in str(body)
    assert AuditEvent.objects.filter(event=audit.BEARER_REFUSED, reason="malformed").exists()


@pytest.mark.parametrize("path", API_URLS)
def test_an_oversized_token_is_refused_before_decoding_or_introspection(op, path):
    response = bearer(path, "a" * (MAX_TOKEN_BYTES + 1))
    assert "too long" in str(assert_refused_in_words(response))
    assert op.count("/introspect") == 0


def test_the_nested_json_logout_token_is_refused_in_words(op):
    response = Client(raise_request_exception=False).post(LOGOUT_URL, {"logout_token": NESTED})
    assert response.status_code == 400
    assert "could not be read" in response.content.decode()


def test_an_oversized_logout_token_is_refused(op):
    token = f"{b64(b'{}')}.{'a' * MAX_TOKEN_BYTES}.c2ln"
    response = Client(raise_request_exception=False).post(LOGOUT_URL, {"logout_token": token})
    assert response.status_code == 400
    assert "too long" in response.content.decode()


part = st.one_of(
    st.binary(max_size=200).map(b64),
    st.integers(0, 2000).map(lambda n: b64(b"[" * n)),
    st.integers(0, 2000).map(lambda n: b64(b'{"alg":"RS256","x":' + b"[" * n + b"}")),
    st.text(max_size=60),
)
tokens = st.one_of(
    st.tuples(part, part, part).map(".".join),
    st.text(max_size=200),
    st.integers(MAX_TOKEN_BYTES - 2, MAX_TOKEN_BYTES + 2).map(lambda n: "e" * n),
)


@FUZZ
@given(token=tokens, path=st.sampled_from(API_URLS))
def test_fuzzed_bearer_tokens_never_reach_a_500(op, token, path):
    op.answer_introspection(active=False)
    token = token.replace("\n", "").replace("\r", "")
    response = bearer(path, token)
    assert response.status_code in (401, 403), (response.status_code, response.content[:300])


@FUZZ
@given(token=tokens)
def test_fuzzed_logout_tokens_never_reach_a_500(op, token):
    response = Client(raise_request_exception=False).post(LOGOUT_URL, {"logout_token": token})
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response.content


SSF_URL = "/oidc/ssf/push/"
SSF_AUTHORIZATION = "Bearer fuzzing-the-push-receiver-with-a-long-enough-value"


@FUZZ
@given(token=tokens)
def test_fuzzed_security_event_tokens_never_reach_a_500(op, settings, token):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = SSF_AUTHORIZATION
    response = Client(raise_request_exception=False).post(
        SSF_URL,
        data=token.encode("utf-8", "surrogatepass"),
        content_type="application/secevent+jwt",
        HTTP_AUTHORIZATION=SSF_AUTHORIZATION,
    )
    assert response.status_code in (400, 403), (response.status_code, response.content[:300])
    assert response.json().get("description") or response.json().get("err")


@FUZZ
@given(proof=tokens, path=st.sampled_from(API_URLS))
def test_fuzzed_dpop_proofs_never_reach_a_500(op, proof, path):
    proof = proof.replace("\n", "").replace("\r", "")
    response = Client(raise_request_exception=False).get(
        path, HTTP_AUTHORIZATION="DPoP some-access-token", HTTP_DPOP=proof
    )
    assert response.status_code == 401, (response.status_code, response.content[:300])
    assert response["WWW-Authenticate"].startswith("DPoP")
    assert response.json().get("message") or response.json().get("detail")
