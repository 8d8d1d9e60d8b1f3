"""Nothing readable at rest: the tokens of a session are sealed in the database.

These run on the suite's database (PostgreSQL, or SQLite with ``TEST_DATABASE=sqlite``);
``test_the_same_checks_pass_on_the_other_database`` runs this file again on the other one.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from accounts.models import AuditEvent, OIDCSession
from accounts.security import crypto
from accounts.sessions import token_store
from tests.support.at_rest import find_secrets
from tests.support.fakeop import CLIENT_SECRET
from tests.support.scripted_signin import callback_url, start
from tests.support.sessions import expire_access_token, is_signed_in

ROOT = Path(__file__).resolve().parents[2]
OLD_KEY = "the-old-secret-key-" + "x" * 40
NEW_KEY = "the-new-secret-key-" + "y" * 40


def row_of(client: Client) -> OIDCSession:
    return OIDCSession.objects.get(session_key=client.session.session_key)


def sign_in(client: Client, op, *, code: str = "c", **tokens) -> None:
    """The whole sign-in flow against the scripted provider, with these tokens."""
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce), **tokens)
    op.answer_userinfo({"sub": "sub-alice"})
    response = client.get(callback_url(state, code=code, op=op))
    assert response.status_code == 302, response.content[:500]
    assert is_signed_in(client)


def sign_in_and_refresh(client: Client, op) -> list[str]:
    """A sign-in and a refresh with distinctive tokens; return every token issued."""
    issued = ["AT-signin-7f3a9c", "RT-signin-2b8e41", "CODE-signin-0a9d55"]
    sign_in(
        client, op, access_token=issued[0], refresh_token=issued[1], code=issued[2], expires_in=300
    )
    assert op.forms[-1]["code"] == issued[2]
    issued.append(token_store.read(row_of(client), "id_token"))
    expire_access_token(row_of(client), client.session)
    refreshed_id = op.id_token()
    op.answer_tokens(
        refreshed_id, access_token="AT-refresh-91d0e2", refresh_token="RT-refresh-c4417b"
    )
    assert client.get("/members/").status_code == 200
    assert op.forms[-1]["grant_type"] == "refresh_token"
    return [*issued, refreshed_id, "AT-refresh-91d0e2", "RT-refresh-c4417b"]


@pytest.mark.django_db
def test_the_dump_helper_finds_a_token_hidden_in_base64_or_a_signed_session():
    """The check below is only as good as this: it must see through the usual encodings."""
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session["oidc_access_token"] = "AT-hidden-5e5e5e"
    session.create()
    hidden = base64.b64encode(b"RT-hidden-6f6f6f").decode()
    assert find_secrets(["AT-hidden-5e5e5e", "RT-hidden-6f6f6f"], texts=[hidden]) == {
        "RT-hidden-6f6f6f"
    }
    assert find_secrets(["AT-hidden-5e5e5e"]) == {"AT-hidden-5e5e5e"}


@pytest.mark.django_db
def test_no_issued_token_is_in_a_dump_of_the_database_after_a_sign_in_and_a_refresh(
    client, op, caplog
):
    caplog.set_level("DEBUG")
    expected = "sqlite" if os.environ.get("TEST_DATABASE") == "sqlite" else "postgresql"
    assert connection.vendor == expected

    issued = sign_in_and_refresh(client, op)

    assert find_secrets([*issued, CLIENT_SECRET]) == set()
    # ... while the site can still read them, and they are the refreshed ones.
    row = row_of(client)
    assert token_store.read(row, "refresh_token") == "RT-refresh-c4417b"
    assert all(crypto.is_encrypted(getattr(row, f)) for f in token_store.TOKEN_FIELDS)
    # Nor in the cache or the logs.
    from django.core.cache import cache

    cached = b"".join(getattr(cache, "_cache", {}).values())
    assert [t for t in issued if t.encode() in cached] == []
    assert [t for t in issued if t in caplog.text] == []


@pytest.mark.django_db
def test_after_rotating_secret_key_the_session_still_refreshes(client, op, settings):
    settings.SECRET_KEY = OLD_KEY
    sign_in(client, op, refresh_token="RT-old-key", expires_in=300)
    old_id = crypto.key_ids(token_store.PURPOSE)[0]
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    new_id = crypto.key_ids(token_store.PURPOSE)[0]
    assert row_of(client).refresh_token.split("$")[1] == old_id
    expire_access_token(row_of(client), client.session)
    op.answer_tokens(op.id_token(), access_token="AT-new", refresh_token=None)

    response = client.get("/members/")

    assert response.status_code == 200
    assert op.forms[-1]["refresh_token"] == "RT-old-key"  # read under the fallback key
    row = row_of(client)
    for field in token_store.TOKEN_FIELDS:  # all written again under the current key
        assert getattr(row, field).split("$")[1] == new_id, field
    assert token_store.read(row, "refresh_token") == "RT-old-key"  # kept, re-encrypted
    assert client.session[token_store.SESSION_KEY_ID] == new_id


def _keys_gone(client: Client, settings) -> None:
    """Signed in under the old key; SECRET_KEY rotates with the old key as a fallback and a
    page is served (Django re-signs the session under the new key and cycles its key: the
    row follows); then the old key is dropped: the session reads, its tokens do not."""
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    key_before = client.session.session_key
    assert client.get("/members/").status_code == 200  # fresh token: no refresh, no re-seal
    assert client.session.session_key != key_before
    assert row_of(client).refresh_token.split("$")[1] != token_store.current_key_id()
    settings.SECRET_KEY_FALLBACKS = []


@pytest.mark.django_db
def test_with_both_keys_gone_the_next_page_ends_the_session_with_a_message(client, op, settings):
    settings.SECRET_KEY = OLD_KEY
    sign_in(client, op)
    _keys_gone(client, settings)

    response = client.get("/members/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/signin/")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "could not be continued after a change of the site" in page.content.decode()
    assert not is_signed_in(client)
    assert OIDCSession.objects.count() == 0
    assert op.count("/token") == 1  # the sign-in only: nothing was sent to the provider
    row = AuditEvent.objects.get(event="sign_out")
    assert (row.reason, row.user.username) == ("tokens_unreadable", "alice")


@pytest.mark.django_db
def test_with_both_keys_gone_an_api_call_gets_401_json_in_words(client, op, settings):
    settings.SECRET_KEY = OLD_KEY
    sign_in(client, op)
    _keys_gone(client, settings)

    response = client.get("/api/me/")

    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "session_ended"
    assert body["reason"] == "unreadable"
    assert "sign in again" in body["message"]


@pytest.mark.django_db
def test_unreadable_tokens_found_at_refresh_end_the_session_with_a_message(client, op, settings):
    """A session from before the key id was kept in it: caught when the refresh reads."""
    settings.SECRET_KEY = OLD_KEY
    sign_in(client, op)
    _keys_gone(client, settings)
    session = client.session
    del session[token_store.SESSION_KEY_ID]
    session.save()
    expire_access_token(row_of(client), client.session)

    response = client.get("/members/", follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[0][0].startswith("/accounts/signin/")
    assert "could not be continued after a change of the site" in response.content.decode()
    assert OIDCSession.objects.count() == 0
    assert op.count("/token") == 1  # no refresh request was made
    row = AuditEvent.objects.get(event="refresh")
    assert (row.outcome, row.reason) == ("failure", "tokens_unreadable")


@pytest.mark.django_db
def test_sign_out_with_unreadable_tokens_is_local_and_says_so(client, op, settings):
    settings.SECRET_KEY = OLD_KEY
    sign_in(client, op)
    _keys_gone(client, settings)
    session = client.session
    del session[token_store.SESSION_KEY_ID]
    session.save()

    response = client.post("/oidc/logout/", follow=True)

    assert response.status_code == 200
    assert "still open" in response.content.decode()  # no id_token_hint: local sign-out
    assert OIDCSession.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_rows_and_reverses():
    executor = MigrationExecutor(connection)
    before, after = (
        [("accounts", "0002_session_details_and_audit")],
        [("accounts", "0003_encrypt_session_tokens")],
    )
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    user = get_user_model().objects.create(username="legacy")
    OldSession = old_apps.get_model("accounts", "OIDCSession")
    OldSession.objects.create(
        session_key="k1", user_id=user.pk, issuer="http://op.test", subject="s",
        id_token="ID-clear", access_token="AT-clear", refresh_token="RT-clear",
    )  # fmt: skip
    OldSession.objects.create(
        session_key="k2", user_id=user.pk, issuer="http://op.test", subject="s2"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    # The model as of that migration: later migrations may add columns to the table.
    NewSession = executor.loader.project_state(after).apps.get_model("accounts", "OIDCSession")

    row = NewSession.objects.get(session_key="k1")
    assert find_secrets(["ID-clear", "AT-clear", "RT-clear"]) == set()
    assert token_store.read(row, "refresh_token") == "RT-clear"
    assert NewSession.objects.get(session_key="k2").refresh_token == ""

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    assert OldSession.objects.get(session_key="k1").refresh_token == "RT-clear"
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_same_checks_pass_on_the_other_database():
    """This file again, in a fresh process, on SQLite (or on PostgreSQL when run on SQLite)."""
    on_sqlite = os.environ.get("TEST_DATABASE") == "sqlite"
    env = {**os.environ, "TEST_DATABASE": "postgres" if on_sqlite else "sqlite"}
    env.pop("PYTEST_XDIST_WORKER", None)
    command = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:xdist", "-p",
               "no:cacheprovider", "-k", "not other_database"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "9 passed, 1 deselected" in result.stdout, result.stdout[-2000:]


@pytest.mark.django_db
def test_a_request_with_a_fresh_token_decrypts_nothing(client, op, monkeypatch):
    sign_in(client, op, expires_in=300)

    def no_decryption(*args, **kwargs):
        raise AssertionError("decrypted on the hot path")

    monkeypatch.setattr(crypto, "decrypt", no_decryption)
    assert client.get("/members/").status_code == 200
    assert client.get("/api/me/").status_code == 200
