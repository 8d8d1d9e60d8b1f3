"""The directory sources against real directories: scim2-server, a Keycloak-shaped API, files.

The SCIM tests run the whole ``sync_users`` command against a real SCIM 2.0 server
(scim2-server on a loopback port, seeded through its API) into PostgreSQL.
"""

from __future__ import annotations

import json
from importlib import import_module
from io import StringIO

import psycopg
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import OIDCIdentity, OIDCSession
from accounts.sync.locking import LOCK_NAME, advisory_key
from accounts.sync.records import DirectoryUser, SkippedRecord
from accounts.sync.sources.jsonl import JsonLinesSource
from tests.support.sync import (  # noqa: F401 - fixtures
    directory_tokens_fixture,
    keycloak_fixture,
    person,
    scim_server_fixture,
    write_jsonl,
)

ISSUER = "http://op.test"
User = get_user_model()

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("sync_users", *args, stdout=out)
    return out.getvalue()


def groups_of(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def subject_of(username: str) -> str:
    return OIDCIdentity.objects.get(user__username=username).subject


def session_of(user) -> str:
    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store.create()
    OIDCSession.objects.create(session_key=store.session_key, user=user, issuer=ISSUER, subject="s")
    return store.session_key


# --- SCIM ------------------------------------------------------------------------------------


def seed_team(scim, count: int = 10) -> dict[str, str]:
    """``count`` users u0..; u0 and u1 in app-staff, everyone in app-members and 'other'."""
    ids = {f"u{i}": scim.add_user(f"u{i}", externalId=f"idp-{i}") for i in range(count)}
    scim.add_group("app-staff", [ids["u0"], ids["u1"]])
    scim.add_group("app-members", list(ids.values()))
    scim.add_group("other", list(ids.values()))
    return ids


def test_scim_creates_users_with_groups_and_external_id_as_subject(scim_server):
    seed_team(scim_server, 3)
    plain = scim_server.add_user(
        "dana",
        name={"givenName": "Dana", "familyName": "Scully"},
        emails=[{"value": "d@x.org"}, {"value": "dana@example.org", "primary": True}],
    )

    output = run("--source", "scim")

    assert "created" in output and User.objects.count() == 4
    assert subject_of("u0") == "idp-0"
    assert subject_of("dana") == plain  # no externalId: the SCIM id
    dana = User.objects.get(username="dana")
    assert (dana.first_name, dana.last_name, dana.email) == ("Dana", "Scully", "dana@example.org")
    assert groups_of("u0") == {"app-staff", "app-members"}
    assert User.objects.get(username="u0").is_staff


def test_scim_subject_can_be_pinned_to_id(scim_server, settings):
    settings.OIDC_SCIM_SUBJECT_ATTRIBUTE = "id"
    scim_id = scim_server.add_user("erin", externalId="idp-erin")

    run("--source", "scim")

    assert subject_of("erin") == scim_id


def test_scim_changes_update_users_and_groups(scim_server):
    ids = seed_team(scim_server, 4)
    projects = scim_server.add_group("app-projects", [ids["u0"], ids["u1"]])
    run("--source", "scim")
    scim_server.replace_user(
        ids["u2"],
        "u2",
        externalId="idp-2",
        name={"familyName": "Renamed"},
        emails=[{"value": "u2@new.example.org", "primary": True}],
    )
    scim_server.add_group("app-admins", [ids["u3"]])
    scim_server.set_members(projects, "app-projects", [ids["u1"]])

    summary = json.loads(run("--source", "scim", "--json"))

    assert (summary["updated"], summary["unchanged"]) == (3, 1)
    u2 = User.objects.get(username="u2")
    assert (u2.last_name, u2.email) == ("Renamed", "u2@new.example.org")
    assert groups_of("u3") == {"app-members", "app-admins"}
    assert User.objects.get(username="u3").is_superuser
    assert groups_of("u0") == {"app-staff", "app-members"}  # left app-projects
    assert groups_of("u1") == {"app-staff", "app-members", "app-projects"}


def test_scim_deleted_and_inactive_users_are_deactivated_and_signed_out(scim_server, settings):
    settings.OIDC_SYNC_MAX_DEACTIVATE_RATIO = 0.25
    ids = seed_team(scim_server, 10)
    run("--source", "scim")
    key = session_of(User.objects.get(username="u5"))
    scim_server.delete_user(ids["u5"])
    scim_server.replace_user(ids["u6"], "u6", externalId="idp-6", active=False)

    output = run("--source", "scim", "--deactivate-missing")

    assert "deactivated" in output
    assert set(User.objects.filter(is_active=False).values_list("username", flat=True)) == {
        "u5",
        "u6",
    }
    assert not OIDCSession.objects.filter(session_key=key).exists()
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    assert not store().exists(key)


def test_scim_dry_run_prints_the_plan_and_writes_nothing(scim_server):
    seed_team(scim_server, 3)

    output = run("--source", "scim", "--dry-run")

    assert "dry run, nothing written" in output
    assert "create u0 (sub=idp-0)" in output
    assert not User.objects.exists() and not OIDCIdentity.objects.exists()


def test_scim_empty_answer_trips_the_safety_stop(scim_server):
    ids = seed_team(scim_server, 10)
    run("--source", "scim")
    for scim_id in ids.values():
        scim_server.delete_user(scim_id)

    with pytest.raises(CommandError, match="refusing to deactivate 10 of 10 active users"):
        run("--source", "scim", "--deactivate-missing")

    assert User.objects.filter(is_active=True).count() == 10


def test_scim_malformed_user_is_skipped_and_reported(scim_server):
    seed_team(scim_server, 2)
    bad = scim_server.add_user("mallory", emails=[{"value": "not an email"}])

    output = run("--source", "scim")

    assert User.objects.count() == 2
    assert f"User {bad}: invalid SCIM User (emails.0.value)" in output


def test_scim_server_failing_half_way_keeps_batches_and_rerun_completes(scim_server):
    seed_team(scim_server, 12)
    scim_server.middleware.fail_after = 2  # two pages of 5 users, then 503

    with pytest.raises(CommandError, match=r"after 10 records: .*answered 503"):
        run("--source", "scim", "--batch-size", "5")

    assert User.objects.count() == 10
    scim_server.middleware.fail_after = None
    output = run("--source", "scim", "--batch-size", "5", "--json")
    assert '"created": 2' in output and '"unchanged": 10' in output


def test_scim_run_is_refused_while_another_holds_the_lock(scim_server):
    seed_team(scim_server, 2)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [advisory_key(LOCK_NAME)])
        with pytest.raises(CommandError, match="another sync_users run is in progress"):
            run("--source", "scim")
    assert not User.objects.exists()


