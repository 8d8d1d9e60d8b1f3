"""The commands with several providers: oidc_check for each, --provider on the others."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import OIDCIdentity, OIDCSession
from tests.support.providers import B_CLIENT_ID, sign_in_at_b
from tests.support.scripted_signin import sign_in
from tests.support.sync import person, write_jsonl

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, no_color=True)
    return out.getvalue()


def setting(output: str, name: str) -> str:
    """The value printed for a provider setting (the indented rows under "Settings:")."""
    rows = [row.split(None, 1) for row in output.splitlines() if row.startswith("    ")]
    return next(value.strip() for key, value in rows if key == name)


def test_oidc_check_checks_every_provider_and_names_the_failing_one(op, op_b):
    op_b.keys = []  # B publishes no usable key

    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("oidc_check", stdout=out, no_color=True)

    output = out.getvalue()
    assert "Provider default (OIDC_OP_* settings):" in output
    assert "Provider b (OIDC_PROVIDERS):" in output
    assert setting(output, "client_secret") == "******** (set)"
    assert "b-secret" not in output
    assert str(caught.value).startswith("oidc_check: 1 of ")
    assert str(caught.value).endswith("checks failed: b: jwks RS256")


def test_oidc_check_one_provider(op, op_b):
    output = run("oidc_check", "--provider", "b")
    assert "Provider default (" not in output
    assert setting(output, "client_id") == B_CLIENT_ID
    with pytest.raises(CommandError, match=r"No provider 'nope'; the providers are: default, b\."):
        run("oidc_check", "--provider", "nope")


def test_end_sessions_of_one_provider_leaves_the_others(op, op_b):
    at_a, at_b = Client(), Client()
    sign_in(at_a, op)
    sign_in_at_b(at_b, op_b)

    assert run("end_sessions", "--provider", "b") == "Ended 1 session signed in at b.\n"

    assert list(OIDCSession.objects.values_list("provider", flat=True)) == ["default"]
    assert at_a.get("/api/me/").status_code == 200
    assert at_b.get("/api/me/").status_code == 401


def test_end_sessions_finds_a_subject_at_a_provider(op, op_b):
    at_b = Client()
    sign_in_at_b(at_b, op_b)
    at_a = Client()
    sign_in(at_a, op)  # the same sub at A: another user

    output = run("end_sessions", "--provider", "b", "--subject", "sub-alice")

    assert output.startswith("Ended 1 session of ")
    assert at_b.get("/api/me/").status_code == 401
    assert at_a.get("/api/me/").status_code == 200


def test_sync_users_for_a_provider_uses_its_issuer_and_claim_mapping(op, op_b, settings, tmp_path):
    settings.OIDC_PROVIDERS = {
        "b": {**settings.OIDC_PROVIDERS["b"], "groups_allowlist": ["b-team"]},
    }
    record = person("s1")
    record["groups"] = ["b-team", "other"]
    directory = write_jsonl(tmp_path / "b.jsonl", [record])

    output = run("sync_users", "--source", "file", "--file", str(directory), "--provider", "b")

    assert f"issuer={op_b.issuer}" in output
    identity = OIDCIdentity.objects.get(subject="s1")
    assert identity.issuer == op_b.issuer
    assert list(identity.user.groups.values_list("name", flat=True)) == ["b-team"]
