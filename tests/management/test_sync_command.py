"""``manage.py sync_users``: options, output (table, JSON, progress bar) and exit status."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.models import OIDCIdentity
from tests.support.sync import person, write_jsonl

User = get_user_model()

pytestmark = pytest.mark.django_db


class Terminal(StringIO):
    """Captured output that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def sync_file(path, *options: str, stdout=None) -> str:
    out = stdout or StringIO()
    call_command("sync_users", "--source", "file", "--file", str(path), *options, stdout=out)
    return out.getvalue()


@pytest.fixture
def directory(tmp_path):
    return write_jsonl(tmp_path / "directory.jsonl", [person(f"s{i}") for i in range(5)])


def test_file_sync_prints_a_summary_table(directory):
    output = sync_file(directory)

    assert "Sync summary: source=file issuer=http://op.test" in output
    assert "  created             5" in output
    assert "  unchanged           0" in output
    assert User.objects.count() == 5


def test_json_summary_is_machine_readable(directory, tmp_path):
    sync_file(directory)
    changed = write_jsonl(
        tmp_path / "changed.jsonl",
        [person("s0", family_name="New"), *[person(f"s{i}") for i in range(1, 5)], "{oops"],
    )

    summary = json.loads(sync_file(changed, "--json"))

    assert summary["created"] == 0 and summary["updated"] == 1 and summary["unchanged"] == 4
    assert summary["skipped"] == 1
    assert summary["skipped_records"] == [{"record": "line 6", "reason": "invalid JSON"}]
    assert summary["error"] is None and summary["dry_run"] is False


def test_dry_run_prints_the_plan_and_writes_nothing(directory):
    output = sync_file(directory, "--dry-run")

    assert "Sync plan (dry run, nothing written)" in output
    assert "create s0 (sub=s0)" in output
    assert not User.objects.exists()


def test_safety_stop_exits_non_zero_with_the_reason_and_the_summary(directory, tmp_path):
    sync_file(directory)
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    out = StringIO()

    with pytest.raises(CommandError, match="refusing to deactivate 5 of 5 active users"):
        sync_file(empty, "--deactivate-missing", stdout=out)

    assert "Stopped: refusing to deactivate" in out.getvalue()
    assert User.objects.filter(is_active=True).count() == 5


def test_force_lets_a_large_deactivation_through(directory, tmp_path):
    sync_file(directory)
    one = write_jsonl(tmp_path / "one.jsonl", [person("s0")])

    summary = json.loads(sync_file(one, "--deactivate-missing", "--force", "--json"))

    assert summary["deactivated"] == 4


def test_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match=r"cannot read .*nope\.jsonl: No such file"):
        sync_file(tmp_path / "nope.jsonl")


def test_file_source_needs_a_path():
    with pytest.raises(CommandError, match="--source file needs --file PATH"):
        call_command("sync_users", "--source", "file", stdout=StringIO())


def test_scim_source_needs_a_url(settings):
    settings.OIDC_SCIM_URL = ""

    with pytest.raises(CommandError, match="needs OIDC_SCIM_URL"):
        call_command("sync_users", "--source", "scim", stdout=StringIO())


def test_keycloak_source_needs_url_and_realm(settings):
    settings.OIDC_KEYCLOAK_URL = ""

    with pytest.raises(CommandError, match="needs OIDC_KEYCLOAK_URL and OIDC_KEYCLOAK_REALM"):
        call_command("sync_users", "--source", "keycloak", stdout=StringIO())


def test_no_issuer_is_a_command_error(directory, settings):
    settings.OIDC_OP_ISSUER = ""

    with pytest.raises(CommandError, match="no issuer"):
        sync_file(directory)


def test_issuer_option_keys_identities_by_that_issuer(directory):
    sync_file(directory, "--issuer", "https://other.example")

    assert set(OIDCIdentity.objects.values_list("issuer", flat=True)) == {"https://other.example"}


def test_progress_bar_is_drawn_only_on_a_terminal(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [person(f"s{i}") for i in range(6)])

    on_terminal = sync_file(path, "--batch-size", "2", stdout=Terminal())
    in_a_pipe = sync_file(path, "--batch-size", "2", "--issuer", "https://pipe.example")

    assert "\r[##########....................] 2/6" in on_terminal
    assert "\r[##############################] 6/6" in on_terminal
    assert "[#" not in in_a_pipe and "\r" not in in_a_pipe


def test_json_output_has_no_progress_bar_even_on_a_terminal(directory):
    output = sync_file(directory, "--json", stdout=Terminal())

    assert json.loads(output)["created"] == 5


def test_verbose_run_lists_examples_of_each_action(directory):
    out = StringIO()
    call_command(
        "sync_users", "--source", "file", "--file", str(directory), verbosity=2, stdout=out
    )

    assert "created (first 5):" in out.getvalue()
    assert "create s3 (sub=s3)" in out.getvalue()
