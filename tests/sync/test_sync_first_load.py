"""A first load plans without look-ups; the unique indexes catch what existed after all.

An issuer with no identity yet cannot have a known subject, and the usernames a run hands
out are kept for the whole run, so a first load reads neither identities nor usernames per
batch. A username (or subject) that existed before the run makes the write fail on its
unique index: that batch and the rest of the run are then planned with the look-ups.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import OIDCIdentity
from accounts.sync import writes
from accounts.sync.engine import directory_sync
from accounts.sync.statistics import FIRST_ANALYZE_AT, StatisticsKeeper
from tests.support.sync import ListSource, person

ISSUER = "http://op.test"
User = get_user_model()

pytestmark = pytest.mark.django_db


def sync(items, **options):
    return directory_sync(source=ListSource(items), issuer=ISSUER, **options)


def lookups(queries) -> list[str]:
    """The per-batch reads of identities by subject and of users by username."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith("SELECT")
        and ('"accounts_oidcidentity"."subject" IN' in q["sql"] or '"username" IN' in q["sql"])
    ]


def count_writes(monkeypatch) -> list[int]:
    """Wrap ``plan_apply``: the number of users each write (or attempt) creates."""
    real = writes.plan_apply
    attempts: list[int] = []

    def counted(plan, ctx) -> None:
        attempts.append(len(plan.creates))
        real(plan, ctx)

    monkeypatch.setattr(writes, "plan_apply", counted)
    return attempts


def test_first_load_reads_no_identities_nor_usernames_and_keeps_every_rule(monkeypatch):
    attempts = count_writes(monkeypatch)
    people = [person(f"s{i}", username="kim" if i % 2 else f"p{i}") for i in range(6)]
    people[0]["groups"] = ["app-members", "app-staff", "elsewhere"]

    with CaptureQueriesContext(connection) as queries:
        report = sync(people, batch_size=2)

    assert lookups(queries) == []
    assert attempts == [2, 2, 2]  # no batch was refused and planned again
    assert report.created == 6 and report.error is None
    owners = {i.subject: i.user.username for i in OIDCIdentity.objects.select_related("user")}
    assert owners == {"s0": "p0", "s1": "kim", "s2": "p2", "s3": "kim-2", "s4": "p4", "s5": "kim-3"}
    identity = OIDCIdentity.objects.select_related("user").get(subject="s0")
    assert (identity.provider, identity.email, identity.email_verified) == (
        "default",
        "p0@example.org",
        True,
    )
    assert identity.last_synced_at is not None and not identity.user.has_usable_password()
    groups = set(identity.user.groups.values_list("name", flat=True))
    assert groups == {"app-members", "app-staff"} and identity.user.is_staff  # not "elsewhere"


def test_a_username_held_before_the_first_load_gets_a_suffix_and_look_ups_resume(monkeypatch):
    User.objects.create_user(username="sam")
    attempts = count_writes(monkeypatch)
    people = [
        *(person("s1", username="alice"), person("s2", username="bob")),
        *(person("s3", username="sam"), person("s4", username="carl")),
        *(person("s5", username="dan"), person("s6", username="sam")),
    ]

    with CaptureQueriesContext(connection) as queries:
        report = sync(people, batch_size=2)

    assert attempts == [2, 2, 2, 2]  # the second batch was refused once, then written
    # Its retry and the last batch, each: identities, usernames, the suffixes of "sam".
    assert len(lookups(queries)) == 2 * 3
    assert (report.created, report.updated, report.error) == (6, 0, None)
    owners = {i.subject: i.user.username for i in OIDCIdentity.objects.select_related("user")}
    assert owners == {
        "s1": "alice",
        "s2": "bob",
        "s3": "sam-2",
        "s4": "carl",
        "s5": "dan",
        "s6": "sam-3",
    }
    assert User.objects.filter(username="sam", oidc_identities__isnull=True).exists()
    assert sync(people).unchanged == 6  # nothing half-written


def test_an_issuer_with_identities_is_looked_up_from_the_first_batch(monkeypatch):
    sync([person("s1", username="alice")])
    attempts = count_writes(monkeypatch)

    with CaptureQueriesContext(connection) as queries:
        report = sync([person("s1", username="alice", family_name="New"), person("s2")])

    assert attempts == [1]  # alice was known when planned: no refused write
    assert len(lookups(queries)) == 2
    assert (report.created, report.updated) == (1, 1)
    assert User.objects.get(username="alice").last_name == "New"


def test_dry_run_of_a_first_load_still_finds_taken_usernames():
    User.objects.create_user(username="sam")

    report = sync([person("s1", username="sam")], dry_run=True)

    assert report.plan["created"] == ["create sam-2 (sub=s1)"]
    assert not OIDCIdentity.objects.exists()


def test_first_load_links_by_verified_email(settings):
    settings.OIDC_LINK_BY_EMAIL = True
    local = User.objects.create_user(username="a.local", email="alice@example.org")

    report = sync([person("s1", username="alice"), person("s2", username="bob")])

    assert (report.linked, report.created) == (1, 1)
    linked = OIDCIdentity.objects.get(subject="s1")
    assert linked.user == local and linked.email_verified


def test_identity_email_verified_follows_the_directory():
    sync([person("s1", username="alice")])

    report = sync([person("s1", username="alice", email_verified=False)])

    assert report.updated == 1 and report.plan["updated"] == ["update alice (sub=s1): email"]
    assert OIDCIdentity.objects.get(subject="s1").email_verified is False
    assert sync([person("s1", username="alice", email_verified=False)]).unchanged == 1


def test_a_first_load_analyses_once_at_its_end():
    keeper = StatisticsKeeper()

    with CaptureQueriesContext(connection) as queries:
        for _ in range(8):
            keeper.created_rows(FIRST_ANALYZE_AT // 2, reads=False)
        keeper.run_ended()
        keeper.run_ended()

    assert len([q for q in queries if q["sql"].startswith("ANALYZE")]) == 1
