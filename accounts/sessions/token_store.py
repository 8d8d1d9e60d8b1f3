"""The tokens of a session, encrypted at rest: seal on write, read on demand, key checks.

``OIDCSession`` keeps the ID, access and refresh tokens only as ``accounts.security.crypto`` values
(AES-GCM under a key derived from ``SECRET_KEY``). They are decrypted only where a token is
sent somewhere: the refresh grant and the logout's ``id_token_hint``. The session dict keeps
the id of the key that sealed them (not a secret), so the middleware can tell on any
request, without decrypting, that no configured key can read them any more.
"""

from __future__ import annotations

from typing import Any

from accounts.errors import OIDCError
from accounts.security import crypto

PURPOSE = "oidc-session-tokens"
TOKEN_FIELDS = ("id_token", "access_token", "refresh_token")
# In request.session: the id of the key the session's tokens were sealed with.
SESSION_KEY_ID = "oidc_key_id"


class TokensUnreadable(OIDCError):
    """The stored tokens were sealed under a key that is neither current nor a fallback."""

    code = "tokens_unreadable"
    message = (
        "Your session could not be continued after a change of the site's keys. "
        "Please sign in again."
    )
    status = 401


def seal(token: str | None) -> str:
    """A token as stored: encrypted under the current key ("" stays "")."""
    return crypto.encrypt(token or "", purpose=PURPOSE)


def read(row: Any, field: str) -> str:
    """The clear text of one token of an ``OIDCSession`` row, or ``TokensUnreadable``."""
    try:
        return crypto.decrypt(getattr(row, field), purpose=PURPOSE)
    except crypto.DecryptionError as exc:
        raise TokensUnreadable() from exc


def current_key_id() -> str:
    return crypto.key_ids(PURPOSE)[0]


def key_readable(key_id: str) -> bool:
    """Whether a value sealed under ``key_id`` can still be read (current or fallback key)."""
    return key_id in crypto.key_ids(PURPOSE)
