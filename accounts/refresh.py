"""Refresh a session's tokens with the refresh_token grant, once, under a lock.

Providers that rotate refresh tokens revoke the whole grant when one is used twice, so
parallel requests of one session must not both refresh. The first takes a lock (on the
shared cache when there is one, else on the session's database row), refreshes and stores
the rotated tokens; the others wait, then find the tokens fresh and use them.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections.abc import Iterator

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from . import sessions
from .conf import oidc_settings
from .discovery import endpoint
from .errors import InvalidGrant, ProviderError, TokenError
from .http import token_request
from .locks import LockTimeout, cache_is_shared, cache_lock
from .models import OIDCSession
from .tokens import validate_refreshed_id_token

logger = logging.getLogger("accounts.refresh")

# While the provider is unreachable, retry at most this often (seconds).
RETRY_INTERVAL = 15


class Outcome(enum.Enum):
    FRESH = "fresh"  # another request refreshed, or nothing to do
    REFRESHED = "refreshed"
    PROVIDER_DOWN = "provider_down"  # kept within the grace period
    NO_REFRESH_TOKEN = "no_refresh_token"
    BUSY = "busy"  # another request is refreshing and took too long: serve, try later
    ENDED = "ended"  # invalid_grant, grace period over, invalid token, or row gone


# SQLite has one writer at a time anyway: one process-wide lock serialises refreshes.
_sqlite_lock = threading.Lock()


@contextlib.contextmanager
def session_lock(session_key: str) -> Iterator[None]:
    """Hold a lock for this session across processes while refreshing.

    On a shared cache the lock outlives the longest refresh (a few provider calls, each
    bounded by ``OIDC_TIMEOUT``), so it cannot lapse while its holder still works; a waiter
    gives up after ``OIDC_REFRESH_LOCK_TIMEOUT`` with ``LockTimeout`` rather than refresh
    unlocked. Without a shared cache: a row lock, or a process lock on SQLite.
    """
    if cache_is_shared():
        ttl = 4 * oidc_settings.OIDC_TIMEOUT + 5
        wait = oidc_settings.OIDC_REFRESH_LOCK_TIMEOUT
        with cache_lock(f"oidc:refresh-lock:{session_key}", ttl=ttl, wait=wait):
            yield
        return
    if connection.features.has_select_for_update:
        with transaction.atomic():
            list(OIDCSession.objects.select_for_update().filter(session_key=session_key))
            yield
        return
    with _sqlite_lock, transaction.atomic():
        yield


def _expiry(row: OIDCSession) -> float | None:
    return row.access_expires_at.timestamp() if row.access_expires_at else None


def _remember_expiry(request: HttpRequest, expires_at: float | None) -> None:
    request.session[sessions.SESSION_EXPIRES_AT] = expires_at


def refresh_session(request: HttpRequest) -> Outcome:
    """Make this session's access token fresh, or say why it cannot be."""
    key = request.session.session_key
    try:
        with session_lock(key):
            return _refresh_locked(request, key)
    except LockTimeout:
        logger.warning("refresh lock busy past its wait: the request goes on unrefreshed")
        return Outcome.BUSY


def _refresh_locked(request: HttpRequest, key: str) -> Outcome:
    row = OIDCSession.objects.filter(session_key=key).first()
    if row is None:
        return Outcome.ENDED
    expires = _expiry(row)
    if expires is not None and expires - oidc_settings.OIDC_REFRESH_LEEWAY > time.time():
        _remember_expiry(request, expires)  # a parallel request refreshed already
        return Outcome.FRESH
    if not row.refresh_token:
        return Outcome.NO_REFRESH_TOKEN
    return _refresh_row(request, row)


def _refresh_row(request: HttpRequest, row: OIDCSession) -> Outcome:
    try:
        tokens = token_request(
            endpoint("token_endpoint"),
            {"grant_type": "refresh_token", "refresh_token": row.refresh_token},
        )
        claims = (
            validate_refreshed_id_token(tokens["id_token"], previous={"sub": row.subject})
            if isinstance(tokens.get("id_token"), str)
            else None
        )
    except (InvalidGrant, TokenError) as exc:
        logger.warning(
            "refresh refused: reason=%s iss=%s sub=%s", exc.code, row.issuer, row.subject
        )
        sessions.end_sessions([row])
        return Outcome.ENDED
    except ProviderError as exc:
        return _provider_down(request, row, exc)
    _store(row, tokens, claims)
    _remember_expiry(request, _expiry(row))
    logger.info("refreshed tokens: iss=%s sub=%s", row.issuer, row.subject)
    return Outcome.REFRESHED


def _provider_down(request: HttpRequest, row: OIDCSession, exc: ProviderError) -> Outcome:
    if row.provider_unreachable_since is None:
        row.provider_unreachable_since = timezone.now()
        row.save(update_fields=["provider_unreachable_since"])
    if sessions.grace_exceeded(row, oidc_settings.OIDC_REFRESH_GRACE):
        logger.warning("provider down past grace: iss=%s sub=%s", row.issuer, row.subject)
        sessions.end_sessions([row])
        return Outcome.ENDED
    logger.warning("provider down, session kept: reason=%s sub=%s", exc.code, row.subject)
    # Ask again in a little while rather than on every request.
    _remember_expiry(request, time.time() + oidc_settings.OIDC_REFRESH_LEEWAY + RETRY_INTERVAL)
    return Outcome.PROVIDER_DOWN


def _store(row: OIDCSession, tokens: dict, claims: dict | None) -> None:
    row.access_token = tokens.get("access_token") or ""
    row.refresh_token = tokens.get("refresh_token") or row.refresh_token  # rotated or kept
    if claims is not None:
        row.id_token = tokens["id_token"]
        row.sid = str(claims.get("sid") or row.sid)[:255]
    row.access_expires_at = sessions.expiry_from(tokens, claims)
    row.refreshed_at = timezone.now()
    row.provider_unreachable_since = None
    row.save()
