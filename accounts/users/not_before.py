"""Per-user "not before" of access tokens: the API refuses a user's tokens issued earlier.

A provider's Shared Signals event (sessions revoked, account disabled) sets it, so that an
unexpired JWT access token stops working within seconds instead of at its ``exp``. The
moment is kept in the database (the truth) and in the shared cache (what the API reads:
one cache get per bearer request; a miss reads the row once and caches the answer,
"none" included, for ``CACHE_SECONDS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from accounts.models import TokensNotBefore
from accounts.security import shared_cache

CACHE_SECONDS = 300


def _key(user_id: int) -> str:
    return f"oidc:tokens-not-before:{int(user_id)}"


def tokens_not_before(user_id: int) -> float:
    """Epoch seconds before which this user's access tokens are refused (0: none)."""
    value = shared_cache.get(_key(user_id))
    if value is None:
        moment = (
            TokensNotBefore.objects.filter(user_id=user_id)
            .values_list("not_before", flat=True)
            .first()
        )
        value = moment.timestamp() if moment else 0.0
        shared_cache.set(_key(user_id), value, CACHE_SECONDS)
    return float(value)


def revoke_tokens_before(user_ids: Iterable[int], moment: float) -> int:
    """Refuse the access tokens these users were issued before ``moment`` (epoch seconds)."""
    ids = sorted({int(pk) for pk in user_ids})
    if not ids:
        return 0
    when = datetime.fromtimestamp(moment, tz=UTC)
    TokensNotBefore.objects.bulk_create(
        [TokensNotBefore(user_id=pk, not_before=when) for pk in ids],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["not_before"],
    )
    for pk in ids:
        shared_cache.set(_key(pk), float(moment), CACHE_SECONDS)
    return len(ids)
