"""The events of accepted SETs: what each does, to whom, and its one audit row.

CAEP session-revoked and credential-change and RISC sessions-revoked end the subject's
sessions at that provider; RISC account-disabled/purged deactivate, account-enabled undoes
only that; identifier-changed updates the email; SSF verification is recorded; unknown
events are accepted and ignored. Subjects of one provider never touch another's users.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import (
    AuditEvent,
    OIDCIdentity,
    OIDCSession,
    SignalDeactivation,
    SignalStream,
)
from accounts.ssf import events as ev
from tests.ssf.sets import AUTHORIZATION, iss_sub, make_set, push
from tests.support.providers import B_CLIENT_ID
from tests.support.sessions import is_signed_in, signed_in_session

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def ssf(op, settings):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = AUTHORIZATION
    return op


def session(op, **kwargs) -> Client:
    client = Client()
    signed_in_session(client, issuer=op.issuer, **kwargs)
    return client


@pytest.fixture
def alice(ssf) -> Client:
    return session(ssf, sid="sid-1")


@pytest.fixture
def bob(ssf) -> Client:
    return session(ssf, subject="sub-bob", username="bob", sid="sid-b")


def send(op, event: str, body: dict | None = None, **claims) -> None:
    response = push(make_set(op, events={event: body or {}}, **claims))
    assert response.status_code == 202, response.content
    assert response.content == b""


def audit_rows(**lookup):
    return AuditEvent.objects.filter(event="shared_signal", **lookup)


@pytest.mark.parametrize("event", [ev.SESSION_REVOKED, ev.CREDENTIAL_CHANGE, ev.SESSIONS_REVOKED])
def test_a_revocation_ends_every_session_of_the_subject_and_only_those(ssf, alice, bob, event):
    second = session(ssf, sid="sid-2")

    send(ssf, event, {"event_timestamp": int(time.time())})

    assert not is_signed_in(alice)
    assert not is_signed_in(second)
    assert alice.get("/members/").status_code == 302
    assert is_signed_in(bob)
    assert User.objects.get(username="alice").is_active
    row = audit_rows().get()
    assert row.reason == event.rsplit("/", 1)[1]
    assert (row.provider, row.issuer, row.subject) == ("default", ssf.issuer, "sub-alice")
    assert row.user.username == "alice"
    assert row.detail["sessions"] == 2
    assert "eyJ" not in str(row.detail)  # never the token


def test_a_session_subject_ends_only_that_session(ssf, alice):
    other = session(ssf, sid="sid-2")
    subject = {
        "format": "complex",
        "user": iss_sub(ssf),
        "session": {"format": "opaque", "id": "sid-2"},
    }

    send(ssf, ev.SESSION_REVOKED, sub_id=subject)

    assert is_signed_in(alice)
    assert not is_signed_in(other)


def test_a_session_subject_alone_ends_that_session(ssf, alice):
    other = session(ssf, sid="sid-2")
    send(
        ssf,
        ev.SESSION_REVOKED,
        sub_id={"format": "complex", "session": {"format": "opaque", "id": "sid-1"}},
    )
    assert not is_signed_in(alice)
    assert is_signed_in(other)


def test_the_older_subject_member_of_the_event_is_read(ssf, alice, bob):
    send(ssf, ev.SESSION_REVOKED, {"subject": iss_sub(ssf, "sub-bob")}, sub_id=None)
    assert is_signed_in(alice)
    assert not is_signed_in(bob)


def test_an_opaque_subject_is_the_providers_sub(ssf, alice, bob):
    send(ssf, ev.SESSION_REVOKED, sub_id={"format": "opaque", "id": "sub-bob"})
    assert is_signed_in(alice)
    assert not is_signed_in(bob)


def test_an_email_subject_matches_only_verified_emails_of_that_provider(ssf, alice, bob):
    OIDCIdentity.objects.filter(subject="sub-alice").update(
        email="alice@example.com", email_verified=True
    )
    OIDCIdentity.objects.filter(subject="sub-bob").update(
        email="bob@example.com", email_verified=False
    )

    send(ssf, ev.SESSION_REVOKED, sub_id={"format": "email", "email": "Bob@example.com"})
    assert is_signed_in(bob)  # bob's email was never verified by the provider

    send(ssf, ev.SESSION_REVOKED, sub_id={"format": "email", "email": "ALICE@example.com"})
    assert not is_signed_in(alice)
    assert audit_rows().filter(subject="ALICE@example.com").count() == 1


def test_an_iss_sub_of_another_issuer_matches_nobody(ssf, alice):
    send(
        ssf,
        ev.SESSION_REVOKED,
        sub_id={"format": "iss_sub", "iss": "http://other.test", "sub": "sub-alice"},
    )
    assert is_signed_in(alice)
    assert audit_rows().get().detail["action"] == "no_match"


def test_a_subject_of_one_provider_never_touches_a_user_known_only_through_another(
    ssf, op_b, settings, alice
):
    # Carol is known only through provider b, with the same sub and a verified email.
    carol = session(op_b, subject="sub-alice", username="carol", sid="sid-1")
    OIDCSession.objects.filter(user__username="carol").update(provider="b")
    OIDCIdentity.objects.filter(user__username="carol").update(
        email="carol@example.com", email_verified=True
    )

    send(ssf, ev.ACCOUNT_DISABLED)
    send(ssf, ev.SESSION_REVOKED, sub_id={"format": "email", "email": "carol@example.com"})
    send(
        ssf,
        ev.SESSION_REVOKED,
        sub_id={"format": "complex", "session": {"format": "opaque", "id": "sid-1"}},
    )

    assert not is_signed_in(alice)
    assert is_signed_in(carol)
    assert User.objects.get(username="carol").is_active


def test_a_push_authorization_of_provider_b_does_not_carry_a_set_of_provider_a(
    ssf, op_b, settings, alice
):
    settings.OIDC_PROVIDERS = {
        "b": {**settings.OIDC_PROVIDERS["b"], "ssf_push_authorization": "Bearer b-only"}
    }
    response = push(make_set(ssf), authorization="Bearer b-only")
    assert response.status_code == 403
    assert response.json()["err"] == "access_denied"
    assert is_signed_in(alice)


def test_provider_b_pushes_with_its_own_authorization_and_keys(ssf, op_b, settings, alice):
    settings.OIDC_PROVIDERS = {
        "b": {**settings.OIDC_PROVIDERS["b"], "ssf_push_authorization": "Bearer b-only"}
    }
    carol = session(op_b, subject="sub-carol", username="carol", sid="sid-c")
    OIDCSession.objects.filter(user__username="carol").update(provider="b")

    token = make_set(op_b, aud=B_CLIENT_ID, sub_id=iss_sub(op_b, "sub-carol"))
    assert push(token, authorization="Bearer b-only").status_code == 202

    assert not is_signed_in(carol)
    assert is_signed_in(alice)
    assert audit_rows().get().provider == "b"


def test_account_disabled_deactivates_ends_every_session_and_records_why(ssf, alice, bob):
    send(ssf, ev.ACCOUNT_DISABLED, {"reason": "hijacking"})

    user = User.objects.get(username="alice")
    assert not user.is_active
    assert not is_signed_in(alice)
    assert is_signed_in(bob)
    assert SignalDeactivation.objects.get(user=user).provider == "default"
    assert audit_rows().get().detail["action"] == "deactivated"


def test_account_purged_deactivates_too(ssf, alice):
    send(ssf, ev.ACCOUNT_PURGED)
    assert not User.objects.get(username="alice").is_active
    assert not is_signed_in(alice)


def test_account_enabled_reactivates_a_user_a_signal_deactivated(ssf, alice):
    send(ssf, ev.ACCOUNT_DISABLED)
    send(ssf, ev.ACCOUNT_ENABLED)

    user = User.objects.get(username="alice")
    assert user.is_active
    assert not SignalDeactivation.objects.filter(user=user).exists()
    assert list(audit_rows().order_by("pk").values_list("reason", flat=True)) == [
        "account-disabled",
        "account-enabled",
    ]


def test_account_enabled_never_reactivates_a_user_an_operator_deactivated(ssf, alice):
    User.objects.filter(username="alice").update(is_active=False)

    send(ssf, ev.ACCOUNT_ENABLED)

    assert not User.objects.get(username="alice").is_active
    assert audit_rows().get().detail["action"] == "not_deactivated_by_signal"


def test_identifier_changed_updates_the_email(ssf, alice):
    send(ssf, ev.IDENTIFIER_CHANGED, {"new-value": "alice.new@example.com"})
    assert User.objects.get(username="alice").email == "alice.new@example.com"
    assert OIDCIdentity.objects.get(subject="sub-alice").email == "alice.new@example.com"
    assert is_signed_in(alice)


@pytest.mark.parametrize("body", [{"state": "abc-123"}, {}])
def test_verification_is_accepted_and_recorded_with_or_without_state(ssf, alice, body):
    send(ssf, ev.VERIFICATION, body, sub_id={"format": "opaque", "id": "stream-1"})
    stream = SignalStream.objects.get(provider="default")
    assert stream.last_verification_at is None or stream.last_verification_state == body.get(
        "state", ""
    )
    assert stream.last_event_type == ev.VERIFICATION
    assert stream.events_received == 1
    assert is_signed_in(alice)


def test_an_unknown_event_is_accepted_ignored_and_audited(ssf, alice):
    send(ssf, "https://example.com/event-type/something-new", {"x": 1})
    assert is_signed_in(alice)
    row = audit_rows().get()
    assert (row.reason, row.detail["action"]) == ("unknown_event", "ignored")


def test_each_event_of_one_set_is_acted_on_and_audited_once(ssf, alice, bob):
    events = {ev.CREDENTIAL_CHANGE: {}, "urn:example:other": {}}
    assert push(make_set(ssf, events=events)).status_code == 202
    assert not is_signed_in(alice)
    assert audit_rows().count() == 2
    assert SignalStream.objects.get().events_received == 1
