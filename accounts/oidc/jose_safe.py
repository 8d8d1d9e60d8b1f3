"""Reading a token anybody can send, safely: its size capped first, any decoding failure a refusal.

Every parser of a compact JWS (access tokens, logout tokens, ID tokens, and the DPoP proofs and
Security Event Tokens to come) calls ``read_jws`` before anything else decodes the token,
PyJWT included. It refuses a token longer than the cap before any base64 or JSON work, and
turns every way the decoding can fail (bad base64, bad UTF-8, bad JSON, JSON nested deeper
than the interpreter's recursion limit, a number too long to convert, a part that is not an
object) into one ``UnreadableToken`` with a reason code and words: never an uncaught
exception, never an HTTP 500. Once ``read_jws`` accepted a token, PyJWT parses the same bytes
with the same ``json`` module and cannot fail differently.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# A token anybody can send (bearer, logout, DPoP, SET): real ones are a few kilobytes.
MAX_TOKEN_BYTES = 16 * 1024
# A token the site fetched from its own provider (ID token, signed userinfo): room for the
# long group lists some providers put in ID tokens.
MAX_PROVIDER_TOKEN_BYTES = 64 * 1024

REASONS = {
    "too_large": "The token is too long to be a token this site accepts.",
    "malformed": "The token could not be read.",
}


class UnreadableToken(ValueError):
    """A token refused before any check: ``too_large`` or ``malformed``, with words."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.message = REASONS[code]
        super().__init__(f"{code}: {self.message}")


def check_size(token: Any, *, limit: int = MAX_TOKEN_BYTES) -> str:
    """The token itself when it is a non-empty string of at most ``limit`` characters."""
    if not isinstance(token, str) or not token:
        raise UnreadableToken("malformed")
    if len(token) > limit:
        raise UnreadableToken("too_large")
    return token


def loads_json(data: bytes | str) -> Any:
    """``json.loads``, with every way it can fail (deep nesting included) a ``malformed``."""
    try:
        return json.loads(data)
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise UnreadableToken("malformed") from exc


def _part(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, binascii.Error) as exc:
        raise UnreadableToken("malformed") from exc
    value = loads_json(raw)
    if not isinstance(value, dict):
        raise UnreadableToken("malformed")
    return value


def read_jws(token: Any, *, limit: int = MAX_TOKEN_BYTES) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of a compact JWS, WITHOUT verifying anything (RFC 7515 7.1).

    Use them only to choose the checks (which provider, which key); ``UnreadableToken``
    when the token is too long, has not three parts, or either part is not a JSON object;
    a header without a string ``alg`` is malformed too.
    """
    check_size(token, limit=limit)
    parts = token.split(".")
    if len(parts) != 3:
        raise UnreadableToken("malformed")
    header, payload = _part(parts[0]), _part(parts[1])
    if not isinstance(header.get("alg"), str):
        raise UnreadableToken("malformed")
    return header, payload
