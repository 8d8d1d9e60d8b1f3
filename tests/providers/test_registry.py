"""The provider registry: where providers come from, names, routing, and admin changes seen live."""

from __future__ import annotations

import time

import pytest
from django.core import checks
from django.utils import timezone

from accounts.checks import check_declared_providers, check_provider
from accounts.models import SECRET_PURPOSE, OIDCProvider
from accounts.providers.registry import (
    UnknownProvider,
    all_providers,
    enabled_providers,
    provider_for_email,
    provider_for_token,
    provider_get,
)
from accounts.security.crypto import encrypt


def add_row(slug: str = "partner", **fields) -> OIDCProvider:
    values = {
        "label": "Partner",
        "issuer": "https://partner.example",
        "client_id": "partner-client",
        "email_domains": "partner.example",
        **fields,
    }
    row = OIDCProvider(slug=slug, **values)
    row.set_client_secret("partner-secret")
    row.save()
    return row


def test_the_default_provider_is_the_oidc_op_settings_unchanged(settings):
    default = provider_get("default")
    assert default.issuer == settings.OIDC_OP_ISSUER
    assert default.client_id == settings.OIDC_RP_CLIENT_ID
    assert default.endpoints["token_endpoint"] == settings.OIDC_OP_TOKEN_ENDPOINT
    assert default.callback_path == "/oidc/callback/"
    settings.OIDC_TOKEN_USE_BASIC_AUTH = False
    assert provider_get("default").token_auth_method == "client_secret_post"


@pytest.mark.django_db
def test_providers_come_from_settings_then_oidc_providers_then_the_admin(settings):
    settings.OIDC_PROVIDERS = {"globex": {"issuer": "https://globex.example", "client_id": "g"}}
    add_row()
    assert [p.slug for p in all_providers()] == ["default", "globex", "partner"]
    assert provider_get("partner").callback_path == "/oidc/callback/partner/"
    assert provider_get("partner").client_secret == "partner-secret"


@pytest.mark.django_db
def test_a_declared_provider_wins_over_an_admin_row_of_the_same_name(settings, caplog):
    add_row(slug="globex", issuer="https://impostor.example")
    settings.OIDC_PROVIDERS = {"globex": {"issuer": "https://globex.example", "client_id": "g"}}
    assert provider_get("globex").issuer == "https://globex.example"
    assert "admin provider globex ignored" in caplog.text


@pytest.mark.django_db
def test_an_admin_change_made_by_another_process_is_seen_within_the_interval(settings, monkeypatch):
    settings.OIDC_PROVIDERS_RELOAD_INTERVAL = 5
    row = add_row()
    assert provider_get("partner").enabled
    # Another process switches it off: no signal reaches this one, only the table changes.
    OIDCProvider.objects.filter(pk=row.pk).update(enabled=False, updated_at=timezone.now())
    assert provider_get("partner")  # still remembered: the interval has not passed

    now = time.monotonic()
    monkeypatch.setattr("accounts.providers.registry.time.monotonic", lambda: now + 5)
    with pytest.raises(UnknownProvider):
        provider_get("partner")
    assert "partner" in [p.slug for p in all_providers()]  # known, but switched off


@pytest.mark.django_db
def test_a_save_in_this_process_is_seen_at_once(settings):
    settings.OIDC_PROVIDERS_RELOAD_INTERVAL = 3600
    row = add_row()
    assert provider_get("partner")
    row.enabled = False
    row.save()
    assert "partner" not in [p.slug for p in enabled_providers()]


@pytest.mark.django_db
def test_routing_by_email_domain_and_by_token_issuer_one_provider_per_issuer(settings, caplog):
    add_row()
    add_row(slug="partner-two", client_id="second-client", email_domains="")
    assert provider_for_email("Bob@Partner.Example").slug == "partner"
    assert provider_for_email("bob@elsewhere.example") is None
    # One issuer, one provider: the older row owns it, whatever the token's audience says.
    assert provider_for_token("https://partner.example", ["second-client"]).slug == "partner"
    assert provider_for_token("https://partner.example", "partner-client").slug == "partner"
    assert "partner-two" not in [p.slug for p in all_providers()]
    assert "provider partner-two ignored: its issuer belongs to provider partner" in caplog.text
    with pytest.raises(UnknownProvider, match="does not know"):
        provider_for_token("https://stranger.example", "partner-client")


@pytest.mark.django_db
def test_the_secret_column_holds_only_ciphertext():
    row = add_row()
    assert row.client_secret_encrypted.startswith("enc1$")
    assert "partner-secret" not in row.client_secret_encrypted
    assert row.client_secret_encrypted != encrypt("partner-secret", purpose=SECRET_PURPOSE)


# --- system checks name the provider they are about ---------------------------------------


def test_declared_providers_are_checked_by_name(settings):
    settings.DEBUG = False
    settings.OIDC_PROVIDERS = {
        "partner": {"issuer": "https://partner.example"},
        "Bad Name": {"issuer": "x", "client_id": "y"},
        "plain": {"issuer": "http://plain.example", "client_id": "p", "sign_algo": "none"},
        "ok": {"issuer": "https://ok.example", "client_id": "ok"},
    }
    hint = (
        "Each provider needs at least 'issuer' and 'client_id'; the keys are listed in the "
        "README's configuration reference."
    )
    assert check_declared_providers() == [
        checks.Error(
            "OIDC_PROVIDERS['partner']: 'client_id' is not set.", hint=hint, id="accounts.E010"
        ),
        checks.Error(
            "OIDC_PROVIDERS['Bad Name']: its name must be lower-case letters, digits and dashes "
            "(and not 'default', the provider of the OIDC_OP_* settings).",
            hint=hint,
            id="accounts.E010",
        ),
        checks.Error(
            "OIDC_PROVIDERS['plain']: sign_algo lists algorithms that are refused or "
            "unsupported: none.",
            hint="Use some of: ES256, ES384, ES512, EdDSA, HS256, HS384, HS512, PS256, PS384, "
            "PS512, RS256, RS384, RS512 ('none' never).",
            id="accounts.E008",
        ),
        checks.Error(
            "OIDC_PROVIDERS['plain']: the issuer uses http:// for a host that is not this machine.",
            hint="Use the provider's https:// issuer.",
            id="accounts.E006",
        ),
    ]


def test_without_oidc_op_settings_the_declared_providers_suffice(settings):
    settings.OIDC_OP_ISSUER = ""
    settings.OIDC_RP_CLIENT_ID = ""
    settings.OIDC_PROVIDERS = {"ok": {"issuer": "https://ok.example", "client_id": "ok"}}
    assert check_provider() == []
    settings.OIDC_PROVIDERS = {}
    assert [e.id for e in check_provider()][:2] == ["accounts.E001", "accounts.E002"]
