"""Reading an untrusted Security Event Token without trusting its size or its shape.

The body is capped before anything decodes it, by the one safe reader every token parser
uses (``accounts.oidc.jose_safe.read_jws``); every decoding failure, ``RecursionError`` of a
deeply nested JSON included, becomes one ``SetRefused`` (``invalid_request``) in words.
"""

from __future__ import annotations

from typing import Any

from accounts.oidc.jose_safe import UnreadableToken, read_jws
from accounts.ssf.errors import SetRefused

# RFC 8935 does not bound a SET; real ones are well under 2 KB.
MAX_BODY_BYTES = 16 * 1024


def compact_parts(body: bytes | str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The token text, JOSE header and claims of a JWS compact serialisation, unverified."""
    if isinstance(body, bytes):
        if len(body) > MAX_BODY_BYTES:
            raise too_large()
        try:
            body = body.decode("ascii")
        except UnicodeDecodeError as exc:
            raise malformed() from exc
    token = body.strip()
    try:
        header, claims = read_jws(token, limit=MAX_BODY_BYTES)
    except UnreadableToken as exc:
        raise (too_large() if exc.code == "too_large" else malformed()) from exc
    return token, header, claims


def too_large() -> SetRefused:
    return SetRefused(
        "invalid_request",
        f"The request body is larger than {MAX_BODY_BYTES // 1024} KB, too large for a "
        "Security Event Token.",
        reason="too_large",
    )


def malformed() -> SetRefused:
    return SetRefused(
        "invalid_request",
        "The request body is not a readable Security Event Token (a signed JWT).",
        reason="malformed",
    )
