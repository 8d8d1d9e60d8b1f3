"""Refresh a session's tokens with the refresh_token grant, once, and never lose the result.

Providers that rotate refresh tokens revoke the whole grant when one is used twice, so
parallel requests of one session must not both refresh, and a refresh token the provider
has rotated must reach the database whatever fails next.

- **Once.** The refresh runs under a lock that holds across processes (the shared cache;
  when it errors or there is none, a file lock on SQLite or an advisory lock on PostgreSQL)
  and claims the row (``refresh_started_at``, a lease in the database), so that not even two
  processes holding different kinds of lock while Redis comes and goes spend one token
  twice. Waiters use what the holder stored. A token is refreshed at most once per
  lifetime.
- **In the background.** The grant runs in a thread of its own with its own read timeout
  (``OIDC_REFRESH_TIMEOUT``): a provider that answers late still has its answer stored. The
  request that started it waits at most ``OIDC_REFRESH_WAIT`` and goes on; requests of the
  same session in this process join the refresh in flight rather than start another. (Inside
  a transaction, as in a test case, the refresh runs in the request's thread: another
  thread could not see its rows.)
- **Stored first.** The new tokens are written before the ID token is checked, with retries
  for as long as the refresh may take; the check needs no cache. A clock that disagrees
  with the provider's (``issued_in_future``, ``expired``) keeps the session like a provider
  outage does.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts import metrics
from accounts.audit import log as audit
from accounts.conf import oidc_settings
from accounts.errors import InvalidGrant, ProviderError, TokenError
from accounts.models import OIDCSession
from accounts.oidc.discovery import endpoint
from accounts.oidc.token_endpoint import token_request
from accounts.oidc.tokens import validate_refreshed_id_token
from accounts.providers.registry import UnknownProvider, provider_get
from accounts.security import shared_cache
from accounts.security.locks import (
    CacheUnavailable,
    LockTimeout,
    cache_is_shared,
    cache_lock,
    file_lock,
)
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store

logger = logging.getLogger("accounts.refresh")

# While the provider is unreachable, retry at most this often (seconds).
RETRY_INTERVAL = 15
# A write of rotated tokens that meets a failing database is retried for this long (the
# grant behind it is spent), with a backoff that grows to STORE_BACKOFF_MAX seconds.
STORE_DEADLINE = 120.0
STORE_BACKOFF_MAX = 0.5
# Codes of an ID token that only a clock could have made invalid.
CLOCK_CODES = {"issued_in_future", "expired"}


class Outcome(enum.Enum):
    FRESH = "fresh"  # another request refreshed, or nothing to do
    REFRESHED = "refreshed"
    PROVIDER_DOWN = "provider_down"  # kept within the grace period
    NO_REFRESH_TOKEN = "no_refresh_token"
    BUSY = "busy"  # another request is refreshing and took too long: serve, try later
    PENDING = "pending"  # the refresh goes on in the background; this request is served
    ENDED = "ended"  # invalid_grant, grace period over, invalid token, or row gone
    UNREADABLE = "unreadable"  # the stored tokens' key is gone (SECRET_KEY rotated away)


@dataclass
class Result:
    """What a refresh found, to be copied into the session of the request that waited."""

    outcome: Outcome
    expires_at: float | None = None
    lifetime: float | None = None
    key_id: str | None = None
    retry_at: float | None = None  # the provider is down: ask again from this moment


def _lease() -> float:
    """How long a claim on a row holds: the grant's timeout and the store's retries."""
    return oidc_settings.OIDC_REFRESH_TIMEOUT + 30


@contextlib.contextmanager
def session_lock(session_key: str) -> Iterator[None]:
    """Hold a lock for this session across processes while refreshing.

    The lock outlives the longest refresh, so it cannot lapse while its holder still works;
    a waiter gives up after ``OIDC_REFRESH_LOCK_TIMEOUT`` with ``LockTimeout`` rather than
    refresh unlocked. A shared cache that errors is replaced by the database's own lock.
    """
    wait = oidc_settings.OIDC_REFRESH_LOCK_TIMEOUT
    if cache_is_shared():
        ttl = 2 * oidc_settings.OIDC_REFRESH_TIMEOUT + STORE_DEADLINE + 5
        try:
            with cache_lock(lock_key(session_key), ttl=ttl, wait=wait):
                yield
            return
        except CacheUnavailable:
            logger.warning("refresh lock: the shared cache is down, using the database's lock")
    with database_lock(session_key, wait=wait):
        yield


@contextlib.contextmanager
def database_lock(session_key: str, *, wait: float) -> Iterator[None]:
    """A lock without the cache: a file lock on SQLite, an advisory lock on PostgreSQL.

    Neither holds a transaction open while the provider answers, so the rotated tokens are
    written (and retried) on their own, whatever became of the connection meanwhile.
    """
    if connection.vendor == "sqlite":
        with file_lock(str(connection.settings_dict["NAME"]), session_key, wait=wait):
            yield
        return
    if connection.vendor != "postgresql":
        with transaction.atomic():  # other databases: the row lock, as before
            list(OIDCSession.objects.select_for_update().filter(session_key=session_key))
            yield
        return
    number = zlib.crc32(lock_key(session_key).encode()) - 2**31  # a signed 32-bit key
    deadline = time.monotonic() + wait
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [0x01D0, number])
            if cursor.fetchone()[0]:
                break
            if time.monotonic() > deadline:
                raise LockTimeout(session_key)
            time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [0x01D0, number])


def _expiry(row: OIDCSession) -> float | None:
    return row.access_expires_at.timestamp() if row.access_expires_at else None


def _lifetime(row: OIDCSession) -> float | None:
    """How long the row's access token was issued for."""
    expires = _expiry(row)
    issued = row.refreshed_at or row.created_at
    return None if expires is None or issued is None else expires - issued.timestamp()


