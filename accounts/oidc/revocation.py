"""RFC 7009 token revocation: tell the provider a session's refresh token is dead.

``revoke_token`` is the protocol message: a POST of ``token`` and ``token_type_hint`` to
the ``revocation_endpoint`` of the provider's metadata, with the same client authentication
as the token endpoint (``client_auth``). ``revoke_later`` hands it to a small pool of
background threads, so that a sign-out never waits for a slow or absent provider: the
revocation is best effort, its outcome one log line (never the token).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from accounts.errors import OIDCError
from accounts.oidc.client_auth import client_authentication
from accounts.oidc.discovery import endpoint
from accounts.oidc.http import provider_request
from accounts.providers.provider import Provider

logger = logging.getLogger("accounts.revocation")

# Two threads: revocations are rare (sign-outs) and a dead provider must not pile up work.
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="oidc-revoke")
_pending: set[Future] = set()
_pending_lock = threading.Lock()


REFRESH_TOKEN_HINT = "refresh_token"  # RFC 7009 token_type_hint


def revoke_token(provider: Provider, token: str, token_type_hint: str = REFRESH_TOKEN_HINT) -> bool:
    """RFC 7009 section 2.1: ask ``provider`` to revoke ``token``; True when it said 200.

    A provider without a ``revocation_endpoint`` is not asked (False). Errors are logged
    with the provider's slug and the reason, never the token, and never raised.
    """
    try:
        url = endpoint("revocation_endpoint", required=False, provider=provider)
        if not url:
            logger.info("token not revoked: provider=%s has no revocation_endpoint", provider.slug)
            return False
        client = client_authentication(provider)
        data = {"token": token, "token_type_hint": token_type_hint, **client.data}
        response = provider_request("POST", url, data=data, auth=client.basic)
    except OIDCError as exc:
        logger.warning(
            "token not revoked: provider=%s reason=%s%s",
            provider.slug,
            exc.code,
            f" ({exc.detail})" if exc.detail else "",
        )
        return False
    if response.status_code != 200:  # RFC 7009 2.2: 200 even for an unknown token
        logger.warning(
            "token not revoked: provider=%s reason=http_%d", provider.slug, response.status_code
        )
        return False
    logger.info("token revoked: provider=%s hint=%s", provider.slug, token_type_hint)
    return True


def revoke_later(provider: Provider, token: str, token_type_hint: str = REFRESH_TOKEN_HINT) -> None:
    """Revoke in the background: the caller (a sign-out) goes on at once."""
    future = _pool.submit(_revoke_quietly, provider, token, token_type_hint)
    with _pending_lock:
        _pending.add(future)
    future.add_done_callback(_done)


def _revoke_quietly(provider: Provider, token: str, token_type_hint: str) -> bool:
    try:
        return revoke_token(provider, token, token_type_hint)
    except Exception as exc:  # a background thread: nobody else would ever see it
        logger.error("token not revoked: provider=%s error=%s", provider.slug, type(exc).__name__)
        return False


def _done(future: Future) -> None:
    with _pending_lock:
        _pending.discard(future)


def wait_for_revocations(timeout: float = 30.0) -> None:
    """Wait until the revocations handed over so far are done (tests, commands)."""
    with _pending_lock:
        futures = list(_pending)
    for future in futures:
        future.result(timeout=timeout)
