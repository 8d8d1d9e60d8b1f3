"""Why a sync run stopped. Each error carries the report of what was done before it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.sync.report import SyncReport


class SyncError(Exception):
    """A run that could not complete; ``report`` holds what it committed until then."""

    def __init__(self, message: str, *, report: SyncReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class SyncLocked(SyncError):
    """Another run holds the sync lock."""


class SourceError(SyncError):
    """The directory could not be read (network, authentication, unexpected answer)."""


class SyncAborted(SyncError):
    """The safety check stopped the run before it deactivated users."""