def _result(outcome: Outcome, row: OIDCSession, **extra: Any) -> Result:
    return Result(outcome, expires_at=_expiry(row), lifetime=_lifetime(row), **extra)


def _attempt_key(session_key: str) -> str:
    return f"oidc:refresh-attempt:{_hashed(session_key)}"


def _hashed(session_key: str) -> str:
    """A session key as it may appear in a shared cache: hashed, so Redis holds no cookie."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def lock_key(session_key: str) -> str:
    """The shared-cache key of this session's refresh lock."""
    return f"oidc:refresh-lock:{_hashed(session_key)}"


# --- the request's side: start or join the refresh, wait a little, apply what it found ----


class _Job:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result = Result(Outcome.BUSY)
        self.began = time.monotonic()


_jobs: dict[str, _Job] = {}
_jobs_lock = threading.Lock()


def refresh_session(request: HttpRequest, *, started: float | None = None) -> Outcome:
    """Make this session's access token fresh, or say why it cannot be.

    ``started``: when the request began; tokens refreshed since then are used as they are.
    """
    key = request.session.session_key
    started = time.time() if started is None else started
    if connection.in_atomic_block:  # a background thread could not see this transaction
        return _apply(request, _refresh(request, key, started))
    with _jobs_lock:
        job = _jobs.get(key)
        joined = job is not None
        if not joined:
            job = _jobs[key] = _Job()
    if not joined:
        thread = threading.Thread(
            target=_run, args=(job, request, key, started), name="oidc-refresh", daemon=False
        )
        thread.start()
    # A refresh already in flight for longer than the wait is not waited for again, and
    # while the provider is known to be slow, no request waits for it at all.
    provider = str(request.session.get(sessions.SESSION_PROVIDER) or "default")
    wait = oidc_settings.OIDC_REFRESH_WAIT - (time.monotonic() - job.began)
    if _known_slow(provider):
        wait = 0.0
    if not job.done.wait(max(wait, 0.0)):
        _mark_slow(provider)
        return Outcome.PENDING
    if job.result.outcome is Outcome.REFRESHED:
        _mark_slow(provider, slow=False)
    return _apply(request, job.result)


