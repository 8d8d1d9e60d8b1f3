"""Why a Security Event Token was refused, as RFC 8935 section 2.4 names it.

``err`` is the error code the transmitter reads, ``description`` says it in words,
``reason`` is the finer machine code of our log line and audit row.
"""

from __future__ import annotations


class SetRefused(Exception):
    """A SET this site will not act on; ``status`` is 400, or 401/403 for the channel."""

    def __init__(self, err: str, description: str, *, reason: str, status: int = 400) -> None:
        super().__init__(f"{err}: {description}")
        self.err = err
        self.description = description
        self.reason = reason
        self.status = status

    def body(self) -> dict[str, str]:
        return {"err": self.err, "description": self.description}
