"""GET /metrics: who may scrape, what is counted, and that outsiders cannot add series."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts import metrics
from accounts.views import metrics as metrics_view
from tests.support.scripted_signin import sign_in

pytestmark = pytest.mark.django_db


def scrape(client, **extra) -> dict[str, dict[tuple, float]]:
    answer = client.get("/metrics", **extra)
    assert answer.status_code == 200, answer.content[:300]
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(answer.content.decode()):
        found.setdefault(family.name, {})
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels) -> float:
    return found.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_a_loopback_scrape_gets_the_text_format_with_readiness_and_sessions(client, op):
    found = scrape(client)
    assert value(found, "oidc_ready", check="database") == 1
    assert value(found, "oidc_provider_up", provider="default") == 1
    assert "oidc_ready" in found


def test_a_caller_outside_the_allow_list_is_refused_in_words(client, caplog):
    answer = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert answer.status_code == 403
    assert "METRICS_ALLOWED_IPS" in answer.json()["message"]
    assert b"oidc_" not in answer.content


def test_the_bearer_token_lets_a_scraper_in_from_anywhere(client, settings):
    settings.METRICS_TOKEN = secrets.token_urlsafe(32)
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    good = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}", **outside)
    assert good.status_code == 200
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **outside)
    assert wrong.status_code == 403


def test_a_sign_in_is_counted_with_its_provider_and_its_token_call_timed(client, op):
    before = scrape(client)
    sign_in(client, op)
    metrics_view._sessions["at"] = 0.0  # the grouped count is kept a few seconds
    after = scrape(client)
    assert value(after, "oidc_active_sessions", provider="default") == 1
    labels = {"provider": "default", "outcome": "success", "reason": "success"}
    counted = [
        value(after, "oidc_sign_ins_total", **labels)
        - value(before, "oidc_sign_ins_total", **labels)
    ]
    assert counted == [1]
    timed = "oidc_provider_request_duration_seconds_count"
    token = {"provider": "default", "endpoint": "token"}
    assert value(after, timed, **token) == value(before, timed, **token) + 1


def test_a_flood_of_junk_bearer_tokens_adds_no_series(client, op):
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    def junk() -> str:
        kind = secrets.randbelow(4)
        if kind == 0:
            return secrets.token_urlsafe(40)
        if kind == 1:
            return ".".join(secrets.token_urlsafe(20) for _ in range(3))
        if kind == 2:
            return "eyJhbGciOiJSUzI1NiIsImtpZCI6Ij" + secrets.token_urlsafe(30) + ".e30.x"
        # A JWT with random claims: issuer, audience, key id, type and algorithm.
        header = {
            "alg": secrets.choice(["RS256", "ES256", "none", secrets.token_hex(3)]),
            "kid": secrets.token_hex(8),
            "typ": secrets.choice(["at+jwt", "JWT", "x"]),
        }
        claims = {
            "iss": f"https://{secrets.token_hex(5)}.example",
            "aud": secrets.token_hex(4),
            "sub": secrets.token_hex(6),
            "exp": secrets.randbelow(2**33),
            secrets.token_hex(3): secrets.token_hex(3),
        }
        return f"{part(header)}.{part(claims)}.{secrets.token_urlsafe(32)}"

    for _ in range(30):
        client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {junk()}")
    series = set(scrape(client).get("oidc_bearer_requests_total", {}))
    for _ in range(300):
        client.get(
            "/api/me/",
            HTTP_AUTHORIZATION=f"Bearer {junk()}",
            REMOTE_ADDR=f"198.51.100.{secrets.randbelow(250)}",
        )
    again = scrape(client)
    assert set(again.get("oidc_bearer_requests_total", {})) == series
    refused = sum(
        count
        for labels, count in again["oidc_bearer_requests_total"].items()
        if ("outcome", "refused") in labels
    )
    assert refused >= 330


def test_label_values_come_from_closed_sets():
    assert metrics.provider_label("no-such-provider") == metrics.NO_PROVIDER
    assert metrics.reason_label("t", "Robert'); DROP") == metrics.OTHER
    for index in range(metrics.MAX_REASONS + 10):
        metrics.reason_label("closed-set-test", f"reason_{index}")
    assert metrics.reason_label("closed-set-test", "reason_99999") == metrics.OTHER
    assert metrics.endpoint_label("https://idp.example/anything/else") == metrics.OTHER
    assert metrics.endpoint_label("https://idp.example/oauth2/v1/token") == "token"


def test_every_series_the_dashboard_charts_is_one_the_site_exports(client):
    import json
    import re
    from pathlib import Path

    from prometheus_client import REGISTRY

    exported = set()
    for family in REGISTRY.collect():
        if family.name.startswith("oidc_"):
            for suffix in ("", "_total", "_bucket", "_count", "_sum"):
                exported.add(family.name + suffix)
    exported |= set(scrape(client))  # the gauges computed when scraped
    dashboard = json.loads(Path("docs/grafana-dashboard.json").read_text())
    charted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\boidc_[a-z_]+", target["expr"])
    }
    assert len(charted) >= 10
    assert charted <= exported, charted - exported