# How long a provider that kept a request waiting is not waited for again (seconds).
SLOW_FOR = 5.0
_slow_until: dict[str, float] = {}


def _slow_key(provider: str) -> str:
    return f"oidc:refresh-slow:{provider}"


def _known_slow(provider: str) -> bool:
    if _slow_until.get(provider, 0.0) > time.monotonic():
        return True
    if shared_cache.get(_slow_key(provider)):  # another process found it slow
        _slow_until[provider] = time.monotonic() + SLOW_FOR
        return True
    return False


def _mark_slow(provider: str, *, slow: bool = True) -> None:
    if slow:
        _slow_until[provider] = time.monotonic() + SLOW_FOR
        shared_cache.set(_slow_key(provider), 1, SLOW_FOR)
    elif _slow_until.pop(provider, None) is not None:
        shared_cache.delete(_slow_key(provider))


def _run(job: _Job, request: HttpRequest, key: str, started: float) -> None:
    """The background refresh: runs to its end even when the request is long gone."""
    try:
        job.result = _refresh(request, key, started)
    except Exception:
        logger.exception("refresh failed unexpectedly; the session is kept")
        job.result = Result(Outcome.BUSY)
    finally:
        connection.close()  # this thread's own connection
        with _jobs_lock:
            if _jobs.get(key) is job:
                del _jobs[key]
        job.done.set()


def _apply(request: HttpRequest, result: Result) -> Outcome:
    """Copy what the refresh found into the session of a request that is still here."""
    if result.outcome in (Outcome.FRESH, Outcome.REFRESHED):
        sessions.remember_expiry(request, result.expires_at, result.lifetime)
    if result.key_id:
        request.session[token_store.SESSION_KEY_ID] = result.key_id
    if result.retry_at:
        sessions.remember_expiry(request, result.retry_at, 0)  # ask again in a little while
    return result.outcome


# --- the refresh itself: no request.session here, it may run after the request ended ------


def _refresh(request: HttpRequest, key: str, started: float) -> Result:
    try:
        with session_lock(key):
            return _refresh_locked(request, key, started)
    except LockTimeout:
        logger.warning("refresh lock busy past its wait: the request goes on unrefreshed")
        return Result(Outcome.BUSY)


def _refresh_locked(request: HttpRequest, key: str, started: float) -> Result:
    row = OIDCSession.objects.filter(session_key=key).first()
    if row is None:
        return Result(Outcome.ENDED)
    if row.refreshed_at is not None and row.refreshed_at.timestamp() >= started:
        return _result(Outcome.FRESH, row)  # the request we waited for refreshed
    leeway = oidc_settings.OIDC_REFRESH_LEEWAY
    if not sessions.refresh_due(_expiry(row), _lifetime(row), leeway, time.time()):
        return _result(Outcome.FRESH, row)
    attempted = shared_cache.get(_attempt_key(key))
    if attempted is not None and attempted >= started:
        return Result(Outcome.PROVIDER_DOWN)  # the request we waited for found it down
    if not row.refresh_token:
        return Result(Outcome.NO_REFRESH_TOKEN)
    try:
        refresh_token = token_store.read(row, "refresh_token")
    except token_store.TokensUnreadable as exc:
        _refused(request, row, exc.code)
        return Result(Outcome.UNREADABLE)
    if not _claim(row):
        return Result(Outcome.BUSY)  # a refresh elsewhere has not stored its answer yet
    try:
        return _refresh_row(request, row, refresh_token)
    finally:
        _release(row)


