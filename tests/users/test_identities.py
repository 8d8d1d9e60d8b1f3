"""From a validated identity to a local user: (iss, sub), linking, provisioning, groups."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import OIDCIdentity
from accounts.users.backend import OIDCBackend
from accounts.users.claims import USERNAME_MAX_LENGTH
from tests.support.scripted_signin import finish, sign_in, signed_in

pytestmark = pytest.mark.django_db

User = get_user_model()


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def me(client) -> dict:
    response = client.get("/api/me/")
    assert response.status_code == 200
    return response.json()


def local_user(username: str = "alice", email: str = "alice@example.com"):
    return User.objects.create_user(username=username, email=email, password="local-password")


def test_first_sign_in_creates_the_user_and_the_identity(client, op):
    sign_in(client, op, groups=["app-members", "unmanaged"])
    user = User.objects.get()
    assert user.username == "alice"
    assert (user.email, user.first_name, user.last_name) == (
        "alice@example.com",
        "Alice",
        "Liddell",
    )
    assert not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser
    assert sorted(user.groups.values_list("name", flat=True)) == ["app-members"]
    identity = OIDCIdentity.objects.get()
    assert (identity.user, identity.issuer, identity.subject) == (user, op.issuer, "sub-alice")
    assert identity.email == "alice@example.com"
    assert identity.last_login_at is not None
    assert me(client)["username"] == "alice"


def test_user_is_found_by_issuer_and_subject_after_the_email_changes(op):
    sign_in(Client(), op)
    first = User.objects.get()
    client = Client()
    sign_in(client, op, email="alice.liddell@new.example", preferred_username="aliceL")
    assert User.objects.count() == 1
    user = User.objects.get()
    assert user.pk == first.pk
    assert user.email == "alice.liddell@new.example"
    assert user.username == "alice"  # the username is chosen once
    assert OIDCIdentity.objects.get().email == "alice.liddell@new.example"
    assert me(client)["email"] == "alice.liddell@new.example"


def test_same_subject_at_another_issuer_is_another_user(op):
    sign_in(Client(), op)
    OIDCIdentity.objects.update(issuer="https://other-provider.example")
    sign_in(Client(), op)
    assert User.objects.count() == 2


@pytest.mark.parametrize("link_by_email", [False, True], ids=["linking-off", "linking-on"])
def test_unverified_email_of_another_sub_never_gets_the_existing_account(
    client, op, settings, link_by_email
):
    settings.OIDC_LINK_BY_EMAIL = link_by_email
    victim = local_user()
    sign_in(client, op, sub="sub-mallory", email="ALICE@example.com", email_verified=False)
    assert int(client.session["_auth_user_id"]) != victim.pk
    assert me(client)["username"] == "alice-2"
    assert not victim.oidc_identities.exists()
    victim.refresh_from_db()
    assert victim.has_usable_password()
    mallory = OIDCIdentity.objects.get(subject="sub-mallory").user
    assert mallory.pk != victim.pk


@pytest.mark.parametrize(
    ("link_by_email", "linked"), [(True, True), (False, False)], ids=["linking-on", "linking-off"]
)
def test_verified_email_links_the_existing_account_only_when_enabled(
    client, op, settings, link_by_email, linked
):
    settings.OIDC_LINK_BY_EMAIL = link_by_email
    existing = local_user()
    sign_in(client, op, email="Alice@Example.com", email_verified=True)
    identity = OIDCIdentity.objects.get()
    assert (identity.user_id == existing.pk) is linked
    assert (int(client.session["_auth_user_id"]) == existing.pk) is linked
    assert User.objects.count() == (1 if linked else 2)


def test_verified_email_shared_by_two_local_accounts_links_neither(client, op, settings):
    settings.OIDC_LINK_BY_EMAIL = True
    first = local_user("alice", "alice@example.com")
    second = local_user("alice2", "ALICE@example.com")
    sign_in(client, op, email_verified=True)
    user = OIDCIdentity.objects.get().user
    assert user.pk not in (first.pk, second.pk)


def test_account_already_linked_to_this_issuer_is_not_linked_again(op, settings):
    settings.OIDC_LINK_BY_EMAIL = True
    sign_in(Client(), op)  # sub-alice owns alice@example.com
    client = Client()
    sign_in(client, op, sub="sub-alice-second", email_verified=True)
    assert User.objects.count() == 2
    assert me(client)["username"] == "alice-2"


@pytest.mark.parametrize(
    ("taken", "expected"),
    [(["alice"], "alice-2"), (["alice", "alice-2"], "alice-3"), (["alice-2"], "alice")],
)
def test_username_collision_gets_a_suffix(client, op, taken, expected):
    for name in taken:
        local_user(name, f"{name}@local.example")
    sign_in(client, op)
    assert me(client)["username"] == expected


def test_create_user_off_shows_the_not_provisioned_page(client, op, settings):
    settings.OIDC_CREATE_USER = False
    response = finish(client, op)
    assert response.status_code == 403
    assert "you have no account on this site yet" in text_of(response)
    assert "Your account cannot sign in" in text_of(response)
    assert not signed_in(client)
    assert User.objects.count() == 0
    assert OIDCIdentity.objects.count() == 0


def test_create_user_off_still_signs_in_known_identities(op, settings):
    sign_in(Client(), op)
    settings.OIDC_CREATE_USER = False
    sign_in(Client(), op)
    assert User.objects.count() == 1


def test_inactive_user_is_refused_with_a_page(op):
    sign_in(Client(), op)
    User.objects.update(is_active=False)
    client = Client()
    response = finish(client, op)
    assert response.status_code == 403
    assert "Your account on this site is deactivated." in text_of(response)
    assert not signed_in(client)
    assert client.get("/api/me/").status_code == 401


def test_user_removed_from_staff_group_is_demoted_and_unmanaged_groups_are_kept(op):
    sign_in(Client(), op, groups=["app-members", "app-staff", "app-admins"])
    user = User.objects.get()
    assert user.is_staff and user.is_superuser
    user.groups.add(Group.objects.create(name="local-editors"))
    client = Client()
    sign_in(client, op, groups=["app-members"])
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser
    assert sorted(user.groups.values_list("name", flat=True)) == ["app-members", "local-editors"]
    assert me(client)["groups"] == ["app-members", "local-editors"]


def test_user_added_to_the_admins_group_is_promoted_to_superuser_and_staff(op):
    sign_in(Client(), op)
    sign_in(Client(), op, groups=["/app-admins"])
    user = User.objects.get()
    assert user.is_superuser and user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == ["app-admins"]


def test_get_user_of_a_deactivated_user_is_none(op):
    sign_in(Client(), op)
    user = User.objects.get()
    backend = OIDCBackend()
    assert backend.get_user(user.pk) == user
    User.objects.update(is_active=False)
    assert backend.get_user(user.pk) is None
    assert backend.get_user(user.pk + 1000) is None


def test_signed_in_user_deactivated_is_anonymous_on_the_next_request(client, op):
    sign_in(client, op)
    assert client.get("/api/me/").status_code == 200
    User.objects.update(is_active=False)
    assert client.get("/api/me/").status_code == 401
    response = client.get("/members/")
    assert response.status_code == 302
    assert response["Location"].startswith("/oidc/authenticate/")


def test_username_collision_at_the_length_limit_finds_a_free_name(client, op):
    base = "x" * USERNAME_MAX_LENGTH
    local_user(base, "long@local.example")
    local_user(base[:-2] + "-2", "long2@local.example")
    sign_in(client, op, preferred_username=base)
    assert me(client)["username"] == base[:-2] + "-3"


def test_api_me_reports_the_identity_last_signed_in_not_one_never_used(client, op):
    sign_in(client, op)
    user = User.objects.get()
    OIDCIdentity.objects.create(user=user, issuer="https://old-provider.example", subject="old")
    body = me(client)
    assert (body["iss"], body["sub"]) == (op.issuer, "sub-alice")
