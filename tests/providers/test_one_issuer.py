"""One issuer, one provider: a second provider naming Acme's issuer cannot sign in as Acme's users.

The review's finding: a provider added with the default provider's issuer, its own
endpoints and keys, had its tokens resolve Acme's identities (``/api/me/`` answered the
superuser, and a sign-in through it gave a superuser admin session). ``op`` is Acme (the
provider ``default``); ``op_b``'s server plays the attacker's provider ("evil"), with its own
keys, declared with ``op``'s issuer.
"""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.audit import log as audit
from accounts.checks import check_declared_providers
from accounts.errors import AccountError
from accounts.models import AuditEvent, OIDCIdentity, OIDCProvider
from accounts.providers.provider import SOURCE_DATABASE, provider_build
from accounts.providers.registry import UnknownProvider, all_providers, provider_get
from accounts.users.identities import resolve_user, user_for_subject
from tests.api.test_access_tokens import access_token
from tests.support.fakeop import CLIENT_ID
from tests.support.sessions import oidc_user

pytestmark = pytest.mark.django_db

EVIL_CLIENT = "evil-client"
ADD_URL = "/admin/accounts/oidcprovider/add/"


@pytest.fixture
def superuser_alice(op):
    """Acme's superuser, signed in through Acme before (an identity of the provider default)."""
    user = oidc_user(issuer=op.issuer, subject="sub-alice", username="alice")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def evil_values(op, evil) -> dict:
    return {
        "label": "Evil",
        "issuer": op.issuer,  # Acme's issuer ...
        "client_id": EVIL_CLIENT,
        "client_secret": "evil-secret",
        "discovery": False,
        **evil.endpoints(),  # ... with the attacker's endpoints and keys
    }


def evil_token(op, evil) -> str:
    """An access token signed by the attacker's key, naming Acme's issuer and Alice."""
    return access_token(evil, iss=op.issuer, sub="sub-alice", aud=EVIL_CLIENT)


def me(token: str, path: str = "/api/me/"):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_takeover_refused(op, evil) -> None:
    for path in ("/api/me/", "/api/drf/me/"):
        response = me(evil_token(op, evil), path)
        assert response.status_code == 401, response.content
        assert b"alice" not in response.content
    with pytest.raises(UnknownProvider):
        provider_get("evil")
    response = Client().get("/oidc/authenticate/", {"provider": "evil", "next": "/admin/"})
    assert response.status_code == 404
    assert evil.base_url not in response.get("Location", "")


# --- through OIDC_PROVIDERS -----------------------------------------------------------------


def test_a_declared_provider_with_the_default_providers_issuer_is_a_check_error(
    settings, op, _op_b_server
):
    settings.OIDC_PROVIDERS = {"evil": evil_values(op, _op_b_server)}
    errors = [e for e in check_declared_providers() if e.id == "accounts.E011"]
    assert [e.msg for e in errors] == [
        f"OIDC_PROVIDERS['evil']: the issuer {op.issuer} is already the issuer of the provider "
        "default (OIDC_OP_ISSUER)."
    ]
    assert "exactly one provider" in errors[0].hint


def test_two_declared_providers_with_one_issuer_is_a_check_error(settings):
    settings.OIDC_OP_ISSUER = ""
    settings.OIDC_PROVIDERS = {
        "one": {"issuer": "https://idp.example", "client_id": "a"},
        "two": {"issuer": "https://IDP.example/", "client_id": "b"},  # the same issuer
    }
    assert [e.msg for e in check_declared_providers() if e.id == "accounts.E011"] == [
        "OIDC_PROVIDERS['two']: the issuer https://IDP.example/ is already the issuer of "
        "OIDC_PROVIDERS['one']."
    ]


def test_takeover_through_oidc_providers_is_refused(settings, op, _op_b_server, superuser_alice):
    _op_b_server.reset()
    settings.OIDC_PROVIDERS = {"evil": evil_values(op, _op_b_server)}

    assert_takeover_refused(op, _op_b_server)
    assert [p.slug for p in all_providers()] == ["default"]
    assert _op_b_server.count("/jwks") == 0  # the attacker's key URL is never fetched


# --- through the admin ----------------------------------------------------------------------


def provider_staff() -> Client:
    """Staff holding every provider permission, but not superuser."""
    user = get_user_model().objects.create(username="pat", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__endswith="oidcprovider"))
    client = Client()
    client.force_login(user, backend="accounts.backends.OIDCBackend")
    return client


def superuser_client() -> Client:
    user = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user, backend="accounts.backends.OIDCBackend")
    return client


def admin_form(op, evil, **overrides) -> dict:
    values = evil_values(op, evil)
    data = {
        "slug": "evil",
        "label": "Evil",
        "enabled": "on",
        "issuer": values["issuer"],
        "client_id": EVIL_CLIENT,
        "client_secret": "evil-secret",
        "token_auth_method": "client_secret_basic",
        "scopes": "openid email profile",
        "sign_algo": "RS256",
        "username_claim": "preferred_username",
        "groups_claim": "groups",
        "create_user": "on",
        "admin_max_auth_age": "3600",
        **{name: values[name] for name in ("authorization_endpoint", "token_endpoint")},
        **{name: values[name] for name in ("userinfo_endpoint", "jwks_uri")},
        **overrides,
    }
    return {k: v for k, v in data.items() if v is not None}


