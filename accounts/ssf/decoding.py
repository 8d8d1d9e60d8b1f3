"""Reading an untrusted Security Event Token without trusting its size or its shape.

The body is capped before anything decodes it; every decoding failure, ``RecursionError``
of a deeply nested JSON included, becomes one ``SetRefused`` (``invalid_request``) in words.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from accounts.ssf.errors import SetRefused

# RFC 8935 does not bound a SET; real ones are well under 2 KB.
MAX_BODY_BYTES = 16 * 1024


def _b64_json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    return json.loads(raw.decode("utf-8"))


def compact_parts(body: bytes | str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The token text, JOSE header and claims of a JWS compact serialisation, unverified."""
    if isinstance(body, bytes):
        if len(body) > MAX_BODY_BYTES:
            raise too_large()
        try:
            body = body.decode("ascii")
        except UnicodeDecodeError as exc:
            raise malformed() from exc
    if len(body) > MAX_BODY_BYTES:
        raise too_large()
    token = body.strip()
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise malformed()
    try:
        header, claims = _b64_json(parts[0]), _b64_json(parts[1])
    except (ValueError, TypeError, UnicodeError, binascii.Error, RecursionError) as exc:
        raise malformed() from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise malformed()
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
