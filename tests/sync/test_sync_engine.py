"""The sync engine on PostgreSQL: creates, updates, groups, deactivation, safety, resumption."""

from __future__ import annotations

import threading
from importlib import import_module

import psycopg
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent, OIDCIdentity, OIDCSession
from accounts.sessions import lifecycle as sessions
from accounts.sync.engine import directory_sync
from accounts.sync.errors import SourceError, SyncAborted, SyncLocked
from accounts.sync.locking import LOCK_NAME, advisory_key, sync_lock
from accounts.sync.statistics import FIRST_ANALYZE_AT, StatisticsKeeper
from tests.support.sync import ListSource, person

ISSUER = "http://op.test"
User = get_user_model()

pytestmark = pytest.mark.django_db


def sync(items, **options):
    return directory_sync(source=ListSource(items), issuer=ISSUER, **options)


def groups_of(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def signed_in_session(user) -> str:
    """A real database session plus its OIDC row, as sign-in leaves them."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store.create()
    OIDCSession.objects.create(
        session_key=store.session_key, user=user, issuer=ISSUER, subject="x", sid="s"
    )
    return store.session_key


def test_first_run_creates_users_identities_and_managed_groups():
    report = sync([person("s1", username="alice", groups=["app-staff", "other"]), person("s2")])

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    alice = User.objects.get(username="alice")
    assert alice.email == "alice@example.org" and alice.first_name == "Alice"
    assert alice.is_staff and not alice.is_superuser
    assert not alice.has_usable_password()
    identity = OIDCIdentity.objects.get(issuer=ISSUER, subject="s1")
    assert identity.user == alice and identity.last_synced_at is not None
    assert groups_of("alice") == {"app-staff"}  # "other" is outside the group policy


def test_second_run_without_changes_writes_nothing():
    people = [person(f"s{i}") for i in range(30)]
    sync(people)

    with CaptureQueriesContext(connection) as queries:
        report = sync(people)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 30)
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    # The run's summary in the audit log is its only write.
    assert [w for w in writes if "accounts_auditevent" not in w] == []
    assert AuditEvent.objects.filter(event="sync_run").count() == 2


def test_changed_profile_fields_are_updated_and_identity_email_follows():
    sync([person("s1", username="alice")])

    report = sync([person("s1", username="alice", email="ALICE@new.example.org", family_name="L")])

    assert report.updated == 1
    alice = User.objects.get(username="alice")
    assert (alice.email, alice.last_name) == ("alice@new.example.org", "L")
    assert OIDCIdentity.objects.get(subject="s1").email == "alice@new.example.org"


def test_group_changes_add_and_remove_managed_groups_and_keep_local_ones():
    sync([person("s1", username="alice", groups=["app-a", "app-b"])])
    alice = User.objects.get(username="alice")
    alice.groups.add(Group.objects.create(name="local-editors"))

    report = sync([person("s1", username="alice", groups=["app-b", "app-c", "app-admins"])])

    assert report.updated == 1
    assert groups_of("alice") == {"app-b", "app-c", "app-admins", "local-editors"}
    alice.refresh_from_db()
    assert alice.is_superuser and alice.is_staff


def test_usernames_collide_within_a_batch_and_with_existing_accounts():
    User.objects.create_user(username="sam")

    sync([person("s1", username="sam"), person("s2", username="sam"), person("s3", username="sam")])

    owners = {i.subject: i.user.username for i in OIDCIdentity.objects.select_related("user")}
    assert owners == {"s1": "sam-2", "s2": "sam-3", "s3": "sam-4"}


def test_usernames_collide_across_batches():
    sync([person(f"s{i}", username="kim") for i in range(5)], batch_size=2)

    assert sorted(User.objects.values_list("username", flat=True)) == [
        "kim",
        "kim-2",
        "kim-3",
        "kim-4",
        "kim-5",
    ]


def test_deactivate_missing_deactivates_and_ends_their_sessions():
    sync([person(f"s{i}") for i in range(20)])
    gone = User.objects.get(username="s3")
    key = signed_in_session(gone)
    staying_key = signed_in_session(User.objects.get(username="s4"))

    report = sync([person(f"s{i}") for i in range(20) if i != 3], deactivate_missing=True)

    assert report.deactivated == 1 and report.sessions_ended >= 1
    gone.refresh_from_db()
    assert not gone.is_active
    assert not OIDCSession.objects.filter(session_key=key).exists()
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    assert not store().exists(key) and store().exists(staying_key)


def plain_session(user) -> str:
    """A password sign-in's database session: no OIDC row goes with it."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store.create()
    return store.session_key


def test_sessions_of_all_chunks_are_ended_in_one_call(monkeypatch, settings):
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "django.contrib.auth.backends.ModelBackend",
    ]
    sync([person(f"s{i}") for i in range(10)])
    users = {i: User.objects.get(username=f"s{i}") for i in range(10)}
    keys = [signed_in_session(users[1]), signed_in_session(users[6]), plain_session(users[9])]
    kept = plain_session(users[0])
    calls: list[set[int]] = []
    real = sessions._end_plain_sessions

    def recorded(user_ids: set[int]) -> int:
        calls.append(set(user_ids))
        return real(user_ids)

    monkeypatch.setattr(sessions, "_end_plain_sessions", recorded)

    report = sync([person("s0")], deactivate_missing=True, force=True, batch_size=2)

    assert report.deactivated == 9 and report.sessions_ended == 3
    assert calls == [{users[i].pk for i in range(1, 10)}]  # once, not once per chunk of 2
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    assert not any(store().exists(key) for key in keys) and store().exists(kept)


