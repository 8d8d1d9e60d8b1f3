"""Sign-in goes on while a sync writes: a conflict re-plans the batch instead of aborting the run.

The hook is ``accounts.sync.writes.plan_apply``: the tests wrap it so that a sign-in (or a
local account) takes a subject or a username after the batch was planned and before it is
written, which is when a real sign-in can collide with the run.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection

from accounts.models import OIDCIdentity
from accounts.sync import writes
from accounts.sync.context import directory_policy
from accounts.sync.engine import directory_sync
from accounts.sync.errors import SyncError
from accounts.users.identities import resolve_user
from tests.support.sync import ListSource, person

ISSUER = "http://op.test"
User = get_user_model()


def sync(items: list[dict[str, Any]], **options: Any):
    return directory_sync(source=ListSource(items), issuer=ISSUER, **options)


def claims_of(record: dict[str, Any]) -> dict[str, Any]:
    """What the provider would put in the ID token of the person a directory record describes."""
    return {key: value for key, value in record.items() if key != "active"}


def before_writing(monkeypatch, action) -> list[int]:
    """Run ``action(plan)`` before the first write only; return the creates of every write."""
    real = writes.plan_apply
    creates: list[int] = []

    def hooked(plan, ctx) -> None:
        creates.append(len(plan.creates))
        if len(creates) == 1:
            action(plan)
        real(plan, ctx)

    monkeypatch.setattr(writes, "plan_apply", hooked)
    return creates


def sign_in_elsewhere(claims: dict[str, Any]) -> None:
    """A first sign-in in another thread, on its own connection, committed before we go on."""
    errors: list[Exception] = []

    def run() -> None:
        try:
            resolve_user(issuer=ISSUER, claims=claims, policy=directory_policy())
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_identity_created_by_a_sign_in_between_plan_and_write_is_found_on_retry(monkeypatch):
    people = [person("s1", username="alice"), person("s2", username="bob"), person("s3")]
    creates = before_writing(monkeypatch, lambda plan: sign_in_elsewhere(claims_of(people[1])))

    report = sync(people, batch_size=10)

    assert creates == [3, 2]  # the batch was planned again: bob is known now
    assert (report.created, report.updated, report.unchanged, report.linked) == (2, 0, 1, 0)
    assert report.error is None and report.plan["created"] == [
        "create alice (sub=s1)",
        "create s3 (sub=s3)",
    ]
    assert OIDCIdentity.objects.count() == 3 and User.objects.count() == 3
    bob = OIDCIdentity.objects.get(subject="s2").user
    assert bob.username == "bob" and bob.oidc_identities.count() == 1
    assert set(bob.groups.values_list("name", flat=True)) == {"app-members"}
    assert sync(people).unchanged == 3  # nothing was left half-written


@pytest.mark.django_db
def test_username_taken_by_a_sign_in_between_plan_and_write_gets_a_suffix(monkeypatch):
    stranger = claims_of(person("other-sub", username="alice", email="a@elsewhere.example"))
    creates = before_writing(monkeypatch, lambda plan: resolve_user(issuer=ISSUER, claims=stranger))

    report = sync([person("s1", username="alice"), person("s2", username="bob")])

    assert creates == [2, 2]
    assert (report.created, report.unchanged) == (2, 0)
    owners = {i.subject: i.user.username for i in OIDCIdentity.objects.select_related("user")}
    assert owners == {"other-sub": "alice", "s1": "alice-2", "s2": "bob"}
    assert User.objects.get(username="alice-2").groups.filter(name="app-members").exists()


@pytest.mark.django_db(transaction=True)
def test_groups_created_by_a_rolled_back_write_are_created_again(monkeypatch):
    real = writes._apply_groups
    failures: list[str] = []

    def conflict_after_groups(plan, user_ids, ctx) -> None:
        real(plan, user_ids, ctx)  # creates "app-new" and caches its id in the run
        if not failures:
            failures.append("once")
            raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(writes, "_apply_groups", conflict_after_groups)
    people = [person("s1", groups=["app-new"]), person("s2", groups=["app-new", "app-b"])]

    report = sync(people)

    assert failures == ["once"] and report.created == 2
    assert set(Group.objects.values_list("name", flat=True)) == {"app-new", "app-b"}
    assert set(User.objects.get(username="s2").groups.values_list("name", flat=True)) == {
        "app-new",
        "app-b",
    }


@pytest.mark.django_db
def test_a_second_conflict_in_a_row_stops_the_run_with_its_report(monkeypatch):
    real = writes.plan_apply

    def always_taken(plan, ctx) -> None:
        if plan.creates:
            User.objects.create(username=plan.creates[-1].username)
        real(plan, ctx)

    monkeypatch.setattr(writes, "plan_apply", always_taken)

    with pytest.raises(SyncError, match="database error: IntegrityError") as caught:
        sync([person("s1"), person("s2"), person("s3")], batch_size=2)

    assert caught.value.report.created == 0
    assert not OIDCIdentity.objects.exists()
