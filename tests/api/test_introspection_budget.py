"""Opaque tokens: introspected only where a provider opts in, routed or refused, on a budget.

The review's finding: 300 random opaque tokens made 300 introspection calls carrying the
site's client credentials (5,000 junk tokens: 1,667 calls and 5,000 log lines), and a
Globex user's opaque token went to Acme's introspection endpoint.
"""

from __future__ import annotations

import logging
import secrets

import pytest
from django.test import Client

from accounts.audit import log as audit
from accounts.models import AuditEvent
from tests.support.providers import B_SLUG, provider_b_settings

pytestmark = pytest.mark.django_db

JUNK = 300


def call(token: str, address: str = "198.51.100.7", path: str = "/api/me/"):
    return Client(REMOTE_ADDR=address).get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.devidp
def test_300_junk_opaque_tokens_cost_the_dev_idp_at_most_the_budget(idp_site, settings, caplog):
    settings.OIDC_INTROSPECTION_BUDGET = 20
    caplog.set_level(logging.WARNING, logger="accounts.api")
    reasons = []
    for _ in range(JUNK):
        response = call(secrets.token_urlsafe(32))
        assert response.status_code == 401
        assert response.json()["message"]
        reasons.append(response.json()["reason"])

    assert idp_site.stats()["introspection"] == 20
    assert reasons[:20] == ["invalid_token"] * 20
    assert set(reasons[20:]) == {"introspection_budget"}
    assert "Too many unknown access tokens" in call("junk").json()["message"]
    # One log line per reason (and minute), not one per token; the audit rows count them all.
    lines = [r for r in caplog.records if "api request refused" in r.getMessage()]
    assert len(lines) <= 2 * 2  # two reasons, a minute boundary at most once
    counted = sum(
        AuditEvent.objects.filter(event=audit.BEARER_REFUSED).values_list("count", flat=True)
    )
    assert counted >= JUNK - 100  # flushed at 16, 32, 64, ... every 100th

    # Another address has its own budget; the same junk token again costs nothing.
    assert call("another-junk-token", address="203.0.113.9").status_code == 401
    assert call("another-junk-token", address="203.0.113.9").status_code == 401
    assert idp_site.stats()["introspection"] == 21


def test_a_repeated_junk_token_is_remembered_by_its_hash(op):
    op.introspection_answer = None  # inactive
    for _ in range(5):
        assert call("the-same-junk").status_code == 401
    assert op.count("/introspect") == 1


def test_ipv6_addresses_of_one_64_share_a_budget(op, settings):
    settings.OIDC_INTROSPECTION_BUDGET = 3
    op.introspection_answer = None
    for n in range(6):
        call(f"junk-{n}", address=f"2001:db8:1:2::{n + 1}")
    assert op.count("/introspect") == 3


def test_without_opt_in_opaque_tokens_are_refused_without_a_call(op, settings):
    settings.OIDC_OP_INTROSPECT = False
    response = call("an-opaque-token")
    assert response.status_code == 401
    assert response.json()["reason"] == "opaque_unsupported"
    assert "only JWT access tokens" in response.json()["message"]
    assert op.count("/introspect") == 0


def test_with_two_opted_in_providers_and_no_rule_the_token_goes_nowhere(op, op_b, settings):
    settings.OIDC_PROVIDERS = {B_SLUG: provider_b_settings(op_b, introspect=True)}
    response = call("an-opaque-token")
    assert response.status_code == 401
    assert response.json()["reason"] == "opaque_unrouted"
    assert "cannot tell which identity provider" in response.json()["message"]
    assert op.count("/introspect") == 0 and op_b.count("/introspect") == 0


def test_a_prefix_routes_opaque_tokens_to_their_provider_only(op, op_b, settings):
    settings.OIDC_PROVIDERS = {
        B_SLUG: provider_b_settings(op_b, introspect=True, opaque_token_prefix="glx_")
    }
    op.introspection_answer = None
    op_b.introspection_answer = None
    call("glx_a-globex-token")
    assert (op.count("/introspect"), op_b.count("/introspect")) == (0, 1)
    call("an-acme-token")
    assert (op.count("/introspect"), op_b.count("/introspect")) == (1, 1)


def test_two_introspecting_providers_without_a_prefix_is_a_check_warning(op, op_b, settings):
    from accounts.checks import check_declared_providers

    settings.OIDC_PROVIDERS = {B_SLUG: provider_b_settings(op_b, introspect=True)}
    warnings = [w for w in check_declared_providers() if w.id == "accounts.W006"]
    assert [w.msg for w in warnings] == [
        "Providers default, b introspect opaque tokens and none of them has an "
        "opaque_token_prefix: every opaque token will be refused."
    ]
    settings.OIDC_PROVIDERS = {
        B_SLUG: provider_b_settings(op_b, introspect=True, opaque_token_prefix="b_")
    }
    assert not [w for w in check_declared_providers() if w.id == "accounts.W006"]