def test_users_disabled_in_directory_are_deactivated_and_never_created():
    sync([person(f"s{i}") for i in range(20)])

    items = [person(f"s{i}", active=i != 7) for i in range(20)] + [person("new", active=False)]
    report = sync(items, deactivate_missing=True)

    assert report.deactivated == 1
    assert not User.objects.get(username="s7").is_active
    assert not User.objects.filter(username="new").exists()
    assert report.skipped_reasons == {"inactive in directory, not created": 1}


def test_without_deactivate_missing_nobody_is_deactivated():
    sync([person(f"s{i}") for i in range(3)])

    report = sync([person("s0"), person("s1", active=False)])

    assert report.deactivated == 0
    assert User.objects.filter(is_active=True).count() == 3


def test_user_back_in_directory_is_reactivated():
    sync([person(f"s{i}") for i in range(20)])
    sync([person(f"s{i}") for i in range(19)], deactivate_missing=True)

    report = sync([person(f"s{i}") for i in range(20)], deactivate_missing=True)

    assert report.reactivated == 1 and User.objects.get(username="s19").is_active


def test_safety_stop_refuses_to_deactivate_too_many_users():
    sync([person(f"s{i}") for i in range(10)])

    with pytest.raises(SyncAborted, match="refusing to deactivate 2 of 10") as caught:
        sync([person(f"s{i}") for i in range(8)], deactivate_missing=True)

    assert caught.value.report.deactivated == 0
    assert User.objects.filter(is_active=True).count() == 10


def test_empty_directory_answer_cannot_lock_everyone_out():
    sync([person(f"s{i}") for i in range(10)])

    with pytest.raises(SyncAborted):
        sync([], deactivate_missing=True)

    assert User.objects.filter(is_active=True).count() == 10


def test_force_overrides_the_safety_stop():
    sync([person(f"s{i}") for i in range(10)])

    report = sync([person("s0")], deactivate_missing=True, force=True)

    assert report.deactivated == 9


def test_ratio_setting_raises_the_threshold(settings):
    settings.OIDC_SYNC_MAX_DEACTIVATE_RATIO = 0.5
    sync([person(f"s{i}") for i in range(10)])

    report = sync([person(f"s{i}") for i in range(6)], deactivate_missing=True)

    assert report.deactivated == 4


def test_local_accounts_without_identity_are_never_deactivated():
    User.objects.create_user(username="breakglass", password="x", is_superuser=True)
    sync([person(f"s{i}") for i in range(10)])

    sync([person(f"s{i}") for i in range(10)], deactivate_missing=True)

    assert User.objects.get(username="breakglass").is_active


def test_malformed_records_are_skipped_and_reported():
    items = [
        person("s1"),
        {"preferred_username": "nosub"},
        person("s2", email="not an email"),
        person("s3", groups="app-a,app-b"),
        person("s4", active="yes"),
        "just a string",
        person("s1", username="again"),
        person("s5"),
    ]

    report = sync(items)

    assert report.created == 2 and report.records == 8
    assert report.skipped_reasons == {
        "missing sub": 1,
        "invalid email": 1,
        "groups is not a list of strings": 1,
        "active is not a boolean": 1,
        "not an object": 1,
        "duplicate sub": 1,
    }
    assert {"record": "item 2", "reason": "missing sub"} in report.skipped_records


