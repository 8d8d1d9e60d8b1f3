"""The admin (SSO sign-in, the not-staff page, users, identities, sessions) and site pages."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.template import loader
from django.urls import reverse

from accounts.models import OIDCIdentity, OIDCSession

BACKEND = "accounts.backends.OIDCBackend"
ISSUER = "http://op.test"
STYLESHEET = '<link rel="stylesheet" href="/static/site.css">'


def _session_store():
    return import_module(django_settings.SESSION_ENGINE).SessionStore


@pytest.fixture
def member(db) -> User:
    user = User.objects.create_user("alice", email="alice@example.com", first_name="Alice")
    user.groups.add(Group.objects.create(name="app-readers"))
    OIDCIdentity.objects.create(
        user=user, issuer=ISSUER, subject="sub-alice-123", email="alice@example.com"
    )
    return user


@pytest.fixture
def superuser(db) -> User:
    user = User.objects.create_user("root", is_staff=True, is_superuser=True)
    OIDCIdentity.objects.create(user=user, issuer=ISSUER, subject="sub-root")
    return user


# --- Admin sign-in ----------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_login_offers_sso_button_and_no_password_field_by_default(client):
    response = client.get(reverse("admin:login"), {"next": "/admin/auth/user/"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="sso-login"' in body
    assert "Sign in with SSO" in body
    assert "/oidc/authenticate/?next=%2Fadmin%2Fauth%2Fuser%2F" in body
    assert 'type="password"' not in body
    assert 'name="password"' not in body
    assert "Break-glass" not in body


@pytest.mark.django_db
def test_admin_login_shows_break_glass_password_form_when_enabled(client, settings):
    settings.OIDC_ADMIN_PASSWORD_LOGIN = True
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="sso-login"' in body
    assert "Break-glass sign-in" in body
    assert 'type="password"' in body
    assert 'name="username"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'name="next" value="/admin/"' in body
    assert f'action="{reverse("admin:login")}"' in body
    assert '<label for="id_username"' in body
    assert '<label for="id_password"' in body


@pytest.mark.django_db
def test_non_staff_user_opening_admin_gets_not_staff_page_403_without_redirect_loop(client, member):
    client.force_login(member, backend=BACKEND)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) <= 1
    body = response.content.decode()
    assert "You are signed in, but not as staff" in body
    assert "Your account (alice) does not have staff rights." in body
    assert f'action="{reverse("oidc_logout")}"' in body
    assert 'method="post"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'type="password"' not in body


@pytest.mark.django_db
def test_staff_superuser_sees_admin_index(client, superuser):
    client.force_login(superuser, backend=BACKEND)
    response = client.get("/admin/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Acme Portal administration" in body
    assert "OIDC identities" in body
    assert "OIDC sessions" in body


# --- User, identity and session admin -----------------------------------------------------


@pytest.mark.django_db
def test_user_change_page_shows_linked_identity_inline_read_only(client, superuser, member):
    client.force_login(superuser, backend=BACKEND)
    response = client.get(reverse("admin:auth_user_change", args=[member.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Linked identities" in body
    assert "sub-alice-123" in body
    assert ISSUER in body
    # Read-only: no input for the subject, no way to add an identity by hand.
    assert 'name="oidc_identities-0-subject"' not in body
    assert "Add another linked identity" not in body


@pytest.mark.django_db
def test_user_changelist_filters_by_identity_issuer(client, superuser, member):
    User.objects.create_user("local-only")
    client.force_login(superuser, backend=BACKEND)
    url = reverse("admin:auth_user_changelist")
    body = client.get(url, {"issuer": ISSUER}).content.decode()
    assert "alice" in body
    assert "local-only" not in body
    body = client.get(url, {"issuer": "__none__"}).content.decode()
    assert "local-only" in body
    assert ">alice<" not in body


@pytest.mark.django_db
def test_end_sessions_admin_action_deletes_the_users_sessions(client, superuser, member):
    store = _session_store()()
    store["_auth_user_id"] = str(member.pk)
    store.create()
    key = store.session_key
    assert _session_store()().exists(key)
    OIDCSession.objects.create(
        session_key=key, user=member, issuer=ISSUER, subject="sub-alice-123", sid="sid-1"
    )
    client.force_login(superuser, backend=BACKEND)
    response = client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "end_sessions", "_selected_action": [member.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Ended 1 session of 1 user." in response.content.decode()
    assert not _session_store()().exists(key)
    assert not OIDCSession.objects.filter(session_key=key).exists()
    # The administrator's own session is untouched.
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_oidc_session_admin_never_shows_tokens_and_is_read_only(client, superuser, member):
    row = OIDCSession.objects.create(
        session_key="k" * 32,
        user=member,
        issuer=ISSUER,
        subject="sub-alice-123",
        sid="sid-visible",
        id_token="ID-TOKEN-SECRET",
        access_token="ACCESS-TOKEN-SECRET",
        refresh_token="REFRESH-TOKEN-SECRET",
    )
    client.force_login(superuser, backend=BACKEND)
    pages = [
        client.get(reverse("admin:accounts_oidcsession_changelist")),
        client.get(reverse("admin:accounts_oidcsession_change", args=[row.pk])),
    ]
    for response in pages:
        assert response.status_code == 200
        body = response.content.decode()
        assert "sid-visible" in body
        assert "TOKEN-SECRET" not in body
        assert "k" * 32 not in body
    assert client.get(reverse("admin:accounts_oidcsession_add")).status_code == 403


@pytest.mark.django_db
def test_oidc_identity_admin_lists_and_searches_identities(client, superuser, member):
    client.force_login(superuser, backend=BACKEND)
    response = client.get(reverse("admin:accounts_oidcidentity_changelist"), {"q": "sub-alice"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "sub-alice-123" in body
    assert "sub-root" not in body


# --- Site pages ------------------------------------------------------------------------------


def _assert_site_page(response, status: int = 200) -> str:
    assert response.status_code == status
    body = response.content.decode()
    assert '<html lang="en">' in body
    assert STYLESHEET in body
    assert 'href="#main"' in body
    assert '<main id="main"' in body
    return body


@pytest.mark.django_db
def test_home_page_signed_out_offers_sso_sign_in(client):
    body = _assert_site_page(client.get("/"))
    assert "Welcome" in body
    assert "Sign in with SSO" in body
    assert 'href="/oidc/authenticate/?next=/"' in body  # the header's "Sign in"
    assert reverse("oidc_logout") not in body


@pytest.mark.django_db
def test_home_page_signed_in_greets_user_and_signs_out_only_by_post_form(client, member):
    client.force_login(member, backend=BACKEND)
    body = _assert_site_page(client.get("/"))
    assert "Hello, Alice" in body
    assert f'<form method="post" action="{reverse("oidc_logout")}"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert f'href="{reverse("oidc_logout")}"' not in body
    assert 'href="/admin/"' not in body  # not staff: no Admin link


@pytest.mark.django_db
def test_header_sign_in_link_carries_the_full_path_urlencoded(client):
    body = _assert_site_page(client.get("/accounts/signin/", {"next": "/members/?a=1&b=2"}))
    assert 'href="/oidc/authenticate/?next=/accounts/signin/%3Fnext%3D' in body


@pytest.mark.django_db
def test_members_page_renders_for_signed_in_user(client, member):
    client.force_login(member, backend=BACKEND)
    body = _assert_site_page(client.get("/members/"))
    assert "Members area" in body


@pytest.mark.django_db
def test_members_page_sends_signed_out_visitor_to_sign_in(client):
    response = client.get("/members/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("oidc_authentication_init"))


@pytest.mark.django_db
def test_profile_page_shows_identity_subject_and_groups(client, member):
    client.force_login(member, backend=BACKEND)
    body = _assert_site_page(client.get("/accounts/profile/"))
    assert "Your profile" in body
    assert "sub-alice-123" in body
    assert ISSUER in body
    assert "app-readers" in body
    assert "alice@example.com" in body
    assert "<dl" in body
    assert f'<form method="post" action="{reverse("oidc_logout")}"' in body


@pytest.mark.django_db
def test_signin_page_links_to_sso_with_next(client):
    body = _assert_site_page(client.get("/accounts/signin/", {"next": "/members/"}))
    assert "This site uses your organisation's single sign-on." in body
    assert 'href="/oidc/authenticate/?next=/members/"' in body


@pytest.mark.django_db
def test_logout_get_shows_confirmation_post_form(client, member):
    client.force_login(member, backend=BACKEND)
    body = _assert_site_page(client.get(reverse("oidc_logout")))
    assert "Do you want to sign out of this site and your identity provider?" in body
    assert body.count(f'<form method="post" action="{reverse("oidc_logout")}"') == 2
    assert "Cancel" in body


@pytest.mark.django_db
def test_unknown_url_renders_site_404_page(client):
    body = _assert_site_page(client.get("/no-such-page/"), status=404)
    assert "Page not found" in body


def test_500_template_renders_with_empty_context():
    body = loader.get_template("500.html").render()
    assert '<html lang="en">' in body
    assert 'href="/static/site.css"' in body
    assert "Something went wrong" in body
