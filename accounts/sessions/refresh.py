"""Refresh a session's tokens with the refresh_token grant, once, under a lock.

Providers that rotate refresh tokens revoke the whole grant when one is used twice, so
parallel requests of one session must not both refresh. The first takes a lock that holds
across processes (the shared cache when there is one; else a file lock on SQLite, a row
lock on other databases), refreshes and stores the rotated tokens; the others wait, then
use what it stored. A token is refreshed at most once per lifetime: the leeway is bounded
by the token's own lifetime, and a token refreshed since the request began is never
refreshed again. The rotated tokens are stored with retries: a spent grant is never lost
to a busy database.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import log as audit
from accounts.conf import oidc_settings
from accounts.errors import InvalidGrant, ProviderError, TokenError
from accounts.models import OIDCSession
from accounts.oidc.discovery import endpoint
from accounts.oidc.token_endpoint import token_request
from accounts.oidc.tokens import validate_refreshed_id_token
from accounts.providers.registry import UnknownProvider, provider_get
from accounts.security.locks import LockTimeout, cache_is_shared, cache_lock, file_lock
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store

logger = logging.getLogger("accounts.refresh")

# While the provider is unreachable, retry at most this often (seconds).
RETRY_INTERVAL = 15
# A write of rotated tokens that meets a busy database is tried this many times.
STORE_ATTEMPTS = 5


class Outcome(enum.Enum):
    FRESH = "fresh"  # another request refreshed, or nothing to do
    REFRESHED = "refreshed"
    PROVIDER_DOWN = "provider_down"  # kept within the grace period
    NO_REFRESH_TOKEN = "no_refresh_token"
    BUSY = "busy"  # another request is refreshing and took too long: serve, try later
    ENDED = "ended"  # invalid_grant, grace period over, invalid token, or row gone
    UNREADABLE = "unreadable"  # the stored tokens' key is gone (SECRET_KEY rotated away)


@contextlib.contextmanager
def session_lock(session_key: str) -> Iterator[None]:
    """Hold a lock for this session across processes while refreshing.

    The lock outlives the longest refresh (a few provider calls, each bounded by
    ``OIDC_TIMEOUT``), so it cannot lapse while its holder still works; a waiter gives up
    after ``OIDC_REFRESH_LOCK_TIMEOUT`` with ``LockTimeout`` rather than refresh unlocked.
    """
    wait = oidc_settings.OIDC_REFRESH_LOCK_TIMEOUT
    if cache_is_shared():
        ttl = 4 * oidc_settings.OIDC_TIMEOUT + 5
        with cache_lock(lock_key(session_key), ttl=ttl, wait=wait):
            yield
    elif connection.vendor == "sqlite":
        # No transaction is held while the provider answers: other writers go on.
        with file_lock(str(connection.settings_dict["NAME"]), session_key, wait=wait):
            yield
    else:
        with transaction.atomic():
            list(OIDCSession.objects.select_for_update().filter(session_key=session_key))
            yield


def _expiry(row: OIDCSession) -> float | None:
    return row.access_expires_at.timestamp() if row.access_expires_at else None


def _lifetime(row: OIDCSession) -> float | None:
    """How long the row's access token was issued for."""
    expires = _expiry(row)
    issued = row.refreshed_at or row.created_at
    return None if expires is None or issued is None else expires - issued.timestamp()


def _remember(request: HttpRequest, row: OIDCSession) -> None:
    sessions.remember_expiry(request, _expiry(row), _lifetime(row))


def _attempt_key(session_key: str) -> str:
    return f"oidc:refresh-attempt:{_hashed(session_key)}"


def _hashed(session_key: str) -> str:
    """A session key as it may appear in a shared cache: hashed, so Redis holds no cookie."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def lock_key(session_key: str) -> str:
    """The shared-cache key of this session's refresh lock."""
    return f"oidc:refresh-lock:{_hashed(session_key)}"


def refresh_session(request: HttpRequest, *, started: float | None = None) -> Outcome:
    """Make this session's access token fresh, or say why it cannot be.

    ``started``: when the request began; tokens refreshed since then are used as they are.
    """
    key = request.session.session_key
    started = time.time() if started is None else started
    try:
        with session_lock(key):
            return _refresh_locked(request, key, started)
    except LockTimeout:
        logger.warning("refresh lock busy past its wait: the request goes on unrefreshed")
        return Outcome.BUSY


def _refresh_locked(request: HttpRequest, key: str, started: float) -> Outcome:
    row = OIDCSession.objects.filter(session_key=key).first()
    if row is None:
        return Outcome.ENDED
    if row.refreshed_at is not None and row.refreshed_at.timestamp() >= started:
        _remember(request, row)  # the request we waited for refreshed: use what it stored
        return Outcome.FRESH
    leeway = oidc_settings.OIDC_REFRESH_LEEWAY
    if not sessions.refresh_due(_expiry(row), _lifetime(row), leeway, time.time()):
        _remember(request, row)
        return Outcome.FRESH
    attempted = cache.get(_attempt_key(key))
    if attempted is not None and attempted >= started:
        return Outcome.PROVIDER_DOWN  # the request we waited for found the provider down
    if not row.refresh_token:
        return Outcome.NO_REFRESH_TOKEN
    try:
        refresh_token = token_store.read(row, "refresh_token")
    except token_store.TokensUnreadable as exc:
        _refused(request, row, exc.code)
        return Outcome.UNREADABLE
    return _refresh_row(request, row, refresh_token)


