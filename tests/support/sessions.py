"""Signed-in OIDC sessions without a browser or a provider round trip.

``signed_in_session`` logs a test client in as the OIDC backend would and records the
session's OIDC state (the ``OIDCSession`` row and the two keys the middleware reads from
the session dict), so that a test can start from "signed in, token expiring in N seconds".
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import OIDCIdentity, OIDCSession
from accounts.providers.registry import issuer_owner
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store

BACKEND = "accounts.backends.OIDCBackend"


def oidc_user(
    *,
    issuer: str,
    subject: str = "sub-alice",
    username: str = "alice",
    email: str = "",
    provider: str | None = None,
) -> Any:
    """The user of (issuer, subject), created with its identity when missing.

    The identity belongs to ``provider``, by default the provider that owns the issuer.
    """
    identity = OIDCIdentity.objects.filter(issuer=issuer, subject=subject).first()
    if identity is not None:
        return identity.user
    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"email": email or f"{username}@example.com"}
    )
    owner = issuer_owner(issuer)
    provider = provider or (owner.slug if owner else "default")
    OIDCIdentity.objects.create(
        user=user, issuer=issuer, subject=subject, email=user.email, provider=provider
    )
    return user


def signed_in_session(
    client: Client,
    *,
    issuer: str,
    subject: str = "sub-alice",
    username: str = "alice",
    sid: str = "sid-1",
    access_token: str = "at-1",
    refresh_token: str = "rt-1",
    id_token: str = "",
    expires_in: float | None = 300,
    lifetime: float = 300,
    started_ago: float = 0,
) -> OIDCSession:
    """Sign ``client`` in and give its session OIDC state; return the row.

    The tokens are stored sealed, as sign-in stores them (``token_store.read`` reads them).

    ``expires_in`` is seconds from now until the access token expires (negative: expired;
    None: the provider did not say); ``lifetime`` is how long the token was issued for (it
    was issued ``lifetime - expires_in`` seconds ago); ``started_ago`` backdates the sign-in.
    """
    user = oidc_user(issuer=issuer, subject=subject, username=username)
    client.force_login(user, backend=BACKEND)
    session = client.session
    now = time.time()
    expires_at = None if expires_in is None else now + expires_in
    row = OIDCSession.objects.create(
        session_key=session.session_key,
        user=user,
        issuer=issuer,
        subject=subject,
        sid=sid,
        id_token=token_store.seal(id_token),
        access_token=token_store.seal(access_token),
        refresh_token=token_store.seal(refresh_token),
        access_expires_at=None if expires_at is None else datetime.fromtimestamp(expires_at, UTC),
    )
    issued_ago = 0 if expires_in is None else max(lifetime - expires_in, 0)
    OIDCSession.objects.filter(pk=row.pk).update(
        created_at=datetime.fromtimestamp(now - issued_ago, UTC)
    )
    row.refresh_from_db()
    session[sessions.SESSION_EXPIRES_AT] = expires_at
    session[sessions.SESSION_LIFETIME] = None if expires_in is None else lifetime
    session[sessions.SESSION_STARTED_AT] = now - started_ago
    session[token_store.SESSION_KEY_ID] = token_store.current_key_id()
    session[sessions.SESSION_ROW_KEY] = session.session_key
    session.save()
    return row


def expire_access_token(row: OIDCSession, session: Any, *, seconds_ago: float = 10) -> None:
    """Make the row's access token and the session's copy of its expiry lie in the past."""
    moment = time.time() - seconds_ago
    OIDCSession.objects.filter(pk=row.pk).update(
        access_expires_at=datetime.fromtimestamp(moment, UTC)
    )
    session[sessions.SESSION_EXPIRES_AT] = moment
    session.save()


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def ago(seconds: float) -> datetime:
    return datetime.now(tz=UTC) - timedelta(seconds=seconds)
