"""Acting on the events of a verified Security Event Token: CAEP 1.0, RISC 1.0, SSF 1.0.

Each event is one small function; unknown event types are accepted and ignored. Every
event writes one audit row (``shared_signal``, the event's short name as reason, the
provider and the subject; never the token). Sessions end through the sessions package, so
every instance sees it on its next request; the bearer "not before" makes the API refuse
the users' earlier access tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest

from accounts.audit import log as audit
from accounts.models import OIDCIdentity, OIDCSession, SignalDeactivation
from accounts.providers.provider import Provider
from accounts.sessions import lifecycle as sessions
from accounts.ssf import streams
from accounts.ssf.subjects import Target, resolve, subject_of
from accounts.users.not_before import revoke_tokens_before

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"

SESSION_REVOKED = f"{CAEP}session-revoked"
CREDENTIAL_CHANGE = f"{CAEP}credential-change"
ACCOUNT_DISABLED = f"{RISC}account-disabled"
ACCOUNT_PURGED = f"{RISC}account-purged"
ACCOUNT_ENABLED = f"{RISC}account-enabled"
SESSIONS_REVOKED = f"{RISC}sessions-revoked"
IDENTIFIER_CHANGED = f"{RISC}identifier-changed"
VERIFICATION = f"{SSF}verification"
STREAM_UPDATED = f"{SSF}stream-updated"

# What ssf_stream asks the transmitter for.
ACTED_ON = (
    SESSION_REVOKED,
    CREDENTIAL_CHANGE,
    ACCOUNT_DISABLED,
    ACCOUNT_PURGED,
    ACCOUNT_ENABLED,
    SESSIONS_REVOKED,
    IDENTIFIER_CHANGED,
    VERIFICATION,
)


@dataclass
class Outcome:
    """What one event did, for the audit row and the receiver's log line."""

    action: str
    sessions: int = 0
    users: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Signal:
    """One event of a SET, with its provider and target."""

    event_type: str
    body: dict[str, Any]
    claims: dict[str, Any]
    provider: Provider
    target: Target


def _provider_sessions(signal: Signal):
    rows = OIDCSession.objects.filter(provider=signal.provider.slug, issuer=signal.provider.issuer)
    target = signal.target
    if target.sid:
        rows = rows.filter(sid=target.sid)
        return rows.filter(user_id__in=target.user_ids) if target.user_ids else rows
    return rows.filter(user_id__in=target.user_ids)


def _users_of(signal: Signal) -> set[int]:
    """The target's users; for a session subject alone, the users of that session."""
    if signal.target.user_ids:
        return set(signal.target.user_ids)
    return set(_provider_sessions(signal).values_list("user_id", flat=True))


def end_provider_sessions(signal: Signal) -> Outcome:
    """CAEP session-revoked and credential-change, RISC sessions-revoked."""
    if not signal.target:
        return Outcome("no_match")
    rows = list(_provider_sessions(signal).only("pk", "session_key", "user_id"))
    users = {row.user_id for row in rows} | set(signal.target.user_ids)
    ended = sessions.end_sessions(rows)
    revoke_tokens_before(users, time.time())
    return Outcome("sessions_ended", sessions=ended, users=users)


def disable_account(signal: Signal) -> Outcome:
    """RISC account-disabled and account-purged: deactivate, end every session."""
    users = _users_of(signal)
    if not users:
        return Outcome("no_match")
    model = get_user_model()
    manager = model._default_manager
    active = list(manager.filter(pk__in=users, is_active=True).values_list("pk", flat=True))
    manager.filter(pk__in=active).update(is_active=False)
    SignalDeactivation.objects.bulk_create(
        [
            SignalDeactivation(
                user_id=pk, provider=signal.provider.slug, event=_short(signal.event_type)
            )
            for pk in active
        ],
        ignore_conflicts=True,
    )
    rows = OIDCSession.objects.filter(user_id__in=users).only("pk", "session_key")
    ended = sessions.end_sessions(list(rows))
    revoke_tokens_before(users, time.time())
    return Outcome("deactivated", sessions=ended, users=users)


def enable_account(signal: Signal) -> Outcome:
    """RISC account-enabled: reactivate only users this provider's RISC event deactivated."""
    recorded = SignalDeactivation.objects.filter(
        user_id__in=_users_of(signal), provider=signal.provider.slug
    )
    users = set(recorded.values_list("user_id", flat=True))
    if not users:
        return Outcome("not_deactivated_by_signal")
    get_user_model()._default_manager.filter(pk__in=users).update(is_active=True)
    recorded.delete()
    return Outcome("reactivated", users=users)


def change_identifier(signal: Signal) -> Outcome:
    """RISC identifier-changed: a new email for the subject (``new-value``)."""
    new = signal.body.get("new-value")
    users = set(signal.target.user_ids)
    if not users or not isinstance(new, str) or "@" not in new or len(new) > 254:
        return Outcome("no_match" if not users else "ignored")
    email = new.strip()
    OIDCIdentity.objects.filter(issuer=signal.provider.issuer, user_id__in=users).update(
        email=email
    )
    get_user_model()._default_manager.filter(pk__in=users).update(email=email)
    return Outcome("email_changed", users=users)


def verification(signal: Signal) -> Outcome:
    streams.record_verification(signal.provider, signal.body.get("state"))
    return Outcome("verified")


def stream_updated(signal: Signal) -> Outcome:
    streams.record_status(signal.provider, signal.body.get("status"))
    return Outcome("status_recorded")


HANDLERS: dict[str, Callable[[Signal], Outcome]] = {
    SESSION_REVOKED: end_provider_sessions,
    CREDENTIAL_CHANGE: end_provider_sessions,
    SESSIONS_REVOKED: end_provider_sessions,
    ACCOUNT_DISABLED: disable_account,
    ACCOUNT_PURGED: disable_account,
    ACCOUNT_ENABLED: enable_account,
    IDENTIFIER_CHANGED: change_identifier,
    VERIFICATION: verification,
    STREAM_UPDATED: stream_updated,
}
NO_SUBJECT = {VERIFICATION, STREAM_UPDATED}


def _short(event_type: str) -> str:
    return event_type.rstrip("/").rsplit("/", 1)[-1][:64] or "unknown"


def _audit_user(users: list[int], target: Target) -> Any:
    """The first user the event acted on, as loaded by the subject lookup when it was."""
    if not users:
        return None
    loaded = next((u for u in target.users if u.pk == users[0]), None)
    return loaded or get_user_model()._default_manager.filter(pk=users[0]).first()


def apply_event(
    event_type: str,
    body: dict[str, Any],
    *,
    claims: dict[str, Any],
    provider: Provider,
    request: HttpRequest | None = None,
) -> Outcome:
    """Act on one event and write its audit row; unknown types are ignored (and audited)."""
    handler = HANDLERS.get(event_type)
    target = Target()
    if handler is not None and event_type not in NO_SUBJECT:
        target = resolve(subject_of(claims, body), provider)
    signal = Signal(event_type, body, claims, provider, target)
    outcome = handler(signal) if handler else Outcome("ignored")
    users = sorted(outcome.users)
    audit.record(
        audit.SHARED_SIGNAL,
        audit.SUCCESS,
        request=request,
        reason=_short(event_type) if handler else "unknown_event",
        provider=provider.slug,
        issuer=provider.issuer,
        subject=target.label,
        user=_audit_user(users, target),
        detail={
            "event": event_type[:200],
            "action": outcome.action,
            "sessions": outcome.sessions,
            "users": len(users),
            "jti": str(claims.get("jti", ""))[:80],
        },
    )
    return outcome
