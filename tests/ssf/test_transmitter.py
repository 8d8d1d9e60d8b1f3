"""The transmitter's SSF configuration (its keys) and poll delivery (RFC 8936), scripted."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import SignalStream
from accounts.ssf.transmitter import configuration_urls
from tests.ssf.sets import AUTHORIZATION, SET_TYP, make_set, push, set_claims
from tests.support.fakeop import SigningKey
from tests.support.sessions import is_signed_in, signed_in_session

pytestmark = pytest.mark.django_db

JSON = "application/json"


@pytest.mark.parametrize(
    ("issuer", "urls"),
    [
        ("https://idp.example", ["https://idp.example/.well-known/ssf-configuration"]),
        (
            "https://idp.example/tenant/1",
            [
                "https://idp.example/.well-known/ssf-configuration/tenant/1",
                "https://idp.example/tenant/1/.well-known/ssf-configuration",
            ],
        ),
    ],
)
def test_the_configuration_url_is_built_from_the_issuer_as_ssf_7_2_says(issuer, urls):
    assert configuration_urls(issuer) == urls


@pytest.fixture
def ssf(op, settings):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = AUTHORIZATION
    return op


@pytest.fixture
def alice(ssf) -> Client:
    client = Client()
    signed_in_session(client, issuer=ssf.issuer)
    return client


def serve_transmitter_keys(op, key: SigningKey, issuer: str | None = None) -> None:
    config = {"issuer": issuer or op.issuer, "jwks_uri": f"{op.base_url}/ssf-jwks"}
    op.extra_routes["/.well-known/ssf-configuration"] = lambda _: (200, config, JSON)
    op.extra_routes["/ssf-jwks"] = lambda _: (200, {"keys": [key.public_jwk()]}, JSON)


def test_sets_are_verified_with_the_keys_of_the_transmitters_configuration(ssf, alice):
    transmitter = SigningKey.rsa()
    serve_transmitter_keys(ssf, transmitter)

    provider_signed = push(make_set(ssf))  # the provider's ID-token key: not the transmitter's
    assert provider_signed.status_code == 400
    assert provider_signed.json()["err"] == "invalid_key"
    assert is_signed_in(alice)

    token = ssf.sign(set_claims(ssf), key=transmitter, headers=SET_TYP)
    assert push(token).status_code == 202
    assert not is_signed_in(alice)


def test_a_configuration_naming_another_issuer_is_ignored_for_the_providers_keys(ssf, alice):
    serve_transmitter_keys(ssf, SigningKey.rsa(), issuer="https://evil.example")
    assert push(make_set(ssf)).status_code == 202
    assert not is_signed_in(alice)


def test_poll_acts_acknowledges_and_reports_refused_sets_in_set_errs(ssf, alice):
    bob = Client()
    signed_in_session(bob, issuer=ssf.issuer, subject="sub-bob", username="bob", sid="sid-b")
    ssf.answer_tokens()  # the client-credentials token for the stream API
    SignalStream.objects.create(
        provider="default", stream_id="s-1", delivery="poll", poll_endpoint=f"{ssf.base_url}/poll"
    )
    good = make_set(ssf, jti="jti-1")
    answers = [
        {
            "sets": {
                "jti-1": good,
                "jti-2": make_set(ssf, jti="jti-2", aud="someone-else"),
                "jti-3": "not a token",
            },
            "moreAvailable": True,
        },
        {
            "sets": {
                "jti-4": make_set(
                    ssf,
                    jti="jti-4",
                    sub_id=None,
                    events={
                        "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked": {
                            "subject": {"format": "iss_sub", "iss": ssf.issuer, "sub": "sub-bob"}
                        }
                    },
                ),
                "jti-1": good,
            },
            "moreAvailable": False,
        },
        {"sets": {}, "moreAvailable": False},
    ]
    ssf.extra_routes["/poll"] = lambda _: (200, answers.pop(0), JSON)

    out = StringIO()
    call_command("ssf_poll", "--max-events", "3", stdout=out)

    assert "Acted on 3 SET(s), refused 2." in out.getvalue()  # jti-1 twice: acknowledged again
    assert "refused jti-2: invalid_audience" in out.getvalue()
    requests = [form["_json"] for form in ssf.forms if form.get("_path") == "/poll"]
    assert requests[0] == {"ack": [], "setErrs": {}, "maxEvents": 3, "returnImmediately": True}
    assert requests[1]["ack"] == ["jti-1"]
    assert set(requests[1]["setErrs"]) == {"jti-2", "jti-3"}
    assert requests[1]["setErrs"]["jti-3"]["err"] == "invalid_request"
    assert requests[1]["setErrs"]["jti-2"]["description"]
    assert requests[2] == {
        "ack": ["jti-4", "jti-1"],
        "setErrs": {},
        "maxEvents": 0,
        "returnImmediately": True,
    }
    assert not is_signed_in(alice)
    assert not is_signed_in(bob)


def test_poll_without_a_poll_stream_says_what_to_do(ssf):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="ssf_stream create --poll"):
        call_command("ssf_poll")