def _audit(request: HttpRequest, row: OIDCSession, reason: str) -> None:
    audit.record(
        audit.REFRESH,
        audit.FAILURE,
        request=request,
        reason=reason,
        provider=row.provider,
        issuer=row.issuer,
        subject=row.subject,
        user=row.user,
    )


def _refused(request: HttpRequest, row: OIDCSession, reason: str) -> None:
    """Log, audit and end a session whose refresh cannot succeed."""
    logger.warning("refresh refused: reason=%s iss=%s sub=%s", reason, row.issuer, row.subject)
    _audit(request, row, reason)
    sessions.end_sessions([row])


def _refresh_row(request: HttpRequest, row: OIDCSession, refresh_token: str) -> Outcome:
    """Refresh at the provider the session signed in at (``row.provider``).

    A provider switched off or removed since ends its sessions at their next refresh.
    """
    try:
        provider = provider_get(row.provider)
        tokens = token_request(
            endpoint("token_endpoint", provider=provider),
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            provider=provider,
        )
        claims = (
            validate_refreshed_id_token(
                tokens["id_token"], previous={"sub": row.subject}, provider=provider
            )
            if isinstance(tokens.get("id_token"), str)
            else None
        )
    except (InvalidGrant, TokenError, UnknownProvider) as exc:
        _refused(request, row, exc.code)
        return Outcome.ENDED
    except ProviderError as exc:
        return _provider_down(request, row, exc)
    _store(row, tokens, claims, refresh_token)
    _remember(request, row)
    request.session[token_store.SESSION_KEY_ID] = token_store.current_key_id()
    logger.info("refreshed tokens: iss=%s sub=%s", row.issuer, row.subject)
    return Outcome.REFRESHED


def _provider_down(request: HttpRequest, row: OIDCSession, exc: ProviderError) -> Outcome:
    cache.set(_attempt_key(row.session_key), time.time(), RETRY_INTERVAL)
    if row.provider_unreachable_since is None:  # one audit row per session and outage
        row.provider_unreachable_since = timezone.now()
        _save(row, ["provider_unreachable_since"])
        _audit(request, row, "provider_down")
    detail = f" ({exc.detail})" if exc.detail else ""
    if sessions.grace_exceeded(row, oidc_settings.OIDC_REFRESH_GRACE):
        logger.warning(
            "refresh failed past the grace period, session ended: reason=%s iss=%s sub=%s%s",
            exc.code,
            row.issuer,
            row.subject,
            detail,
        )
        _audit(request, row, "provider_down_past_grace")
        sessions.end_sessions([row])
        return Outcome.ENDED
    logger.warning(
        "refresh failed, session kept: reason=%s iss=%s sub=%s%s",
        exc.code,
        row.issuer,
        row.subject,
        detail,
    )
    # Ask again in a little while rather than on every request.
    sessions.remember_expiry(request, time.time() + RETRY_INTERVAL, 0)
    return Outcome.PROVIDER_DOWN


def _store(
    row: OIDCSession, tokens: dict[str, Any], claims: dict[str, Any] | None, refresh_token: str
) -> None:
    """Keep the new tokens, every one sealed under the current key (re-encrypting old ones)."""
    row.access_token = token_store.seal(tokens.get("access_token"))
    row.refresh_token = token_store.seal(tokens.get("refresh_token") or refresh_token)
    if claims is not None:
        row.id_token = token_store.seal(tokens["id_token"])
        row.sid = str(claims.get("sid") or row.sid)[:255]
    elif row.id_token:
        row.id_token = _resealed_id_token(row)
    row.access_expires_at = sessions.expiry_from(tokens, claims)
    row.refreshed_at = timezone.now()
    row.provider_unreachable_since = None
    _save(row)


def _save(row: OIDCSession, fields: list[str] | None = None) -> None:
    """Save the row, waiting out a busy database: the grant behind it is already spent.

    Each attempt is its own savepoint, so a failed one leaves an enclosing transaction
    (the row lock on PostgreSQL) usable for the next.
    """
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                row.save(update_fields=fields)
            return
        except OperationalError as exc:
            if attempt == STORE_ATTEMPTS:
                logger.error(
                    "rotated tokens could not be stored after %d attempts: sub=%s (%s)",
                    attempt,
                    row.subject,
                    type(exc).__name__,
                )
                return
            time.sleep(0.1 * attempt)


def _resealed_id_token(row: OIDCSession) -> str:
    """The kept ID token under the current key; dropped if unreadable (only a logout hint)."""
    try:
        return token_store.seal(token_store.read(row, "id_token"))
    except token_store.TokensUnreadable:
        return ""
