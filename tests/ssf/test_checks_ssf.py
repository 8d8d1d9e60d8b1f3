"""System checks of the Shared Signals receiver's settings."""

from __future__ import annotations

from django.core import checks

from accounts.checks import check_shared_signals

LONG = "Bearer " + "x" * 40


def test_no_shared_signals_settings_is_fine(settings):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = ""
    assert check_shared_signals() == []


def test_a_short_push_authorization_is_a_warning(settings):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = "Bearer abc"
    assert check_shared_signals() == [
        checks.Warning(
            "OIDC_SSF_PUSH_AUTHORIZATION is short enough to be guessed.",
            hint='Use a generated value, e.g. python -c "import secrets; '
            "print('Bearer ' + secrets.token_urlsafe(32))\", or let manage.py "
            "ssf_stream create generate one.",
            id="accounts.W025",
        )
    ]


def test_two_providers_with_one_push_authorization_is_an_error(settings):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = LONG
    settings.OIDC_PROVIDERS = {
        "b": {"issuer": "https://b.example", "client_id": "b", "ssf_push_authorization": LONG}
    }
    assert check_shared_signals() == [
        checks.Error(
            "OIDC_PROVIDERS['b']['ssf_push_authorization'] is the same value as provider "
            "default's.",
            hint="Give each provider's transmitter its own Authorization value: it says which "
            "provider a push comes from.",
            id="accounts.E026",
        )
    ]


def test_a_max_age_that_is_not_positive_is_an_error(settings):
    settings.OIDC_SSF_MAX_AGE = 0
    assert [m.id for m in check_shared_signals()] == ["accounts.E025"]
