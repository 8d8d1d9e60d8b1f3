"""breaker.py: a provider that stops answering is not called for a while, then probed."""

from __future__ import annotations

import pytest
import requests

from accounts.errors import ProviderError, ProviderNotAnswering
from accounts.oidc import breaker
from accounts.oidc.http import provider_request

URL = "http://127.0.0.1:9/token"  # nothing listens on the discard port: refused at once


@pytest.fixture
def clock(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(breaker.time, "time", lambda: now[0])
    return now


def test_three_connection_errors_open_the_breaker_and_calls_stop(settings, clock, caplog):
    settings.OIDC_BREAKER_THRESHOLD = 3
    for _ in range(3):
        with pytest.raises(ProviderError) as raised:
            provider_request("GET", URL, timeout=1)
        assert raised.value.code == "provider_unreachable"
    assert breaker.is_open(URL)
    with pytest.raises(ProviderNotAnswering) as refused:
        provider_request("GET", "http://127.0.0.1:9/jwks")  # same origin, another endpoint
    assert refused.value.status == 503
    assert "stopped answering" in refused.value.message
    opened = [r.getMessage() for r in caplog.records if r.name == "accounts.breaker"]
    assert opened == ["provider at http://127.0.0.1:9 is not answering (3 consecutive "
                      "failures): circuit open for 5 s"]  # fmt: skip


def test_after_the_interval_one_probe_goes_out_and_its_failure_doubles_the_pause(settings, clock):
    settings.OIDC_BREAKER_INTERVAL = 5
    for _ in range(3):
        breaker.failure(URL)
    assert not breaker.allow(URL)
    clock[0] += 5.1
    assert breaker.allow(URL)  # the probe
    assert not breaker.allow(URL)  # one probe at a time
    breaker.failure(URL)
    clock[0] += 5.1
    assert not breaker.allow(URL)  # 10 s now
    clock[0] += 5
    assert breaker.allow(URL)
    breaker.success(URL)
    assert breaker.allow(URL) and breaker.allow(URL)  # closed
    assert not breaker.is_open(URL)


def test_an_answer_of_any_kind_resets_the_count(clock):
    breaker.failure(URL)
    breaker.failure(URL)
    breaker.success(URL)
    breaker.failure(URL)
    assert breaker.allow(URL)


def test_another_process_finding_it_down_spares_us_the_timeout(clock):
    from accounts.security import shared_cache

    shared_cache.set(breaker._hint_key(breaker.origin(URL)), clock[0] + 30, 30)
    assert breaker.is_open(URL)
    assert not breaker.allow(URL)


def test_a_timeout_counts_like_a_refused_connection(monkeypatch, clock):
    def timeout(*args, **kwargs):
        raise requests.Timeout("read timed out")

    monkeypatch.setattr("accounts.oidc.http._session.request", timeout)
    for _ in range(3):
        with pytest.raises(ProviderError):
            provider_request("POST", "http://idp.test/token")
    assert breaker.is_open("http://idp.test/anything")
    assert not breaker.is_open("http://other.test/token")  # per provider host


@pytest.mark.django_db
def test_sign_in_start_at_a_provider_known_down_is_a_503_page_in_words(client, op, caplog):
    for _ in range(3):
        breaker.failure(op.issuer + "/token")
    response = client.get("/oidc/authenticate/?next=/members/")
    assert response.status_code == 503
    assert b"The identity provider is not answering" in response.content
    assert "Location" not in response.headers
    lines = [r.getMessage() for r in caplog.records if "provider_circuit_open" in r.getMessage()]
    assert len(lines) == 1