def _claim(row: OIDCSession) -> bool:
    """Claim the row for this refresh (a conditional update: one claimant wins)."""
    now = timezone.now()
    lapsed = now - timedelta(seconds=_lease())
    free = Q(refresh_started_at__isnull=True) | Q(refresh_started_at__lt=lapsed)
    claimed = OIDCSession.objects.filter(free, pk=row.pk).update(refresh_started_at=now)
    if claimed:
        row.refresh_started_at = now
    else:
        logger.warning("refresh skipped: another process has claimed this session's refresh")
    return bool(claimed)


def _release(row: OIDCSession) -> None:
    if row.refresh_started_at is not None and row.pk is not None:
        row.refresh_started_at = None
        with contextlib.suppress(DatabaseError):
            OIDCSession.objects.filter(pk=row.pk).update(refresh_started_at=None)


def _audit(request: HttpRequest, row: OIDCSession, reason: str, **detail: Any) -> None:
    audit.record(
        audit.REFRESH,
        audit.FAILURE,
        request=request,
        reason=reason,
        provider=row.provider,
        issuer=row.issuer,
        subject=row.subject,
        user=row.user,
        detail=detail or None,
    )


def _refused(request: HttpRequest, row: OIDCSession, reason: str) -> None:
    """Log, audit and end a session whose refresh cannot succeed."""
    logger.warning("refresh refused: reason=%s iss=%s sub=%s", reason, row.issuer, row.subject)
    _audit(request, row, reason)
    sessions.end_sessions([row])
    row.pk = None  # gone: nothing to release


def _refresh_row(request: HttpRequest, row: OIDCSession, refresh_token: str) -> Result:
    """Refresh at the provider the session signed in at (``row.provider``).

    A provider switched off or removed since ends its sessions at their next refresh.
    """
    try:
        provider = provider_get(row.provider)
        tokens = token_request(
            endpoint("token_endpoint", provider=provider),
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            provider=provider,
            timeout=oidc_settings.OIDC_REFRESH_TIMEOUT,
        )
    except (InvalidGrant, UnknownProvider) as exc:
        metrics.refresh(row.provider, "revoked")
        _refused(request, row, exc.code)
        return Result(Outcome.ENDED)
    except ProviderError as exc:
        metrics.refresh(row.provider, "provider_down")
        return _provider_down(request, row, exc)
    # The grant is spent: the new tokens reach the database before anything else can fail.
    if not _store(row, tokens, refresh_token):
        metrics.refresh(row.provider, "not_stored")
        return Result(Outcome.BUSY)
    logger.info("refreshed tokens: iss=%s sub=%s", row.issuer, row.subject)
    id_token = tokens.get("id_token")
    if isinstance(id_token, str):
        try:
            claims = validate_refreshed_id_token(
                id_token, previous={"sub": row.subject}, provider=provider
            )
        except TokenError as exc:
            if exc.code in CLOCK_CODES:
                metrics.refresh(row.provider, "refreshed_clock_skew")
                _clock_skew(request, row, id_token, exc)
                return _result(Outcome.REFRESHED, row, key_id=token_store.current_key_id())
            metrics.refresh(row.provider, "id_token_refused")
            _refused(request, row, exc.code)
            return Result(Outcome.ENDED)
        except ProviderError as exc:  # keys unavailable: the tokens are stored, check later
            logger.warning(
                "refreshed ID token not checked yet: reason=%s sub=%s", exc.code, row.subject
            )
        else:
            sid = str(claims.get("sid") or row.sid)[:255]
            if sid != row.sid:
                row.sid = sid
                _save(row, ["sid"])
    metrics.refresh(row.provider, "refreshed")
    return _result(Outcome.REFRESHED, row, key_id=token_store.current_key_id())


