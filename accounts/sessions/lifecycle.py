"""Services over the OIDC state of sessions: store tokens at sign-in, end sessions anywhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.audit import log as audit
from accounts.models import OIDCSession
from accounts.providers.provider import DEFAULT_SLUG, Provider
from accounts.security.client_info import client_ip, user_agent
from accounts.sessions import token_store
from accounts.sessions.revoke import revoke_session_tokens

logger = logging.getLogger("accounts.sessions")  # the name operators filter on, kept across moves

# Keys in request.session: a copy of what the middleware needs on the fast path, so that a
# request with a valid access token makes no query beyond Django's own session and user.
SESSION_EXPIRES_AT = "oidc_access_expires_at"
SESSION_LIFETIME = "oidc_access_lifetime"  # seconds the access token was issued for
SESSION_STARTED_AT = "oidc_started_at"
SESSION_ISSUER = "oidc_iss"  # who the user is at the provider, for /api/me/ without a query
SESSION_SUBJECT = "oidc_sub"
# The ID token's auth_time and acr: when and how the user last authenticated at the provider.
SESSION_AUTH_TIME = "oidc_auth_time"
SESSION_ACR = "oidc_acr"
# The session key the OIDCSession row was stored under: Django may cycle the key (it does
# when SECRET_KEY rotates and the auth hash is re-signed), and the row must follow it.
SESSION_ROW_KEY = "oidc_session_key"
SESSION_PROVIDER = "oidc_provider"  # the slug of the provider the session signed in at


def _session_store_class() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


# When the provider says nothing about the access token's lifetime, refresh this soon.
DEFAULT_ACCESS_LIFETIME = 300
# Provider numbers are clamped to this, so that a huge value cannot overflow a datetime.
LONGEST_LIFETIME = 366 * 24 * 3600


def timestamp_to_datetime(moment: float, now: float | None = None) -> datetime:
    """A provider's epoch seconds as an aware datetime, clamped to a sane range."""
    now = now or time.time()
    moment = min(max(float(moment), 0.0), now + LONGEST_LIFETIME)
    return datetime.fromtimestamp(moment, tz=UTC)


def expiry_from(tokens: dict[str, Any], claims: dict[str, Any] | None = None) -> datetime:
    """When the access token expires: ``expires_in``, else the ID token's ``exp``, else soon."""
    now = time.time()
    expires_in = tokens.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        return timestamp_to_datetime(now + expires_in, now)
    exp = (claims or {}).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return timestamp_to_datetime(exp, now)
    return timestamp_to_datetime(now + DEFAULT_ACCESS_LIFETIME, now)


# The share of an access token's lifetime left when it is refreshed, at most.
REFRESH_FRACTION = 0.25


def refresh_leeway(lifetime: float | None, leeway: float) -> float:
    """How long before expiry to refresh: ``leeway``, but at most a quarter of the lifetime.

    A token that lives 2 s (or 60 s) would otherwise be "about to expire" the moment it is
    issued, and every request would refresh it. A quarter leaves a refreshed token three
    quarters of its life before anything refreshes it again, however long a burst of
    requests takes to be served; tokens of the usual minutes keep the configured leeway.
    """
    if lifetime is None:
        return leeway
    return min(leeway, max(float(lifetime), 0.0) * REFRESH_FRACTION)


def refresh_due(
    expires_at: float | None, lifetime: float | None, leeway: float, now: float
) -> bool:
    """Whether an access token expiring at ``expires_at`` should be refreshed at ``now``."""
    if expires_at is None:
        return False
    return expires_at - refresh_leeway(lifetime, leeway) <= now


def remember_expiry(request: HttpRequest, expires_at: float | None, lifetime: float | None) -> None:
    """Copy the access token's expiry into the session, for the middleware's fast path."""
    request.session[SESSION_EXPIRES_AT] = expires_at
    request.session[SESSION_LIFETIME] = lifetime


def store_tokens(
    request: HttpRequest,
    *,
    user: Any,
    claims: dict[str, Any],
    tokens: dict,
    provider: Provider | None = None,
) -> None:
    """Record the tokens of a fresh sign-in, and its provider, against the rotated session key.

    The key is new (``login`` rotated it, and the caller deleted the row of the old one), so
    the row is inserted without looking for one first; the unique ``session_key`` stays
    the guard.
    """
    if request.session.session_key is None:
        request.session.save()
    expires_at = expiry_from(tokens, claims)
    OIDCSession.objects.create(
        session_key=request.session.session_key,
        user=user,
        provider=provider.slug if provider else DEFAULT_SLUG,
        issuer=claims["iss"],
        subject=claims["sub"],
        sid=str(claims.get("sid") or "")[:255],
        id_token=token_store.seal(tokens.get("id_token")),
        access_token=token_store.seal(tokens.get("access_token")),
        refresh_token=token_store.seal(tokens.get("refresh_token")),
        access_expires_at=expires_at,
        user_agent=user_agent(request),
        ip_address=client_ip(request),
    )
    remember_expiry(request, expires_at.timestamp(), expires_at.timestamp() - time.time())
    request.session[SESSION_STARTED_AT] = time.time()
    request.session[SESSION_ISSUER] = claims["iss"]
    request.session[SESSION_SUBJECT] = claims["sub"]
    request.session[SESSION_PROVIDER] = provider.slug if provider else DEFAULT_SLUG
    remember_authentication(request, claims)


