"""Ending a session here ends its grant at the provider too: revoke its refresh token.

Called wherever sessions end on the site's side ("sign out everywhere else", the site's
sign-out, ``end_sessions``, an operator's action): the refresh token (else the access
token) of each ended session goes to its provider's RFC 7009 revocation endpoint in the
background (``accounts.oidc.revocation``), so the provider will not renew it. Best effort:
an unreadable token or a provider without the endpoint is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from accounts.models import OIDCSession
from accounts.oidc.revocation import revoke_later
from accounts.providers.registry import all_providers
from accounts.sessions import token_store

logger = logging.getLogger("accounts.sessions")


def revoke_session_tokens(rows: Iterable[OIDCSession]) -> int:
    """Hand the grant of each session to its provider for revocation; return how many."""
    providers = {p.slug: p for p in all_providers()}  # switched off since: still revoked
    handed = 0
    for row in rows:
        provider = providers.get(row.provider)
        if provider is None:
            continue
        try:
            refresh = token_store.read(row, "refresh_token")
            token = refresh or token_store.read(row, "access_token")
        except token_store.TokensUnreadable:
            logger.warning("token not revoked: reason=tokens_unreadable sub=%s", row.subject)
            continue
        if token:
            revoke_later(provider, token, "refresh_token" if refresh else "access_token")
            handed += 1
    return handed
