"""Sign-in and directory sync share their rules: they build, compare, name and link alike.

Each test crosses the two paths: what one writes, the other finds unchanged; the same
accounts are linked by email or not; usernames come from one allocator, by exact look-ups.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import OIDCIdentity
from accounts.sync.context import directory_policy
from accounts.sync.engine import directory_sync
from accounts.users.claims import map_claims
from accounts.users.identities import _link_by_email, apply_profile, new_user, resolve_user
from accounts.users.identities import unique_username as signin_username
from tests.support.sync import ListSource, person

ISSUER = "http://op.test"
OTHER_ISSUER = "https://other.example"
User = get_user_model()

pytestmark = pytest.mark.django_db


def sync(items: list[dict[str, Any]], **options: Any):
    return directory_sync(source=ListSource(items), issuer=ISSUER, **options)


def claims_of(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "active"}


def test_user_created_by_sign_in_is_unchanged_for_the_sync():
    record = person("s1", username="alice", groups=["app-staff", "app-b", "other"])
    user = resolve_user(issuer=ISSUER, claims=claims_of(record), policy=directory_policy())
    user.groups.add(Group.objects.create(name="local-editors"))

    report = sync([record])

    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert not user.has_usable_password()


def test_user_created_by_the_sync_is_unchanged_for_sign_in():
    record = person("s1", username="alice", groups=["app-admins", "app-b", "other"])
    sync([record])
    user = OIDCIdentity.objects.get(subject="s1").user
    policy = directory_policy()

    changed = apply_profile(user, map_claims(claims_of(record), policy), policy)

    assert changed is False
    assert user.is_superuser and user.is_staff and not user.has_usable_password()


def test_new_user_is_unsaved_with_the_profile_fields_and_no_usable_password():
    profile = map_claims(claims_of(person("s1", groups=["app-staff"])), directory_policy())

    user = new_user(profile, username="alice-2")

    assert user.pk is None and not User.objects.exists()
    assert (user.username, user.email, user.first_name, user.is_staff) == (
        "alice-2",
        "s1@example.org",
        "S1",
        True,
    )
    assert not user.has_usable_password()
    assert new_user(profile, username="x").password != user.password


def local(username: str, email: str, linked_to: str | None = None):
    user = User.objects.create_user(username=username, email=email)
    if linked_to:
        OIDCIdentity.objects.create(user=user, issuer=linked_to, subject=f"old-{username}")
    return user


@pytest.mark.parametrize(
    ("setup", "verified", "enabled", "links"),
    [
        (lambda: local("a.local", "Alice@Example.org"), True, True, True),
        (lambda: local("a.local", "alice@example.org"), False, True, False),
        (lambda: local("a.local", "alice@example.org"), True, False, False),
        (
            lambda: (local("a1", "alice@example.org"), local("a2", "ALICE@example.org")),
            True,
            True,
            False,
        ),
        (lambda: local("a.local", "alice@example.org", linked_to=ISSUER), True, True, False),
        (lambda: local("a.local", "alice@example.org", linked_to=OTHER_ISSUER), True, True, True),
    ],
    ids=[
        "verified-one-match",
        "unverified",
        "linking-off",
        "two-matches",
        "already-linked-here",
        "linked-elsewhere-only",
    ],
)
def test_sign_in_and_sync_link_the_same_accounts_by_email(
    settings, setup, verified, enabled, links
):
    settings.OIDC_LINK_BY_EMAIL = enabled
    setup()
    record = person("s1", username="alice", email="alice@example.org", email_verified=verified)
    profile = map_claims(claims_of(record), directory_policy())

    signin_link = _link_by_email(ISSUER, profile)
    report = sync([record])

    assert (signin_link is not None) is links
    assert report.linked == (1 if links else 0)
    assert report.created == (0 if links else 1)
    if links:
        assert OIDCIdentity.objects.get(issuer=ISSUER, subject="s1").user == signin_link


def test_two_directory_subjects_with_one_email_link_neither(settings):
    settings.OIDC_LINK_BY_EMAIL = True
    local("a.local", "alice@example.org")

    report = sync(
        [person("s1", email="alice@example.org"), person("s2", email="alice@example.org")]
    )

    assert (report.linked, report.created) == (0, 2)


def crowd(base: str, count: int) -> None:
    names = [base] + [f"{base}-{n}" for n in range(2, count + 1)]
    User.objects.bulk_create([User(username=name) for name in names])


def test_crowded_username_at_sign_in_is_found_by_exact_look_ups():
    crowd("kim", 30)

    with CaptureQueriesContext(connection) as queries:
        name = signin_username("kim")

    assert name == "kim-31"
    assert len(queries) == 3  # the name, 20 suffixes, then a window of 100
    assert not any("LIKE" in q["sql"].upper() for q in queries)


def test_crowded_username_in_the_sync_is_found_by_exact_look_ups():
    crowd("kim", 30)

    with CaptureQueriesContext(connection) as queries:
        sync([person("s1", username="kim"), person("s2", username="kim")])

    names = set(OIDCIdentity.objects.values_list("user__username", flat=True))
    assert names == {"kim-31", "kim-32"}
    assert not any("LIKE" in q["sql"].upper() for q in queries)


def test_sign_in_and_sync_pick_the_same_free_name():
    crowd("sam", 3)
    User.objects.filter(username="sam-2").delete()

    assert signin_username("sam") == "sam-2"
    sync([person("s1", username="sam")])
    assert OIDCIdentity.objects.get(subject="s1").user.username == "sam-2"
