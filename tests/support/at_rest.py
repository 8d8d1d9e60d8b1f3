"""Look for secrets in a database dump: as text, and inside base64 or Django-signed values.

``dump_texts`` reads every row of every table as text; ``readable_forms`` adds what a
thief could decode from each value (base64 in either alphabet, zlib-compressed Django
``signing`` payloads, Django session data); ``find_secrets`` says which secrets show.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import zlib
from collections.abc import Iterable

from django.contrib.sessions.models import Session
from django.db import connection

_PIECES = re.compile(r"[:$\s\"',=&;]+")


def dump_texts() -> list[str]:
    """Every non-null cell of every table, as text (what ``pg_dump`` or ``.dump`` would show)."""
    texts: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                texts.extend(_text(value) for value in row if value is not None)
    # Django's own reading of each session, in case its encoding changes.
    texts.extend(repr(session.get_decoded()) for session in Session.objects.all())
    return texts


def _text(value: object) -> str:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("latin-1")
    return str(value)


def _decoded(piece: str) -> list[str]:
    """What a piece of text decodes to: base64 (either alphabet), then zlib when packed."""
    out: list[str] = []
    compressed = piece.startswith(".")
    body = piece.lstrip(".")
    if len(body) < 8:
        return out
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            raw = decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            continue
        if compressed:
            with contextlib.suppress(zlib.error):
                raw = zlib.decompress(raw)
        out.append(raw.decode("latin-1"))
    return out


def readable_forms(text: str, depth: int = 3) -> list[str]:
    """The text and everything decodable from it (and from that, ``depth`` levels down)."""
    forms, frontier = [text], [text]
    for _ in range(depth):
        found: list[str] = []
        for item in frontier:
            for piece in {item, *_PIECES.split(item)}:
                found.extend(_decoded(piece))
        forms.extend(found)
        frontier = found
    return forms


def find_secrets(secrets: Iterable[str], texts: Iterable[str] | None = None) -> set[str]:
    """The secrets that appear in the dump, in clear or decodable."""
    secrets = [s for s in secrets if s]
    shown: set[str] = set()
    for text in dump_texts() if texts is None else texts:
        for form in readable_forms(text):
            shown.update(secret for secret in secrets if secret in form)
    return shown
