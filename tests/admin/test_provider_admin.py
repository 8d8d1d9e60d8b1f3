"""Providers added in the admin: secret encrypted at rest, key rotation, the test action."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from accounts.models import SECRET_PURPOSE, OIDCProvider
from accounts.providers.registry import registry_forget
from accounts.security.crypto import needs_rotation
from tests.support.fakeop import basic_auth_header
from tests.support.providers import B_CLIENT_ID, provider_b_settings, sign_in_at_b

pytestmark = pytest.mark.django_db

SECRET = "b-secret"  # the provider_b_settings secret, typed into the admin
ADD_URL = "/admin/accounts/oidcprovider/add/"


@pytest.fixture
def operator(client) -> Client:
    user = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(user, backend="accounts.backends.OIDCBackend")
    return client


def form_data(op_b, **overrides) -> dict:
    values = provider_b_settings(op_b)
    data = {
        "slug": "b",
        "label": "Provider B",
        "enabled": "on",
        "issuer": values["issuer"],
        "client_id": B_CLIENT_ID,
        "client_secret": SECRET,
        "token_auth_method": "client_secret_basic",
        "scopes": "openid email profile",
        "sign_algo": "RS256",
        "email_domains": "b.example",
        "username_claim": "preferred_username",
        "groups_claim": "groups",
        "create_user": "on",
        "fetch_userinfo": "on",
        "admin_max_auth_age": "3600",
        **{name: values[name] for name in ("authorization_endpoint", "token_endpoint")},
        **{name: values[name] for name in ("userinfo_endpoint", "jwks_uri")},
        **overrides,
    }
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def admin_b(operator, op, _op_b_server, settings):
    """Provider "b" added through the admin's form (not declared in the settings)."""
    _op_b_server.reset()
    _op_b_server.client_id, _op_b_server.client_secret = B_CLIENT_ID, SECRET
    response = operator.post(ADD_URL, form_data(_op_b_server))
    assert response.status_code == 302, response.content.decode()[:3000]
    return _op_b_server


def raw_secret_column() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret_encrypted FROM accounts_oidcprovider")
        return cursor.fetchone()[0]


def test_the_client_secret_is_not_readable_in_the_database(admin_b):
    stored = raw_secret_column()
    assert SECRET not in stored
    assert stored.startswith("enc1$")
    assert OIDCProvider.objects.get(slug="b").client_secret == SECRET


def test_the_change_form_never_shows_the_secret(operator, admin_b):
    row = OIDCProvider.objects.get(slug="b")
    body = operator.get(f"/admin/accounts/oidcprovider/{row.pk}/change/").content.decode()
    assert SECRET not in body and row.client_secret_encrypted not in body
    assert "A secret is set (write-only, stored encrypted, never shown)" in body
    assert body.count('name="client_secret"') == 1 and body.count(">Client secret") == 1
    assert 'id="redirect-uri">http://testserver/oidc/callback/b/</code>' in body
    assert 'data-copy="http://testserver/oidc/callback/b/"' in body
    assert "sso-admin-copy.js" in body and "<script>" not in body  # no inline script
    assert "/oidc/callback/&lt;slug&gt;/" in body  # the slug hint shows its placeholder
    assert "/oidc/callback/b/" in body


def test_a_provider_added_in_the_admin_signs_in_with_its_secret(admin_b):
    sign_in_at_b(Client(), admin_b)
    assert admin_b.forms[-1]["_authorization"] == basic_auth_header(B_CLIENT_ID, SECRET)


def test_sign_in_works_after_rotating_secret_key_and_saving_re_encrypts(
    operator, admin_b, settings
):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-brand-new-secret-key-after-rotation"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    registry_forget()
    row = OIDCProvider.objects.get(slug="b")
    assert needs_rotation(row.client_secret_encrypted, purpose=SECRET_PURPOSE)

    sign_in_at_b(Client(), admin_b)
    assert admin_b.forms[-1]["_authorization"] == basic_auth_header(B_CLIENT_ID, SECRET)

    row.save()  # any save writes the secret again under the current key
    row.refresh_from_db()
    assert not needs_rotation(row.client_secret_encrypted, purpose=SECRET_PURPOSE)
    settings.SECRET_KEY_FALLBACKS = []
    registry_forget()
    sign_in_at_b(Client(), admin_b)


