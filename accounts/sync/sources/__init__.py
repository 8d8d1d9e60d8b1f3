"""Directory sources. Each yields ``DirectoryUser`` / ``SkippedRecord`` records lazily.

Subjects (what becomes ``OIDCIdentity.subject``; it must equal the ``sub`` the provider puts
in ID tokens, or sign-in and sync would make two accounts of one person):

- ``file``: the ``sub`` of each JSON line.
- ``keycloak``: the user's ``id``, which is what Keycloak puts in ``sub``.
- ``scim``: ``externalId`` when set, else ``id`` (see ``sources.scim``);
  ``OIDC_SCIM_SUBJECT_ATTRIBUTE = "id"`` pins it to ``id``.

Sources may import the sync's records and errors, the provider calls of ``accounts.oidc``
and the settings; they never write users (that is ``sync.writes``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from accounts.conf import oidc_settings
from accounts.providers.provider import Provider
from accounts.sync.errors import SyncError
from accounts.sync.records import Record

SOURCE_KINDS = ("scim", "keycloak", "file")


class DirectorySource(Protocol):
    """What the engine needs from a source."""

    name: str
    total: int | None  # how many records to expect, once known (for the progress bar)

    def records(self) -> Iterator[Record]: ...


def source_build(
    *,
    kind: str,
    path: str | Path | None = None,
    page_size: int | None = None,
    provider: Provider | None = None,
) -> DirectorySource:
    """Build the source ``kind`` from the settings (and ``path`` for ``file``).

    SCIM and Keycloak fetch their client-credentials token from ``provider`` (default when
    not given).
    """
    size = int(page_size or oidc_settings.OIDC_SYNC_BATCH_SIZE)
    if kind == "file":
        from accounts.sync.sources.jsonl import JsonLinesSource

        if not path:
            raise SyncError("--source file needs --file PATH")
        return JsonLinesSource(Path(path))
    if kind == "scim":
        from accounts.sync.sources.scim import scim_source_from_settings

        return scim_source_from_settings(page_size=size, provider=provider)
    if kind == "keycloak":
        from accounts.sync.sources.keycloak import keycloak_source_from_settings

        return keycloak_source_from_settings(page_size=size, provider=provider)
    raise SyncError(f"unknown source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
