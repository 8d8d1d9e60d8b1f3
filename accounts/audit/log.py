"""The security audit log: one row per event, written by the flows, and one log line each.

``record`` writes an ``AuditEvent`` row and the same event as a log line on the
``accounts.audit`` logger (one JSON object per line when ``OIDC_AUDIT_LOG_JSON`` is on, for
a SIEM). Events an outsider can trigger at will (refused bearer tokens, refused logout
requests) go through ``record_sampled``: at most one row per event, reason and minute, with
a count, so that an attack cannot flood the table. Nothing here ever takes a token, a code
or a secret: only identifiers (issuer, subject, user) and machine reason codes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import metrics
from accounts.conf import oidc_settings
from accounts.models import AuditEvent
from accounts.security import shared_cache
from accounts.security.client_info import client_ip, user_agent

logger = logging.getLogger("accounts.audit")

# Events (``AuditEvent.event``).
SIGN_IN = "sign_in"
SIGN_OUT = "sign_out"
REFRESH = "refresh"  # refused or provider down (a successful refresh is not an event)
ADMIN_STEP_UP = "admin_step_up"  # for the admin step-up (issue 13)
PROVIDER_ADDED = "provider_added"  # providers in the database (issue 10)
PROVIDER_CHANGED = "provider_changed"
PROVIDER_DISABLED = "provider_disabled"
SYNC_RUN = "sync_run"
BEARER_REFUSED = "bearer_refused"
SHARED_SIGNAL = "shared_signal"  # a provider's Security Event Token (accounts/ssf/)
EVENTS = (
    SIGN_IN,
    SIGN_OUT,
    REFRESH,
    ADMIN_STEP_UP,
    PROVIDER_ADDED,
    PROVIDER_CHANGED,
    PROVIDER_DISABLED,
    SYNC_RUN,
    BEARER_REFUSED,
    SHARED_SIGNAL,
)

# Outcomes (``AuditEvent.outcome``).
SUCCESS = "success"
FAILURE = "failure"

# Reasons of a sign-out (``AuditEvent.reason`` of SIGN_OUT).
RP_INITIATED = "rp_initiated"
BACKCHANNEL = "backchannel"
FRONTCHANNEL = "frontchannel"
EXPIRED = "expired"  # the session reached OIDC_SESSION_MAX_AGE
OPERATOR = "operator"  # end_sessions command or the admin action
OTHER_SESSIONS = "user_other_sessions"  # "sign out everywhere else" on the profile page
DEACTIVATED = "deactivated"  # sync deactivated the user
REAUTH_FAILED = "reauth_failed"  # silent re-authentication (prompt=none) refused

DEFAULT_PROVIDER = "default"
# An event that concerns no known provider (an unknown email domain or provider name, a
# forged callback, a refused token nobody vouched for): provider empty, "(none)" in the admin.
NO_PROVIDER = ""
SAMPLE_WINDOW = 60  # seconds: one row per event, reason and window for sampled events


def _user_fields(user: Any) -> dict[str, Any]:
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        return {"user": None, "username": ""}
    return {"user": user, "username": user.get_username()[:150]}


def _fields(
    event: str,
    outcome: str,
    *,
    request: HttpRequest | None = None,
    reason: str = "",
    provider: str = DEFAULT_PROVIDER,
    issuer: str = "",
    subject: str = "",
    user: Any = None,
    detail: dict[str, Any] | None = None,
    count: int = 1,
) -> dict[str, Any]:
    return {
        "event": event[:40],
        "outcome": outcome[:16],
        "reason": str(reason or "")[:64],
        "provider": str(provider or NO_PROVIDER)[:64],
        "issuer": str(issuer or "")[:255],
        "subject": str(subject or "")[:255],
        "ip_address": client_ip(request),
        "user_agent": user_agent(request),
        "count": count,
        "detail": detail or {},
        **_user_fields(user),
    }


def record(event: str, outcome: str, **kwargs: Any) -> AuditEvent | None:
    """Write one audit row and its log line; a failed write is logged, never raised.

    Keyword arguments: ``request`` (for the IP address and user agent), ``reason`` (a
    machine code), ``provider`` (slug, ``default`` when omitted; ``""`` when the event
    concerns no known provider), ``issuer``, ``subject``, ``user``,
    ``detail`` (a small JSON object of counts or flags) and ``count``.
    """
    fields = _fields(event, outcome, **kwargs)
    metrics.audit_event(event, outcome, fields["reason"], fields["provider"])
    try:
        with transaction.atomic():  # a savepoint: a failure leaves the caller's work intact
            row = AuditEvent.objects.create(**fields)
    except DatabaseError as exc:
        logger.error("audit row not written: event=%s error=%s", event, type(exc).__name__)
        row = None
    log_event(fields, when=row.created_at if row else timezone.now())
    return row


def record_for_users(event: str, outcome: str, *, users: Iterable[Any], **kwargs: Any) -> int:
    """The same event for many users at once (ending sessions of a sync's deactivations)."""
    rows = [AuditEvent(**_fields(event, outcome, user=user, **kwargs)) for user in users]
    try:
        with transaction.atomic():
            AuditEvent.objects.bulk_create(rows, batch_size=1000)
    except DatabaseError as exc:
        logger.error("audit rows not written: event=%s error=%s", event, type(exc).__name__)
    now = timezone.now()
    for row in rows:
        log_event(_fields(event, outcome, user=row.user, **kwargs), when=now)
    return len(rows)


def log_event(fields: dict[str, Any], *, when: Any) -> None:
    """The event as one log line: ``key=value`` pairs, or JSON when asked for."""
    data = {
        "time": when.isoformat(),
        **{k: v for k, v in fields.items() if k not in ("user", "detail", "user_agent")},
        "user_id": fields["user"].pk if fields.get("user") is not None else None,
    }
    if fields.get("detail"):
        data["detail"] = fields["detail"]
    # INFO whatever the outcome: the flow's own WARNING line is the one line of a refusal in
    # the operational log; this is the audit stream (filter on the accounts.audit logger).
    if oidc_settings.OIDC_AUDIT_LOG_JSON:
        logger.info(json.dumps({"audit": True, **data}, sort_keys=True, default=str))
        return
    pairs = " ".join(
        f"{key}={value if value not in (None, '') else '-'}"
        for key, value in data.items()
        if key not in ("time", "detail")
    )
    logger.info("audit %s", pairs)


def _should_flush(count: int) -> bool:
    """Write the running count to its row up to 16, then at 32, 64, ... and every 100th."""
    return count <= 16 or count & (count - 1) == 0 or count % 100 == 0


def record_sampled(
    event: str,
    outcome: str,
    *,
    request: HttpRequest | None = None,
    reason: str = "",
    provider: str = NO_PROVIDER,
    now: float | None = None,
) -> bool:
    """Count an event an outsider can repeat at will; return whether a row was written.

    The first event of a (event, reason, provider) in a minute writes a row (with that
    request's address) and the cache counts the rest; the row's ``count`` is brought up to
    date at each of the first 16 events, then at 32, 64, ..., every 100th, and when the next
    minute's first event comes: a few dozen writes for thousands of events.
    """
    bucket = int((now or time.time()) // SAMPLE_WINDOW)
    base = f"oidc:audit:{event}:{reason[:64]}:{provider[:64]}"
    key = f"{base}:{bucket}"
    if shared_cache.add(key, 1, timeout=SAMPLE_WINDOW * 3):
        row = record(event, outcome, request=request, reason=reason, provider=provider)
        if row is not None:
            shared_cache.set(f"{key}:row", row.pk, timeout=SAMPLE_WINDOW * 3)
        _flush(f"{base}:{bucket - 1}")
        return True
    metrics.audit_event(event, outcome, reason, provider)  # every event, not only the rows
    try:
        count = shared_cache.incr(key)
    except ValueError:  # expired between add and incr: the next event starts a new row
        return False
    if _should_flush(count):
        _flush(key, count)
    return False


def _flush(key: str, count: int | None = None) -> None:
    count = shared_cache.get(key) if count is None else count
    pk = shared_cache.get(f"{key}:row")
    if count and pk:
        AuditEvent.objects.filter(pk=pk, count__lt=count).update(count=count)


def prune(*, days: int | None = None) -> int:
    """Delete the events older than ``days`` (default ``OIDC_AUDIT_RETENTION_DAYS``)."""
    days = oidc_settings.OIDC_AUDIT_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = AuditEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