def test_scim_refused_token_fails_with_the_reason(scim_server, settings):
    settings.OIDC_SCIM_TOKEN = "wrong"

    with pytest.raises(CommandError, match="the SCIM server answered 401: Authorization failure"):
        run("--source", "scim")


def test_scim_without_static_token_uses_client_credentials_and_renews_it(
    scim_server, directory_tokens, op, settings
):
    settings.OIDC_SCIM_TOKEN = ""
    settings.OIDC_SYNC_SCOPE = "directory"
    directory_tokens.add(scim_server.seed_token)
    scim_server.app.bearer_tokens = directory_tokens
    seed_team(scim_server, 6)
    scim_server.middleware.revoke_after = 1  # the token "expires" after one page of users

    run("--source", "scim", "--batch-size", "2")

    assert User.objects.count() == 6
    grants = [form for form in op.forms if form.get("grant_type") == "client_credentials"]
    assert len(grants) == 2 and grants[0]["scope"] == "directory"
    assert grants[0]["_authorization"].startswith("Basic ")


# --- Keycloak --------------------------------------------------------------------------------


def test_keycloak_users_groups_and_paths_are_mapped(keycloak, op):
    alice = keycloak.add_user("alice", firstName="Alice", lastName="Liddell")
    bob = keycloak.add_user("bob", enabled=False)
    eng = keycloak.add_group("app-eng", [alice])
    keycloak.add_group("app-backend", [alice, bob], parent=eng)
    keycloak.add_group("sales", [bob])

    run("--source", "keycloak", "--batch-size", "1")

    user = User.objects.get(username="alice")
    assert subject_of("alice") == alice  # Keycloak's user id is the sub
    assert (user.first_name, user.last_name, user.email) == (
        "Alice",
        "Liddell",
        "alice@example.org",
    )
    assert groups_of("alice") == {"app-eng", "app-eng/app-backend"}
    assert not User.objects.filter(username="bob").exists()  # disabled: never created
    assert not [
        path for path in keycloak.requests if path.endswith("/groups") and "/users/" in path
    ]


def test_keycloak_disabled_user_is_deactivated_and_service_accounts_skipped(keycloak, settings):
    settings.OIDC_SYNC_MAX_DEACTIVATE_RATIO = 0.5
    ids = [keycloak.add_user(f"k{i}") for i in range(4)]
    keycloak.add_user("service-account-django-site", serviceAccountClientLink="c0ffee")
    run("--source", "keycloak")
    keycloak.users[1]["enabled"] = False

    output = run("--source", "keycloak", "--deactivate-missing", "--json")

    assert not User.objects.get(username="k1").is_active
    assert '"deactivated": 1' in output and '"service account": 1' in output
    assert not OIDCIdentity.objects.filter(subject=keycloak.users[4]["id"]).exists()
    assert len(ids) == 4


def test_keycloak_malformed_user_is_skipped(keycloak):
    keycloak.add_user("good")
    keycloak.add_user("broken", enabled="yes")
    keycloak.users.append({"username": "no-id", "enabled": True})

    output = run("--source", "keycloak", "--json")

    assert User.objects.count() == 1
    assert '"active is not a boolean": 1' in output and '"missing sub": 1' in output


def test_keycloak_token_is_renewed_once_when_it_expires(keycloak, op):
    for i in range(4):
        keycloak.add_user(f"k{i}")
    keycloak.expire_after = 3  # after the count and a first page, the token is refused

    run("--source", "keycloak", "--batch-size", "2")

    assert User.objects.count() == 4
    assert len([f for f in op.forms if f.get("grant_type") == "client_credentials"]) == 2


def test_keycloak_unreachable_fails_with_the_reason(keycloak, settings):
    settings.OIDC_KEYCLOAK_URL = "http://127.0.0.1:9"

    with pytest.raises(CommandError, match="Keycloak request failed: GET /groups"):
        run("--source", "keycloak")


# --- JSON lines -------------------------------------------------------------------------------


def test_file_source_yields_users_and_skips_broken_lines_by_number(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl", [person("a"), "{not json", "", person("b", active=False)]
    )

    records = list(JsonLinesSource(path).records())

    assert [type(r) for r in records] == [DirectoryUser, SkippedRecord, DirectoryUser]
    assert records[1] == SkippedRecord(ref="line 2", reason="invalid JSON")
    assert records[2].active is False and records[2].claims["preferred_username"] == "b"