def remember_authentication(request: HttpRequest, claims: dict[str, Any]) -> None:
    """Keep the ID token's ``auth_time`` and ``acr`` (admin step-up, the profile page)."""
    auth_time = claims.get("auth_time")
    valid_time = isinstance(auth_time, (int, float)) and not isinstance(auth_time, bool)
    acr = claims.get("acr")
    request.session[SESSION_AUTH_TIME] = float(auth_time) if valid_time else None
    request.session[SESSION_ACR] = acr[:255] if isinstance(acr, str) else None
    request.session[token_store.SESSION_KEY_ID] = token_store.current_key_id()
    request.session[SESSION_ROW_KEY] = request.session.session_key


def recorded_key(request: HttpRequest) -> str | None:
    """The key this session's OIDCSession row is stored under (None: not loaded, or none)."""
    session = getattr(request, "session", None)
    return session.get(SESSION_ROW_KEY) if session is not None and session.accessed else None


def follow_session_key(request: HttpRequest, recorded: str | None) -> None:
    """Keep the OIDCSession row with its session after the view ran.

    Django may cycle the session key (when ``SECRET_KEY`` rotated, it re-signs the auth
    hash under a new key): the row moves to the new key. Django may also drop the session
    (an auth hash no key verifies): the row goes too. A comparison when nothing changed.
    """
    if recorded is None:
        return
    session = request.session
    now, key = session.get(SESSION_ROW_KEY), session.session_key
    if now is None:
        OIDCSession.objects.filter(session_key=recorded).delete()
    elif key and now != key:
        OIDCSession.objects.filter(session_key=now).update(session_key=key)
        session[SESSION_ROW_KEY] = key


def current(request: HttpRequest) -> OIDCSession | None:
    """The OIDC state of this request's session, if it has one."""
    key = request.session.session_key
    return OIDCSession.objects.filter(session_key=key).first() if key else None


def recorded_row(request: HttpRequest) -> OIDCSession | None:
    """The OIDC row of this session, read only when the session recorded one.

    ``store_tokens`` records the row's key in the session, so a session without that entry
    (every first sign-in) has no row to find and costs no query. A row it did not record
    (a session older than the entry) is an orphan that ``clearsessions`` prunes.
    """
    return current(request) if request.session.get(SESSION_ROW_KEY) else None


def end_sessions(
    rows: QuerySet[OIDCSession] | Iterable[OIDCSession], *, revoke: bool = False
) -> int:
    """Delete the Django sessions behind these rows, whatever the engine, and the rows.

    ``revoke``: the site ends them on its own (a user, an operator), so their refresh
    tokens are revoked at the providers too, in the background. Not when the provider
    ended them or refused them already (a logout from the provider, a refused refresh).
    """
    store_class = _session_store_class()
    rows = list(rows)
    if revoke:
        revoke_session_tokens(rows)
    keys = [row.session_key for row in rows]
    for key in keys:
        store_class(session_key=key).delete()
    OIDCSession.objects.filter(session_key__in=keys).delete()
    return len(keys)


def end_current(request: HttpRequest, *, row: OIDCSession | None = None) -> None:
    """Sign this request's user out: its OIDC state first, then the session itself."""
    row = row or current(request)
    if row is not None:
        OIDCSession.objects.filter(pk=row.pk).delete()
    auth.logout(request)  # flushes the session data and deletes it from the store


def end_user_sessions(
    user_ids: Iterable[int],
    *,
    reason: str = audit.OPERATOR,
    request: HttpRequest | None = None,
    by: str = "",
) -> int:
    """End every session of these users: OIDC sessions and any other session they have.

    One audit row per user (``sign_out`` with ``reason``; ``by`` names the operator).
    """
    user_ids = {int(pk) for pk in user_ids}
    if not user_ids:
        return 0
    ended = end_sessions(OIDCSession.objects.filter(user_id__in=user_ids), revoke=True)
    ended += _end_plain_sessions(user_ids)
    logger.info("ended %d sessions of %d users", ended, len(user_ids))
    audit.record_for_users(
        audit.SIGN_OUT,
        audit.SUCCESS,
        users=auth.get_user_model()._default_manager.filter(pk__in=user_ids),
        request=request,
        reason=reason,
        detail={"by": by} if by else None,
    )
    return ended