def test_staff_with_the_provider_permissions_cannot_add_or_change_a_provider(op, _op_b_server):
    staff = provider_staff()
    assert staff.get(ADD_URL).status_code == 403
    assert staff.post(ADD_URL, admin_form(op, _op_b_server)).status_code == 403
    assert not OIDCProvider.objects.exists()

    row = OIDCProvider(slug="partner", label="P", issuer="https://partner.example", client_id="p")
    row.set_client_secret("partner-secret")
    row.save()
    url = f"/admin/accounts/oidcprovider/{row.pk}/change/"
    page = staff.get(url)
    assert page.status_code == 200  # view only
    assert "partner-secret" not in page.content.decode()
    assert b'name="issuer"' not in page.content
    response = staff.post(url, admin_form(op, _op_b_server, slug="partner"))
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.issuer == "https://partner.example"


def test_the_admin_form_refuses_an_issuer_another_provider_has(op, _op_b_server):
    response = superuser_client().post(ADD_URL, admin_form(op, _op_b_server))
    assert response.status_code == 200
    assert "The provider &#x27;default&#x27;" in response.content.decode()
    assert "already has this issuer" in response.content.decode()
    assert not OIDCProvider.objects.exists()


def test_takeover_through_an_admin_row_is_refused(op, _op_b_server, superuser_alice):
    # A row written past the form (by a version before the check, or straight into the table).
    _op_b_server.reset()
    row = OIDCProvider(slug="evil", label="Evil", issuer=op.issuer, client_id=EVIL_CLIENT)
    row.discovery = False
    for name, url in _op_b_server.endpoints().items():
        setattr(row, name, url)
    row.set_client_secret("evil-secret")
    row.save()

    assert_takeover_refused(op, _op_b_server)
    assert _op_b_server.count("/jwks") == 0


def test_a_providers_tokens_never_resolve_another_providers_identity(op, superuser_alice):
    # The second line: were a provider with Acme's issuer ever used, the identity check holds.
    evil = provider_build("evil", {"issuer": op.issuer, "client_id": "e"}, source=SOURCE_DATABASE)
    claims = {"sub": "sub-alice", "preferred_username": "alice", "email": "x@evil.example"}
    for resolve in (
        lambda: resolve_user(issuer=op.issuer, claims=claims, provider=evil),
        lambda: user_for_subject(issuer=op.issuer, claims=claims, provider=evil),
    ):
        with pytest.raises(AccountError) as refused:
            resolve()
        assert refused.value.code == "identity_of_another_provider"
    assert OIDCIdentity.objects.get(subject="sub-alice").provider == "default"
    assert get_user_model().objects.count() == 1


def test_identities_remember_the_provider_they_were_created_through(op, settings, op_b):
    from tests.support.providers import sign_in_at_b

    client = Client()
    sign_in_at_b(client, op_b, sub="sub-bob", email="bob@b.example")
    assert OIDCIdentity.objects.get(subject="sub-bob").provider == "b"


def test_the_migration_gives_existing_identities_their_issuers_provider(op, settings):
    settings.OIDC_PROVIDERS = {"partner": {"issuer": "https://partner.example", "client_id": "p"}}
    a = oidc_user(issuer=op.issuer, subject="a", username="a")
    b = oidc_user(issuer="https://partner.example", subject="b", username="b")
    OIDCIdentity.objects.update(provider="default")
    migration = importlib.import_module("accounts.migrations.0006_i18_identity_provider")

    migration.fill_identity_providers(apps, None)

    assert a.oidc_identities.get().provider == "default"
    assert b.oidc_identities.get().provider == "partner"


# --- endpoints typed by hand ----------------------------------------------------------------


def hand_entered(**overrides) -> dict:
    return {
        "slug": "partner",
        "label": "Partner",
        "enabled": "on",
        "issuer": "https://partner.example",
        "client_id": "p",
        "client_secret": "partner-secret",
        "token_auth_method": "client_secret_basic",
        "scopes": "openid email profile",
        "sign_algo": "RS256",
        "username_claim": "preferred_username",
        "groups_claim": "groups",
        "admin_max_auth_age": "3600",
        "authorization_endpoint": "https://partner.example/auth",
        "token_endpoint": "https://collector.example/token",
        "jwks_uri": "https://partner.example/jwks",
        **overrides,
    }


def test_hand_entered_endpoints_on_another_host_are_refused_without_the_box(op):
    response = superuser_client().post(ADD_URL, hand_entered())
    assert response.status_code == 200
    assert "not on the issuer&#x27;s host" in response.content.decode()
    assert not OIDCProvider.objects.exists()


def test_the_endpoints_on_another_host_box_allows_them_and_is_audited(op):
    response = superuser_client().post(ADD_URL, hand_entered(endpoints_other_host="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    row = AuditEvent.objects.get(event=audit.PROVIDER_ADDED)
    assert row.reason == "endpoints_other_host"
    assert "endpoints_other_host" in row.detail["fields"]


def test_an_access_token_of_the_default_provider_still_works(op, superuser_alice):
    assert me(access_token(op, aud=CLIENT_ID)).json()["username"] == "alice"