@pytest.mark.django_db(transaction=True)
def test_killed_run_keeps_committed_batches_and_rerun_completes():
    people = [person(f"s{i:03}") for i in range(25)]

    with pytest.raises(SourceError, match="after 12 records: ConnectionError") as caught:
        directory_sync(source=ListSource(people, fail_after=12), issuer=ISSUER, batch_size=5)

    assert User.objects.count() == 10  # two whole batches; the third was cut off
    assert caught.value.report.created == 10
    report = directory_sync(source=ListSource(people), issuer=ISSUER, batch_size=5)
    assert (report.created, report.unchanged) == (15, 10)
    assert OIDCIdentity.objects.count() == 25


def test_failed_read_never_deactivates_anyone():
    sync([person(f"s{i}") for i in range(10)])

    with pytest.raises(SourceError):
        directory_sync(
            source=ListSource([person("s0")] * 1 + [person("s1")], fail_after=1),
            issuer=ISSUER,
            deactivate_missing=True,
            force=True,
        )

    assert User.objects.filter(is_active=True).count() == 10


def test_dry_run_writes_nothing_and_reports_the_plan():
    sync([person("s1", username="alice"), person("s2", username="bob")])

    with CaptureQueriesContext(connection) as queries:
        report = sync(
            [person("s1", username="alice", family_name="New"), person("s3", username="carol")],
            dry_run=True,
            deactivate_missing=True,
            force=True,
        )

    assert (report.created, report.updated, report.deactivated) == (1, 1, 1)
    assert report.plan["created"] == ["create carol (sub=s3)"]
    assert report.plan["updated"] == ["update alice (sub=s1): last_name"]
    assert report.plan["deactivated"] == ["deactivate bob (missing from directory)"]
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert not User.objects.filter(username="carol").exists()
    assert User.objects.get(username="bob").is_active


def test_queries_per_batch_do_not_grow_with_the_batch_size():
    people = [person(f"s{i}", groups=["app-a", "app-b"]) for i in range(200)]

    with CaptureQueriesContext(connection) as first:
        sync(people, batch_size=100)
    changed = [person(f"s{i}", groups=["app-b", "app-c"], family_name="X") for i in range(200)]
    with CaptureQueriesContext(connection) as second:
        sync(changed, batch_size=100)
    with CaptureQueriesContext(connection) as third:
        sync(changed, batch_size=100)

    # per batch of 100: at most 10 queries, plus a few per run (lock, first-load check,
    # group ids, audit row)
    assert len(first) <= 2 * 10 + 8
    assert len(second) <= 2 * 10 + 8
    assert len(third) <= 2 * 3 + 8
    assert groups_of("s7") == {"app-b", "app-c"}


def test_link_by_email_attaches_an_existing_local_account(settings):
    settings.OIDC_LINK_BY_EMAIL = True
    local = User.objects.create_user(username="a.local", email="Alice@Example.org")

    report = sync([person("s1", username="alice", email="alice@example.org")])

    assert report.linked == 1 and report.created == 0
    assert OIDCIdentity.objects.get(subject="s1").user == local


def test_unverified_email_is_never_linked(settings):
    settings.OIDC_LINK_BY_EMAIL = True
    User.objects.create_user(username="a.local", email="alice@example.org")

    report = sync([person("s1", username="alice", email_verified=False)])

    assert report.created == 1 and report.linked == 0


def test_second_run_is_refused_while_the_advisory_lock_is_held():
    assert connection.vendor == "postgresql"
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [advisory_key(LOCK_NAME)])

        with pytest.raises(SyncLocked, match="another sync_users run is in progress"):
            sync([person("s1")])
        assert not User.objects.exists()

        other.execute("SELECT pg_advisory_unlock(%s)", [advisory_key(LOCK_NAME)])
        assert sync([person("s1")]).created == 1


def test_runs_in_two_threads_one_is_refused():
    entered, release = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def hold() -> None:
        try:
            with sync_lock():
                entered.set()
                release.wait(10)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(SyncLocked):
            sync([person("s1")])
    finally:
        release.set()
        thread.join()
    assert errors == []


def test_cache_lock_guards_databases_without_advisory_locks(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with sync_lock(), pytest.raises(SyncLocked, match="cache lock"), sync_lock():
        pass
    with sync_lock():  # released
        pass


def test_statistics_are_refreshed_each_time_the_created_rows_double():
    keeper = StatisticsKeeper()

    with CaptureQueriesContext(connection) as queries:
        for _ in range(8):
            keeper.created_rows(FIRST_ANALYZE_AT // 2)

    analyses = [q["sql"] for q in queries if q["sql"].startswith("ANALYZE")]
    assert len(analyses) == 3  # at 1,000, 2,000 and 4,000 rows, not at every batch
    assert '"auth_user"' in analyses[0] and '"accounts_oidcidentity"' in analyses[0]