def user_sessions(user: Any) -> QuerySet[OIDCSession]:
    """The user's signed-in sessions, newest first (for the profile page).

    Only sessions that are still alive: a row whose Django session expired or went away
    (before ``clearsessions`` removed it) is never listed as "where you are signed in".
    """
    rows = OIDCSession.objects.filter(user=user).order_by("-created_at", "-pk")
    if _database_sessions():
        return rows.filter(session_key__in=_live_session_keys())
    store_class = _session_store_class()
    dead = [row.pk for row in rows if not store_class().exists(row.session_key)]
    return rows.exclude(pk__in=dead) if dead else rows


def _database_sessions() -> bool:
    return settings.SESSION_ENGINE.endswith(("backends.db", "backends.cached_db"))


def _live_session_keys() -> QuerySet:
    from django.contrib.sessions.models import Session

    return Session.objects.filter(expire_date__gt=datetime.now(tz=UTC)).values("session_key")


def prune_orphans() -> int:
    """Delete the OIDC state of sessions that are gone (expired, cleared, flushed).

    ``clearsessions`` runs this after Django's own clean-up. With signed-cookie sessions
    the server cannot tell a live session from a dead one: nothing is deleted then.
    """
    if settings.SESSION_ENGINE.endswith("signed_cookies"):
        return 0
    if _database_sessions():
        orphans = OIDCSession.objects.exclude(session_key__in=_live_session_keys())
        deleted, _ = orphans.delete()
        return deleted
    store_class = _session_store_class()
    keys = OIDCSession.objects.values_list("session_key", flat=True).iterator()
    dead = [key for key in keys if not store_class().exists(key)]
    deleted, _ = OIDCSession.objects.filter(session_key__in=dead).delete()
    return deleted


def end_other_sessions(request: HttpRequest) -> int:
    """ "Sign out everywhere else": end the user's sessions except this request's."""
    others = user_sessions(request.user).exclude(session_key=request.session.session_key)
    ended = end_sessions(list(others), revoke=True)
    audit.record(
        audit.SIGN_OUT,
        audit.SUCCESS,
        request=request,
        reason=audit.OTHER_SESSIONS,
        user=request.user,
        detail={"sessions": ended},
    )
    return ended


def _end_plain_sessions(user_ids: set[int]) -> int:
    """Sessions without an OIDC row: break-glass password sign-ins, in the database engine.

    Only when password sign-in is switched on, since it reads every live session.
    """
    if "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS:
        return 0
    if not settings.SESSION_ENGINE.endswith(("backends.db", "backends.cached_db")):
        return 0
    from django.contrib.sessions.models import Session

    store_class = _session_store_class()
    wanted = {str(pk) for pk in user_ids}  # the session stores the user id as a string
    ended = 0
    for session in Session.objects.filter(expire_date__gt=datetime.now(tz=UTC)).iterator():
        data = session.get_decoded()
        if str(data.get("_auth_user_id")) in wanted:
            store_class(session_key=session.session_key).delete()
            ended += 1
    return ended


def session_lifetime_exceeded(session: Any, max_age: int, now: float | None = None) -> bool:
    started = session.get(SESSION_STARTED_AT)
    return bool(started) and (now or time.time()) - float(started) > max_age


def end_by_claims(
    *,
    issuer: str,
    sid: str | None = None,
    subject: str | None = None,
    reason: str = audit.BACKCHANNEL,
    request: HttpRequest | None = None,
    provider: Provider | None = None,
) -> int:
    """End the sessions a logout names: by ``sid`` when given, else every session of ``sub``.

    Only sessions signed in at ``provider`` (when given) and its issuer: a logout from one
    provider never ends a session of another, whatever ``sid`` and ``sub`` it names. Writes
    one audit row (``sign_out`` with ``reason``) naming whose sessions ended.
    """
    rows = OIDCSession.objects.filter(issuer=issuer).select_related("user")
    if provider is not None:
        rows = rows.filter(provider=provider.slug)
    if sid:
        rows = rows.filter(sid=sid)
        if subject:
            rows = rows.filter(subject=subject)
    elif subject:
        rows = rows.filter(subject=subject)
    else:
        return 0
    rows = list(rows)
    ended = end_sessions(rows)
    audit.record(
        audit.SIGN_OUT,
        audit.SUCCESS,
        request=request,
        reason=reason,
        provider=provider.slug if provider else (rows[0].provider if rows else DEFAULT_SLUG),
        issuer=issuer,
        subject=subject or (rows[0].subject if rows else ""),
        user=rows[0].user if rows else None,
        detail={"sessions": ended},
    )
    return ended


def grace_exceeded(row: OIDCSession, grace: int) -> bool:
    since = row.provider_unreachable_since
    return since is not None and datetime.now(tz=UTC) - since > timedelta(seconds=grace)
