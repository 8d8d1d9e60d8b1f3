"""The audit log: each event writes exactly one row with the right fields and no secret."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.audit import log as audit
from accounts.models import AuditEvent, OIDCSession
from accounts.sessions import lifecycle as sessions
from accounts.sync.engine import directory_sync
from tests.sessions.test_backchannel import logout_token
from tests.sessions.test_stepup import answer_step_up, provider_params, sign_in_staff
from tests.support.devidp import free_port
from tests.support.fakeop import CLIENT_SECRET
from tests.support.scripted_signin import callback_url, start
from tests.support.sessions import expire_access_token, signed_in_session
from tests.support.sync import ListSource, person

pytestmark = pytest.mark.django_db

User = get_user_model()
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
FIELDS = ("event", "outcome", "reason", "provider", "issuer", "subject", "username")


def browser() -> Client:
    return Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.7")


def only_row(**filters) -> AuditEvent:
    """The one row of the event (there must be exactly one)."""
    rows = list(AuditEvent.objects.filter(**filters))
    assert len(rows) == 1, [(r.event, r.reason) for r in rows]
    return rows[0]


def fields(row: AuditEvent) -> tuple:
    return tuple(getattr(row, name) for name in FIELDS)


def assert_no_secret(*secrets: str) -> None:
    """No row holds any of these, in any column (the detail JSON included)."""
    for row in AuditEvent.objects.all():
        text = json.dumps({f.name: str(getattr(row, f.attname)) for f in AuditEvent._meta.fields})
        leaked = [s for s in (*secrets, CLIENT_SECRET) if s and s in text]
        assert leaked == [], (row.event, leaked)


def sign_in(client: Client, op, *, code: str = "CODE-1", sid: str = "sid-1", **tokens) -> None:
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce, sid=sid), **tokens)
    op.answer_userinfo({"sub": "sub-alice", "preferred_username": "alice"})
    response = client.get(callback_url(state, code=code, op=op))
    assert response.status_code == 302, response.content[:300]


# --- sign-in --------------------------------------------------------------------------


def test_a_sign_in_writes_one_success_row_with_who_where_and_no_token(op):
    client = browser()
    sign_in(client, op, access_token="AT-a1", refresh_token="RT-a1")

    row = only_row(event=audit.SIGN_IN)
    alice = User.objects.get(username="alice")
    assert fields(row) == ("sign_in", "success", "", "default", op.issuer, "sub-alice", "alice")
    assert row.user == alice
    assert (row.ip_address, row.user_agent) == ("203.0.113.7", BROWSER)
    assert row.count == 1
    assert_no_secret("AT-a1", "RT-a1", "CODE-1")
    session = OIDCSession.objects.get()
    assert (session.ip_address, session.user_agent) == ("203.0.113.7", BROWSER)


def test_a_refused_sign_in_of_a_known_identity_names_the_reason_and_the_user(op):
    sign_in(browser(), op)
    User.objects.filter(username="alice").update(is_active=False)
    AuditEvent.objects.all().delete()
    client = browser()
    state, nonce, _ = start(client)
    op.answer_tokens(op.id_token(nonce=nonce), access_token="AT-r1", refresh_token="RT-r1")
    op.answer_userinfo({"sub": "sub-alice"})

    response = client.get(callback_url(state, code="CODE-r1", op=op))

    assert response.status_code == 403
    row = only_row(event=audit.SIGN_IN)
    assert fields(row) == (
        "sign_in",
        "failure",
        "inactive",
        "default",
        op.issuer,
        "sub-alice",
        "alice",
    )
    assert row.user.username == "alice"
    assert_no_secret("AT-r1", "RT-r1", "CODE-r1")


def test_a_forged_callback_is_counted_not_attributed(op):
    client = browser()
    for _ in range(3):
        assert client.get(callback_url("no-such-state", op=op)).status_code == 400

    row = only_row(event=audit.SIGN_IN)
    assert (row.outcome, row.reason, row.user, row.count) == ("failure", "unknown_state", None, 3)


# --- sign-out -------------------------------------------------------------------------


def test_rp_initiated_sign_out_writes_one_row(op):
    client = browser()
    sign_in(client, op)

    client.post("/oidc/logout/")

    row = only_row(event=audit.SIGN_OUT)
    assert fields(row) == (
        "sign_out",
        "success",
        "rp_initiated",
        "default",
        op.issuer,
        "sub-alice",
        "alice",
    )
    assert row.ip_address == "203.0.113.7"


def test_back_channel_logout_writes_one_row_naming_the_user(op):
    sign_in(browser(), op, sid="sid-9")
    token = logout_token(op, sid="sid-9")

    assert Client().post("/oidc/backchannel-logout/", {"logout_token": token}).status_code == 200

    row = only_row(event=audit.SIGN_OUT)
    assert fields(row) == (
        "sign_out",
        "success",
        "backchannel",
        "default",
        op.issuer,
        "sub-alice",
        "alice",
    )
    assert row.detail == {"sessions": 1}
    assert_no_secret(token)


def test_refused_back_channel_logouts_are_counted_per_reason(op):
    for _ in range(5):
        assert (
            Client().post("/oidc/backchannel-logout/", {"logout_token": "junk"}).status_code == 400
        )

    row = only_row(event=audit.SIGN_OUT)
    assert (row.outcome, row.count) == ("failure", 5)
    assert row.reason.startswith("backchannel_")


def test_front_channel_logout_writes_one_row(op):
    sign_in(browser(), op, sid="sid-f")

    response = Client().get("/oidc/frontchannel-logout/", {"iss": op.issuer, "sid": "sid-f"})

    assert response.status_code == 200
    row = only_row(event=audit.SIGN_OUT)
    assert (row.reason, row.username, row.detail) == ("frontchannel", "alice", {"sessions": 1})


def test_a_session_past_its_maximum_age_writes_one_expired_row(op, settings):
    settings.OIDC_SESSION_MAX_AGE = 60
    client = browser()
    signed_in_session(client, issuer=op.issuer, started_ago=120)

    assert client.get("/members/").status_code == 302

    row = only_row(event=audit.SIGN_OUT)
    assert fields(row) == (
        "sign_out",
        "success",
        "expired",
        "default",
        op.issuer,
        "sub-alice",
        "alice",
    )


def test_end_sessions_command_writes_one_operator_row_per_user(op):
    signed_in_session(Client(), issuer="http://op.test", sid="s1")
    signed_in_session(Client(), issuer="http://op.test", sid="s2")

    call_command("end_sessions", username="alice", stdout=StringIO())

    row = only_row(event=audit.SIGN_OUT)
    assert (row.reason, row.username, row.detail) == (
        "operator",
        "alice",
        {"by": "end_sessions command"},
    )


def test_the_admin_action_writes_one_operator_row_naming_the_operator(op):
    signed_in_session(Client(), issuer="http://op.test")
    admin_user = User.objects.create_superuser("root", "root@example.com", "pw")
    staff = Client()
    staff.force_login(admin_user, backend="accounts.backends.OIDCBackend")
    alice = User.objects.get(username="alice")

    staff.post("/admin/auth/user/", {"action": "end_sessions", "_selected_action": [alice.pk]})

    row = only_row(event=audit.SIGN_OUT)
    assert (row.reason, row.user, row.detail) == ("operator", alice, {"by": "admin: root"})
    assert OIDCSession.objects.count() == 0


def test_deactivation_by_sync_writes_one_deactivated_row_per_user():
    signed_in_session(Client(), issuer="http://op.test", subject="s-gone", username="gone")
    directory_sync(
        source=ListSource([person(f"s{i}") for i in range(20)]),
        issuer="http://op.test",
        deactivate_missing=True,
    )

    row = only_row(event=audit.SIGN_OUT)
    assert (row.reason, row.username) == ("deactivated", "gone")


# --- refresh --------------------------------------------------------------------------


def test_a_refused_refresh_writes_one_row_and_ends_the_session(op):
    client = browser()
    row = signed_in_session(client, issuer=op.issuer, refresh_token="RT-x1", expires_in=10)
    op.token_answer = lambda form: (400, {"error": "invalid_grant"}, "application/json")

    client.get("/members/")

    event = only_row(event=audit.REFRESH)
    assert fields(event) == (
        "refresh",
        "failure",
        "invalid_grant",
        "default",
        op.issuer,
        "sub-alice",
        "alice",
    )
    assert not OIDCSession.objects.filter(pk=row.pk).exists()
    assert_no_secret("RT-x1")


def test_provider_down_writes_one_row_per_outage_not_per_request(op, settings):
    settings.OIDC_OP_TOKEN_ENDPOINT = f"http://127.0.0.1:{free_port()}/token"
    settings.OIDC_TIMEOUT = 2
    client = browser()
    row = signed_in_session(client, issuer=op.issuer, expires_in=10)

    assert client.get("/members/").status_code == 200
    expire_access_token(OIDCSession.objects.get(pk=row.pk), client.session)
    assert client.get("/members/").status_code == 200  # tried again, still down

    event = only_row(event=audit.REFRESH)
    assert (event.outcome, event.reason, event.username) == ("failure", "provider_down", "alice")


# --- the events other parts of the product write ----------------------------------------


def test_an_admin_step_up_answered_in_full_writes_one_row(client, op):
    sign_in_staff(client, op, auth_age=7200)
    params = provider_params(client.get("/admin/"))
    AuditEvent.objects.all().delete()

    response = answer_step_up(client, op, params, auth_time=int(time.time()) - 5, acr="mfa")

    assert response.status_code == 302
    row = only_row(event=audit.ADMIN_STEP_UP)
    assert (row.outcome, row.subject, row.username) == ("success", "sub-alice", "alice")
    assert row.detail["acr"] == "mfa"
    assert only_row(event=audit.SIGN_IN).outcome == "success"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/oidc/callback/", {"state": "forged", "code": "x"}),  # a garbage callback
        ("/oidc/callback/nope/", {"state": "forged", "code": "x"}),  # an unknown provider
        ("/oidc/authenticate/", {"provider": "nope"}),
        ("/oidc/authenticate/", {"email": "x@unknown.example"}),  # no provider for the domain
    ],
)
def test_a_refusal_that_concerns_no_known_provider_names_none(client, op, path, params):
    response = client.get(path, params)
    assert response.status_code in (400, 404)
    row = only_row(event=audit.SIGN_IN)
    assert (row.outcome, row.provider) == ("failure", "")


def test_a_refusal_after_a_valid_state_names_that_provider(client, op):
    state, _nonce, _ = start(client)
    client.get("/oidc/callback/", {"state": state, "error": "access_denied"})
    assert only_row(event=audit.SIGN_IN).provider == "default"


def test_a_first_sign_in_to_the_admin_that_needs_no_step_up_writes_no_step_up_row(
    client, op, settings
):
    settings.OIDC_STAFF_GROUPS = ["staff"]
    state, nonce, params = start(client, next="/admin/")
    assert params["max_age"] == "3600" and "acr_values" not in params
    op.answer_tokens(op.id_token(nonce=nonce, groups=["staff"], auth_time=int(time.time())))
    op.answer_userinfo({"sub": "sub-alice", "groups": ["staff"]})
    assert client.get(callback_url(state, op=op)).status_code == 302

    assert not AuditEvent.objects.filter(event=audit.ADMIN_STEP_UP).exists()
    assert only_row(event=audit.SIGN_IN).detail == {"admin_step_up": "not_required"}


def test_a_first_sign_in_to_the_admin_asking_for_a_second_factor_is_a_step_up(client, op, settings):
    settings.OIDC_STAFF_GROUPS = ["staff"]
    settings.OIDC_ADMIN_ACR_VALUES = ["mfa"]
    state, nonce, params = start(client, next="/admin/")
    assert params["acr_values"] == "mfa"
    token = op.id_token(nonce=nonce, groups=["staff"], auth_time=int(time.time()), acr="mfa")
    op.answer_tokens(token)
    op.answer_userinfo({"sub": "sub-alice", "groups": ["staff"]})
    assert client.get(callback_url(state, op=op)).status_code == 302

    assert only_row(event=audit.ADMIN_STEP_UP).detail["acr"] == "mfa"


def test_an_admin_step_up_answered_short_writes_one_refusal_naming_the_user(client, op):
    sign_in_staff(client, op, auth_age=7200)
    old = int(client.session[sessions.SESSION_AUTH_TIME])
    params = provider_params(client.get("/admin/"))
    AuditEvent.objects.all().delete()

    assert answer_step_up(client, op, params, auth_time=old).status_code == 403

    row = only_row(event=audit.ADMIN_STEP_UP)
    assert fields(row) == (
        "admin_step_up", "failure", "auth_too_old", "default", op.issuer, "sub-alice", "alice"
    )  # fmt: skip
    assert not AuditEvent.objects.filter(event=audit.SIGN_IN).exists()


@pytest.mark.parametrize(
    "event", [audit.PROVIDER_ADDED, audit.PROVIDER_CHANGED, audit.PROVIDER_DISABLED]
)
def test_provider_events_have_names_and_write_one_row(event):
    operator = User.objects.create_user("ops")

    audit.record(
        event, audit.SUCCESS, provider="corp-okta", user=operator, detail={"field": "label"}
    )

    row = only_row(event=event)
    assert (row.provider, row.user, row.detail) == ("corp-okta", operator, {"field": "label"})
    assert event in audit.EVENTS


def test_a_sync_run_writes_one_summary_row_with_counts_and_no_names():
    report = directory_sync(
        source=ListSource([person("s1", username="zed"), person("s2")]), issuer="http://op.test"
    )

    row = only_row(event=audit.SYNC_RUN)
    assert (row.outcome, row.issuer) == ("success", "http://op.test")
    assert row.detail["created"] == report.created == 2
    assert row.detail["source"] == "list"
    assert "zed" not in json.dumps(row.detail)


def test_a_dry_run_writes_no_row():
    directory_sync(source=ListSource([person("s1")]), issuer="http://op.test", dry_run=True)
    assert not AuditEvent.objects.exists()


# --- bearer tokens: sampled -----------------------------------------------------------


def test_a_thousand_refused_bearer_tokens_in_a_minute_write_one_row_with_the_count(op, monkeypatch):
    minute = 60 * 29_000_000  # all within one minute, however slow the machine
    monkeypatch.setattr(audit, "time", SimpleNamespace(time=lambda: minute + 1.5))
    op.answer_introspection(active=False)
    client = Client()
    for index in range(1000):
        token = f"bad-token-{index % 7}"
        response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401

    row = only_row(event=audit.BEARER_REFUSED)
    assert (row.outcome, row.reason, row.count) == ("failure", "invalid_token", 1000)
    assert_no_secret(*(f"bad-token-{i}" for i in range(7)))


def test_sampled_counts_are_finished_when_the_next_minute_starts():
    def refuse(now: float) -> None:
        audit.record_sampled(audit.BEARER_REFUSED, audit.FAILURE, reason="x", now=now)

    for _ in range(37):  # past the exact range (16) and the flush at 32
        refuse(60 * 1000)
    assert AuditEvent.objects.get().count == 32
    refuse(60 * 1001 + 1)

    first, second = AuditEvent.objects.order_by("pk")
    assert (first.count, second.count) == (37, 1)


# --- log lines, retention --------------------------------------------------------------


def test_each_row_is_also_a_json_log_line_when_asked_for(settings, caplog):
    settings.OIDC_AUDIT_LOG_JSON = True
    caplog.set_level(logging.INFO, logger="accounts.audit")
    alice = User.objects.create_user("alice")

    audit.record(audit.SIGN_IN, audit.FAILURE, reason="inactive", subject="sub-a", user=alice)

    (line,) = [r for r in caplog.records if r.name == "accounts.audit"]
    data = json.loads(line.getMessage())
    assert data["event"] == "sign_in" and data["reason"] == "inactive"
    assert (data["subject"], data["username"], data["user_id"]) == ("sub-a", "alice", alice.pk)
    assert line.levelno == logging.INFO  # the flow's own line is the WARNING


def test_plain_log_lines_are_key_value_pairs(caplog):
    caplog.set_level(logging.INFO, logger="accounts.audit")
    audit.record(audit.SIGN_OUT, audit.SUCCESS, reason="operator")
    (line,) = [r for r in caplog.records if r.name == "accounts.audit"]
    assert "event=sign_out outcome=success reason=operator" in line.getMessage()


def test_prune_deletes_events_older_than_the_retention(settings):
    settings.OIDC_AUDIT_RETENTION_DAYS = 30
    for age in (1, 29, 31, 400):
        row = audit.record(audit.SIGN_IN, audit.SUCCESS)
        AuditEvent.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=age))
    out = StringIO()

    call_command("prune_audit_events", stdout=out)

    assert "Deleted 2 audit events older than 30 days." in out.getvalue()
    assert AuditEvent.objects.count() == 2
    call_command("prune_audit_events", days=2, stdout=out)
    assert AuditEvent.objects.count() == 1


def test_the_default_retention_is_180_days():
    from accounts.conf import DEFAULTS

    assert DEFAULTS["OIDC_AUDIT_RETENTION_DAYS"] == 180
