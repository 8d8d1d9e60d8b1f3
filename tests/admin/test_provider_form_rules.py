"""The admin's provider form applies the environment's rules when saving (accounts.E006, E008...).

The review's finding: with debug off, a provider added in the admin could use ``http://``
issuers and endpoints, which ``accounts.E006`` refuses for providers of the environment.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import OIDCProvider

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/accounts/oidcprovider/add/"


@pytest.fixture
def root() -> Client:
    user = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user, backend="accounts.backends.OIDCBackend")
    return client


def form(**overrides) -> dict:
    data = {
        "slug": "partner",
        "label": "Partner",
        "enabled": "on",
        "issuer": "https://partner.example",
        "client_id": "p",
        "client_secret": "partner-secret",
        "token_auth_method": "client_secret_basic",
        "scopes": "openid email profile",
        "sign_algo": "RS256",
        "discovery": "on",
        "username_claim": "preferred_username",
        "groups_claim": "groups",
        "admin_max_auth_age": "3600",
        **overrides,
    }
    return {k: v for k, v in data.items() if v is not None}


def errors_of(response) -> str:
    assert response.status_code == 200, response.status_code  # the form again, not a redirect
    assert not OIDCProvider.objects.exists()
    return response.content.decode()


def test_an_http_provider_is_refused_with_debug_off(root, settings):
    settings.DEBUG = False
    body = errors_of(
        root.post(
            ADD_URL,
            form(issuer="http://partner.example", userinfo_endpoint="http://partner.example/me"),
        )
    )
    assert body.count("Use https://") == 2  # the issuer and the endpoint, each named


def test_http_on_this_machine_or_with_debug_on_is_allowed(root, settings):
    settings.DEBUG = False
    response = root.post(ADD_URL, form(issuer="http://localhost:9001"))
    assert response.status_code == 302
    settings.DEBUG = True
    response = root.post(ADD_URL, form(slug="other", issuer="http://other.example"))
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"sign_algo": "none"}, "Not accepted: none"),
        ({"sign_algo": "RS256, XX999"}, "Not accepted: XX999"),
        (
            {"sign_algo": "HS256", "client_secret": "", "token_auth_method": "private_key_jwt"},
            "keyed with the client secret",
        ),
        ({"discovery": None}, "Without discovery, set the authorization, token and JWKS"),
        ({"client_id": ""}, "This field is required"),
        ({"issuer": ""}, "This field is required"),
        ({"admin_max_auth_age": "0"}, "positive number of seconds"),
    ],
)
def test_the_rules_of_the_system_checks_apply_at_save_time(root, overrides, words):
    assert words in errors_of(root.post(ADD_URL, form(**overrides)))
