"""A JSON-lines file of claim sets, for offline imports.

One object per line, in claim names::

    {"sub": "8f2c...", "preferred_username": "alice", "email": "alice@example.org",
     "email_verified": true, "given_name": "Alice", "family_name": "Liddell",
     "groups": ["staff"], "active": true}

``sub`` is required and is the subject; ``active`` defaults to true. Blank lines are
ignored; a line that is not JSON or not a valid claim set is skipped and reported by
its line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from accounts.sync.errors import SourceError
from accounts.sync.records import Record, SkippedRecord, record_from_claims


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


class JsonLinesSource:
    """Read a JSON-lines file lazily, one record per line."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.total: int | None = None

    def records(self) -> Iterator[Record]:
        try:
            self.total = _count_lines(self.path)
            handle = self.path.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                ref = f"line {number}"
                try:
                    data = json.loads(line)
                except ValueError:
                    yield SkippedRecord(ref=ref, reason="invalid JSON")
                    continue
                yield record_from_claims(data, ref=ref)
