"""The shared cache as an accelerator: every call degrades to this process when it errors.

Redis (``CACHE_URL``) lets every process share discovery documents, JWKS, locks and
counters. When it is down or restarting, its client raises (``redis.ConnectionError``,
timeouts): here each call then answers from a small process-local store instead, so no
request fails because the cache did. The degradation is logged once a minute, not per call.

Use these functions instead of ``django.core.cache.cache`` for anything a request path
reads or writes. ``cache_errors()`` tells whether the last minute saw a failure
(``/readyz`` makes a round trip of its own instead: it reports the cache as it is now).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from django.core.cache import cache

logger = logging.getLogger("accounts.cache")

# The local store is bounded: an attacker who makes us remember keys (one per junk token)
# while Redis is down evicts old entries instead of growing the process.
LOCAL_MAX_ENTRIES = 10_000
LOG_INTERVAL = 60.0
# How long a remembered copy may stand in for the cache (documents carry their own age).
REMEMBER_SECONDS = 7 * 24 * 3600

_MISSING = object()


class _LocalStore:
    """A tiny thread-safe TTL store with LRU eviction."""

    def __init__(self, max_entries: int = LOCAL_MAX_ENTRIES) -> None:
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return default
            expires, value = item
            if expires and expires < time.monotonic():
                del self._data[key]
                return default
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: Any, timeout: float | None) -> None:
        expires = time.monotonic() + timeout if timeout else 0.0
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def add(self, key: str, value: Any, timeout: float | None) -> bool:
        with self._lock:
            item = self._data.get(key)
            if item is not None and not (item[0] and item[0] < time.monotonic()):
                return False
        self.set(key, value, timeout)
        return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str, delta: int = 1) -> int:
        with self._lock:
            item = self._data.get(key)
            expires, value = item if item is not None else (0.0, 0)
            value = int(value) + delta
            self._data[key] = (expires, value)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local = _LocalStore()
_state = {"last_error": 0.0, "last_log": 0.0, "failures": 0}
_state_lock = threading.Lock()


def _degraded(operation: str, exc: BaseException) -> None:
    """Note a cache failure; log it at most once per ``LOG_INTERVAL``."""
    now = time.monotonic()
    with _state_lock:
        _state["last_error"] = now
        _state["failures"] += 1
        if now - _state["last_log"] < LOG_INTERVAL:
            return
        _state["last_log"] = now
        failures, _state["failures"] = _state["failures"], 0
    logger.warning(
        "shared cache unavailable (%s on %s, %d failure(s) in the last minute): "
        "serving from this process until it answers again",
        type(exc).__name__,
        operation,
        failures,
    )


def cache_errors(within: float = LOG_INTERVAL) -> bool:
    """Whether a cache call failed in the last ``within`` seconds."""
    last = _state["last_error"]
    return bool(last) and time.monotonic() - last < within


def get(key: str, default: Any = None, *, remember: bool = False) -> Any:
    """The cached value, else the process-local copy when the cache errors.

    ``remember``: keep what the cache answered in this process too (bounded), so that a
    later outage still finds it: discovery documents and JWKS ride out a Redis restart.
    """
    try:
        value = cache.get(key, _MISSING)
    except Exception as exc:  # any client error is a cache outage here
        _degraded("get", exc)
        return local.get(key, default)
    if value is _MISSING:
        return local.get(key, default) if remember else default
    if remember:
        local.set(key, value, REMEMBER_SECONDS)
    return value


def set(key: str, value: Any, timeout: float | None, *, keep_local: bool = False) -> None:
    """Store ``value``; with ``keep_local`` also in this process, to outlive a cache outage."""
    if keep_local:
        local.set(key, value, timeout)
    try:
        cache.set(key, value, timeout)
    except Exception as exc:
        _degraded("set", exc)
        local.set(key, value, timeout)


def add(key: str, value: Any, timeout: float | None) -> bool:
    """Set ``key`` only if absent; when the cache errors, do so in this process only."""
    try:
        return bool(cache.add(key, value, timeout))
    except Exception as exc:
        _degraded("add", exc)
        return local.add(key, value, timeout)


def delete(key: str) -> None:
    local.delete(key)
    try:
        cache.delete(key)
    except Exception as exc:
        _degraded("delete", exc)


def incr(key: str, delta: int = 1) -> int:
    """Increment an existing counter (created by ``add``); locally when the cache errors."""
    try:
        return int(cache.incr(key, delta))
    except ValueError:
        raise  # the key is gone: the caller's own logic handles it, as with Django's cache
    except Exception as exc:
        _degraded("incr", exc)
        return local.incr(key, delta)


def ping() -> tuple[bool, str]:
    """One round trip to the cache, for ``/readyz``: (ok, reason in words)."""
    key = "readyz:ping"
    try:
        cache.set(key, 1, 10)
        if cache.get(key) != 1:
            return False, "the cache did not return what was just stored"
    except Exception as exc:
        _degraded("ping", exc)
        return False, f"the cache is not answering ({type(exc).__name__})"
    return True, "ok"
