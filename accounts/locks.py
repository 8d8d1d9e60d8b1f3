"""A lock on the shared cache, for work that must run once across every process."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

from django.core.cache import cache, caches


class LockTimeout(Exception):
    """Another holder kept the lock longer than we were willing to wait."""


def cache_is_shared() -> bool:
    """Whether the default cache is seen by every process (not local memory or a dummy)."""
    # ``django.core.cache.cache`` is a proxy: look at the backend object behind it.
    module = type(caches["default"]).__module__
    return not module.endswith(("locmem", "dummy"))


@contextlib.contextmanager
def cache_lock(key: str, *, ttl: float, wait: float) -> Iterator[None]:
    """Hold ``key`` in the cache for at most ``ttl`` seconds; give up after ``wait``.

    The lock expires by itself if its holder dies. Releasing deletes it only while it is
    still ours, so a holder that overran ``ttl`` cannot release somebody else's lock.
    """
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while not cache.add(key, token, ttl):
        if time.monotonic() > deadline:
            raise LockTimeout(key)
        time.sleep(0.05)
    try:
        yield
    finally:
        if cache.get(key) == token:
            cache.delete(key)