def _clock_skew(request: HttpRequest, row: OIDCSession, id_token: str, exc: TokenError) -> None:
    """The provider's clock and ours disagree: a provider fault, the session is kept."""
    skew = _measured_skew(id_token)
    logger.warning(
        "refreshed ID token %s: the provider's clock differs from ours by about %s s; "
        "session kept: iss=%s sub=%s",
        exc.code,
        "?" if skew is None else f"{skew:+.0f}",
        row.issuer,
        row.subject,
    )
    marker = f"oidc:clock-skew:{row.provider}"
    if shared_cache.add(marker, 1, 3600):  # audited once an hour per provider
        _audit(request, row, "provider_clock_skew", skew=skew)


def _measured_skew(id_token: str) -> float | None:
    """``iat`` minus our clock, read without verification (only for the log line)."""
    import jwt

    try:
        iat = jwt.decode(id_token, options={"verify_signature": False}).get("iat")
    except (jwt.PyJWTError, RecursionError, ValueError):
        return None
    return float(iat) - time.time() if isinstance(iat, (int, float)) else None


def _provider_down(request: HttpRequest, row: OIDCSession, exc: ProviderError) -> Result:
    shared_cache.set(_attempt_key(row.session_key), time.time(), RETRY_INTERVAL)
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
        row.pk = None
        return Result(Outcome.ENDED)
    logger.warning(
        "refresh failed, session kept: reason=%s iss=%s sub=%s%s",
        exc.code,
        row.issuer,
        row.subject,
        detail,
    )
    return Result(Outcome.PROVIDER_DOWN, retry_at=time.time() + RETRY_INTERVAL)


def _store(row: OIDCSession, tokens: dict[str, Any], refresh_token: str) -> bool:
    """Keep the new tokens, every one sealed under the current key (re-encrypting old ones)."""
    row.access_token = token_store.seal(tokens.get("access_token"))
    row.refresh_token = token_store.seal(tokens.get("refresh_token") or refresh_token)
    if isinstance(tokens.get("id_token"), str):
        row.id_token = token_store.seal(tokens["id_token"])
    elif row.id_token:
        row.id_token = _resealed_id_token(row)
    row.access_expires_at = sessions.expiry_from(tokens)
    row.refreshed_at = timezone.now()
    row.provider_unreachable_since = None
    row.refresh_started_at = None  # the claim ends with this write
    fields = [
        *("access_token", "refresh_token", "id_token", "access_expires_at"),
        *("refreshed_at", "provider_unreachable_since", "refresh_started_at"),
    ]
    if _save(row, fields):
        return True
    # Not stored: the claim stays in the database, so nobody spends the rotated-away token
    # until it lapses (``_release`` skips a row without a primary key).
    row.pk = None
    return False


# Errors of a database that is busy, restarting or gone for a moment.
_TRANSIENT = (OperationalError, InterfaceError)


def _save(row: OIDCSession, fields: list[str] | None = None) -> bool:
    """Save the row, waiting out a busy or restarting database: the grant is already spent.

    Each attempt is its own savepoint inside a transaction (the row lock of other
    databases); outside one, a broken connection is dropped so the next attempt reconnects.
    """
    deadline = time.monotonic() + STORE_DEADLINE
    attempt = 0
    while True:
        attempt += 1
        try:
            with transaction.atomic():
                row.save(update_fields=fields)
            if attempt > 1:
                logger.warning(
                    "rotated tokens stored after %d attempts: sub=%s", attempt, row.subject
                )
            return True
        except _TRANSIENT as exc:
            if time.monotonic() > deadline:
                logger.error(
                    "rotated tokens could not be stored after %d attempts: sub=%s (%s)",
                    attempt,
                    row.subject,
                    type(exc).__name__,
                )
                return False
            if not connection.in_atomic_block:
                with contextlib.suppress(DatabaseError):
                    connection.close()
            time.sleep(min(0.05 * attempt, STORE_BACKOFF_MAX))


def _resealed_id_token(row: OIDCSession) -> str:
    """The kept ID token under the current key; dropped if unreadable (only a logout hint)."""
    try:
        return token_store.seal(token_store.read(row, "id_token"))
    except token_store.TokensUnreadable:
        return ""