def test_a_secret_unreadable_after_losing_the_old_key_skips_the_provider_in_words(
    admin_b, settings, caplog
):
    settings.SECRET_KEY = "a-brand-new-secret-key-after-rotation"
    settings.SECRET_KEY_FALLBACKS = []
    registry_forget()

    response = Client().get("/oidc/authenticate/", {"provider": "b"})

    assert response.status_code == 404
    assert "provider b skipped: its client secret cannot be decrypted" in caplog.text
    assert SECRET not in caplog.text


def test_an_empty_secret_field_keeps_the_stored_secret(operator, admin_b):
    row = OIDCProvider.objects.get(slug="b")
    data = form_data(admin_b, client_secret="", label="Provider B, renamed")
    response = operator.post(f"/admin/accounts/oidcprovider/{row.pk}/change/", data)
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.label == "Provider B, renamed" and row.client_secret == SECRET


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"slug": "default"}, "is the name of a provider declared in the settings"),
        ({"client_secret": None}, "A new provider needs the client secret."),
        ({"sign_algo": "none"}, "Not accepted: none."),
        ({"jwks_uri": ""}, "Without discovery, set the authorization, token and JWKS endpoints."),
    ],
)
def test_the_form_refuses_what_sign_in_would_refuse(operator, op, _op_b_server, overrides, error):
    response = operator.post(ADD_URL, form_data(_op_b_server, **overrides))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not OIDCProvider.objects.exists()


def test_declared_providers_are_listed_read_only(operator, op, op_b):
    body = operator.get("/admin/accounts/oidcprovider/").content.decode()
    assert "Providers declared in the settings (read-only here)" in body
    assert op_b.issuer in body and op.issuer in body


def test_the_test_action_checks_the_provider_live(operator, admin_b):
    admin_b.answer_tokens(None)  # the client-credentials grant succeeds
    row = OIDCProvider.objects.get(slug="b")
    response = operator.post(
        "/admin/accounts/oidcprovider/",
        {"action": "test_providers", "_selected_action": [row.pk]},
        follow=True,
    )
    body = response.content.decode()
    assert "Provider b: all 11 checks passed." in body
    assert admin_b.forms[-1]["grant_type"] == "client_credentials"

    admin_b.keys = []  # no key for RS256 any more
    response = operator.post(
        "/admin/accounts/oidcprovider/",
        {"action": "test_providers", "_selected_action": [row.pk]},
        follow=True,
    )
    assert "jwks RS256: no key for RS256 in 0 keys" in response.content.decode()


def test_provider_changes_in_the_admin_are_audited_with_names_never_values(operator, admin_b):
    from accounts.models import AuditEvent

    row = OIDCProvider.objects.get(slug="b")
    data = form_data(admin_b, client_secret="a-new-secret", label="B2")
    operator.post(f"/admin/accounts/oidcprovider/{row.pk}/change/", data)
    operator.post(
        "/admin/accounts/oidcprovider/",
        {"action": "disable_providers", "_selected_action": [row.pk]},
    )

    events = list(
        AuditEvent.objects.filter(event__startswith="provider_")
        .order_by("pk")
        .values("event", "provider", "username", "detail")
    )
    assert [(e["event"], e["provider"], e["username"]) for e in events] == [
        ("provider_added", "b", "root"),
        ("provider_changed", "b", "root"),
        ("provider_disabled", "b", "root"),
    ]
    assert {"client_secret", "label"} <= set(events[1]["detail"]["fields"])
    assert "a-new-secret" not in str(events) and SECRET not in str(events)


def test_a_sign_in_at_b_is_audited_with_its_provider(admin_b):
    from accounts.models import AuditEvent

    sign_in_at_b(Client(), admin_b)
    row = AuditEvent.objects.get(event="sign_in")
    assert (row.provider, row.issuer, row.outcome) == ("b", admin_b.issuer, "success")
