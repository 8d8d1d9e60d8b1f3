"""One sync run at a time.

On PostgreSQL a session-level advisory lock (``pg_try_advisory_lock``): it needs no table,
and the server drops it when the process dies, so a killed run never leaves a stale lock.
Elsewhere ``cache.add`` on a key that expires after ``CACHE_LOCK_SECONDS``: this needs a
cache shared by every process (Redis via ``CACHE_URL``); with the local-memory cache it
only guards one process.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache
from django.db import DatabaseError, connection

from accounts.sync.errors import SyncLocked

logger = logging.getLogger(__name__)

LOCK_NAME = "accounts.sync_users"
CACHE_LOCK_SECONDS = 6 * 3600


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from a lock name."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _advisory_lock(name: str) -> Iterator[None]:
    key = advisory_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (acquired,) = cursor.fetchone()
    if not acquired:
        raise SyncLocked("another sync_users run is in progress (PostgreSQL advisory lock held)")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except DatabaseError:  # the session ends soon and takes the lock with it
            logger.warning("could not release the sync lock %s", name)


@contextmanager
def _cache_lock(name: str) -> Iterator[None]:
    key = f"lock:{name}"
    token = uuid.uuid4().hex
    if not cache.add(key, token, CACHE_LOCK_SECONDS):
        raise SyncLocked("another sync_users run is in progress (cache lock held)")
    try:
        yield
    finally:
        if cache.get(key) == token:
            cache.delete(key)


@contextmanager
def sync_lock(name: str = LOCK_NAME) -> Iterator[None]:
    """Hold the sync lock for the block; raise ``SyncLocked`` when another run has it."""
    lock = _advisory_lock if connection.vendor == "postgresql" else _cache_lock
    with lock(name):
        yield
