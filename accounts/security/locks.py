"""Locks for work that must run once across every process: on the shared cache, or a file.

The cache lock serves deployments with Redis. Without a shared cache, the file lock serves
SQLite, whose processes all run on the machine that holds the database file: ``flock`` is
held per open file, so it serialises threads, runserver and every gunicorn worker alike,
and the kernel drops it when its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.core.cache import cache, caches


class LockTimeout(Exception):
    """Another holder kept the lock longer than we were willing to wait."""


class CacheUnavailable(Exception):
    """The shared cache errored while taking the lock: the caller falls back to another lock."""


def cache_is_shared() -> bool:
    """Whether the default cache is seen by every process (not local memory or a dummy)."""
    # ``django.core.cache.cache`` is a proxy: look at the backend object behind it.
    module = type(caches["default"]).__module__
    return not module.endswith(("locmem", "dummy"))


@contextlib.contextmanager
def cache_lock(key: str, *, ttl: float, wait: float) -> Iterator[None]:
    """Hold ``key`` in the cache for at most ``ttl`` seconds; give up after ``wait``.

    The lock expires by itself if its holder dies. Releasing deletes it only while it is
    still ours, so a holder that overran ``ttl`` cannot release somebody else's lock. A cache
    that errors raises ``CacheUnavailable``: the caller takes another kind of lock.
    """
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while not _add(key, token, ttl):
        if time.monotonic() > deadline:
            raise LockTimeout(key)
        time.sleep(0.05)
    try:
        yield
    finally:
        _release(key, token)


def _add(key: str, token: str, ttl: float) -> bool:
    try:
        return bool(cache.add(key, token, ttl))
    except Exception as exc:  # the client's own error types: any means the cache is down
        raise CacheUnavailable(f"{type(exc).__name__} taking a cache lock") from exc


def _release(key: str, token: str) -> None:
    """Delete the lock while it is still ours; a cache gone meanwhile lets it expire."""
    with contextlib.suppress(Exception):
        if cache.get(key) == token:
            cache.delete(key)


# Keys are spread over this many lock files, so the directory stays small whatever the
# number of sessions; two sessions sharing a file merely wait for each other.
FILE_LOCK_STRIPES = 256


def _lock_dir(namespace: str) -> Path:
    digest = hashlib.sha256(namespace.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"oidc-locks-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(namespace: str, key: str, *, wait: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` for ``key`` among every process of ``namespace``.

    ``namespace`` names what the processes share (the SQLite file's path). Raise
    ``LockTimeout`` after ``wait`` seconds.
    """
    stripe = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % FILE_LOCK_STRIPES
    fd = os.open(_lock_dir(namespace) / f"{stripe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(key) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
