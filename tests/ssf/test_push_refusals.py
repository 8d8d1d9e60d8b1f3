"""The push receiver (RFC 8935) refuses every SET INTERFACE.md's rules refuse, in words.

Each refusal answers the RFC 8935 error as JSON, never a 500, and leaves the session that
the SET names signed in.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import jwt
import pytest
from django.db import connection

from accounts.models import AuditEvent, OIDCSession
from accounts.ssf.decoding import MAX_BODY_BYTES
from tests.ssf.sets import AUTHORIZATION, SET_TYP, make_set, push, set_claims
from tests.support.fakeop import SigningKey
from tests.support.sessions import is_signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def ssf(op, settings):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = AUTHORIZATION
    return op


@pytest.fixture
def alice(ssf):
    from django.test import Client

    from tests.support.sessions import signed_in_session

    client = Client()
    signed_in_session(client, issuer=ssf.issuer)
    return client


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def deep_json_set() -> str:
    depth = 11_000  # past Python's recursion limit, under the 16 KB cap once encoded
    return f"{b64(json.dumps(SET_TYP).encode())}.{b64(b'[' * depth + b']' * 0)}.c2ln"


def impostor_set(op) -> str:
    impostor = SigningKey.rsa(kid=op.keys[0].kid)
    return op.sign(set_claims(op), key=impostor, headers=SET_TYP)


REFUSED = {
    # name: (SET factory, expected status, expected err)
    "bad signature": (impostor_set, 400, "invalid_key"),
    "unknown kid": (
        lambda op: op.sign(set_claims(op), key=SigningKey.rsa(), headers=SET_TYP),
        400,
        "invalid_key",
    ),
    "alg none": (
        lambda op: jwt.encode(set_claims(op), None, algorithm="none", headers=SET_TYP),
        400,
        "invalid_request",
    ),
    "HS256 with the client secret": (
        lambda op: op.sign(set_claims(op), secret="site-secret", headers=SET_TYP),
        400,
        "invalid_request",
    ),
    "wrong typ": (lambda op: make_set(op, headers={"typ": "JWT"}), 400, "invalid_request"),
    "no typ": (lambda op: op.sign(set_claims(op)), 400, "invalid_request"),
    "unknown iss": (lambda op: make_set(op, iss="http://elsewhere.test"), 400, "invalid_issuer"),
    "wrong aud": (lambda op: make_set(op, aud="another-client"), 400, "invalid_audience"),
    "no aud": (lambda op: make_set(op, aud=None), 400, "invalid_request"),
    "stale iat": (lambda op: make_set(op, iat=int(time.time()) - 400), 400, "invalid_request"),
    "iat in the future": (
        lambda op: make_set(op, iat=int(time.time()) + 600),
        400,
        "invalid_request",
    ),
    "no iat": (lambda op: make_set(op, iat=None), 400, "invalid_request"),
    "no jti": (lambda op: make_set(op, jti=None), 400, "invalid_request"),
    "no events": (lambda op: make_set(op, events={}), 400, "invalid_request"),
    "events not objects": (
        lambda op: make_set(op, events={"urn:x": "revoked"}),
        400,
        "invalid_request",
    ),
    "garbage": (lambda op: "this is not a token", 400, "invalid_request"),
    "empty": (lambda op: "", 400, "invalid_request"),
    "two parts": (lambda op: "eyJhbGciOiJSUzI1NiJ9.e30", 400, "invalid_request"),
    "header not JSON": (lambda op: f"{b64(b'{nope')}.{b64(b'{}')}.c2ln", 400, "invalid_request"),
    "claims a list": (
        lambda op: f"{b64(json.dumps(SET_TYP).encode())}.{b64(b'[1]')}.c2ln",
        400,
        "invalid_request",
    ),
    "not UTF-8": (
        lambda op: f"{b64(b'{}')}.{b64(bytes([0xFF, 0xFE]))}.c2ln",
        400,
        "invalid_request",
    ),
    "deep JSON": (lambda op: deep_json_set(), 400, "invalid_request"),
    "oversized": (lambda op: make_set(op) + "A" * MAX_BODY_BYTES, 400, "invalid_request"),
}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_set_answers_the_rfc_8935_error_and_leaves_the_session(ssf, alice, case):
    factory, status, err = REFUSED[case]

    response = push(factory(ssf))

    assert response.status_code == status
    body = response.json()
    assert body["err"] == err
    assert len(body["description"]) > 20  # words, not a code
    assert (
        response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
    )
    assert is_signed_in(alice)
    assert OIDCSession.objects.filter(subject="sub-alice").exists()
    assert AuditEvent.objects.filter(event="shared_signal", outcome="success").count() == 0


def test_a_non_ascii_body_is_a_400_in_words(ssf, alice):
    response = push("é".encode() * 10)
    assert response.status_code == 400
    assert response.json()["err"] == "invalid_request"
    assert is_signed_in(alice)


def test_the_wrong_content_type_is_refused(ssf, alice):
    response = push(make_set(ssf), content_type="application/json")
    assert response.status_code == 400
    assert "secevent+jwt" in response.json()["description"]
    assert is_signed_in(alice)


def test_a_missing_authorization_is_401_and_nothing_is_read(ssf, alice):
    response = push(make_set(ssf), authorization=None)
    assert response.status_code == 401
    assert response.json()["err"] == "authentication_failed"
    assert ssf.count("/jwks") == 0
    assert is_signed_in(alice)


@pytest.mark.parametrize(
    "value", ["Bearer wrong", AUTHORIZATION + "x", AUTHORIZATION.lower(), "Basic Zm9vOmJhcg=="]
)
def test_a_wrong_authorization_is_403_and_costs_nothing(ssf, alice, value):
    response = push(make_set(ssf), authorization=value)
    assert response.status_code == 403
    assert response.json()["err"] == "access_denied"
    assert ssf.count("/jwks") == 0
    assert is_signed_in(alice)


def test_a_provider_without_a_push_authorization_accepts_no_push(op, settings):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = ""
    response = push(make_set(op))
    assert response.status_code == 403


def test_an_oversized_body_is_refused_before_it_is_read(ssf, alice):
    response = push(b"A" * (10 * MAX_BODY_BYTES))
    assert response.status_code == 400
    assert "too large" in response.json()["description"]
    assert is_signed_in(alice)


def test_get_is_not_allowed(ssf):
    from django.test import Client

    assert Client().get("/oidc/ssf/push/").status_code == 405


def test_a_replayed_set_is_refused_and_acts_once(ssf, alice):
    token = make_set(ssf)
    assert push(token).status_code == 202
    assert not is_signed_in(alice)
    from django.test import Client

    from tests.support.sessions import signed_in_session

    again = Client()
    signed_in_session(again, issuer=ssf.issuer)

    response = push(token)

    assert response.status_code == 400
    assert response.json()["err"] == "invalid_request"
    assert "already" in response.json()["description"]
    assert is_signed_in(again)


# A second process with its own Django, sharing only the database: the jti lives there.
SECOND_PROCESS = r"""
import json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
config = json.loads(sys.stdin.read())
import django
from django.conf import settings
django.setup()
for name, value in config["settings"].items():
    setattr(settings, name, value)
from django.test import Client
response = Client().post(
    "/oidc/ssf/push/", data=config["body"], content_type="application/secevent+jwt",
    HTTP_AUTHORIZATION=config["authorization"],
)
print(json.dumps({"status": response.status_code, "body": response.content.decode()}))
"""


def in_second_process(op, token: str) -> dict:
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    config = {
        "settings": {
            "OIDC_OP_ISSUER": op.issuer,
            "OIDC_OP_JWKS_ENDPOINT": f"{op.base_url}/jwks",
            "OIDC_RP_CLIENT_ID": "site-client",
            "OIDC_SSF_PUSH_AUTHORIZATION": AUTHORIZATION,
        },
        "body": token,
        "authorization": AUTHORIZATION,
    }
    result = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "DATABASE_URL": database_url},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_a_set_replayed_to_another_process_is_refused_there(ssf):
    if connection.vendor != "postgresql":
        pytest.skip("two processes share a PostgreSQL database only")
    from django.test import Client

    from tests.support.sessions import signed_in_session

    token = make_set(ssf)
    assert push(token).status_code == 202
    again = Client()
    signed_in_session(again, issuer=ssf.issuer)

    answer = in_second_process(ssf, token)

    assert answer["status"] == 400, answer
    assert json.loads(answer["body"])["err"] == "invalid_request"
    assert is_signed_in(again)
    # And a fresh SET sent first to the other process is accepted there, then refused here.
    fresh = make_set(ssf)
    assert in_second_process(ssf, fresh)["status"] == 202
    assert not is_signed_in(again)
    assert push(fresh).status_code == 400
