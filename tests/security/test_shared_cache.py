"""shared_cache.py: a cache that errors degrades to the process, logged once a minute."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import cache

from accounts.security import shared_cache


class Down(Exception):
    """What a Redis client raises when the server is gone."""


@pytest.fixture
def broken_cache(monkeypatch):
    def fail(*args, **kwargs):
        raise Down("connection refused")

    for name in ("get", "set", "add", "delete", "incr"):
        monkeypatch.setattr(cache, name, fail)
    monkeypatch.setattr(shared_cache, "_state", {"last_error": 0.0, "last_log": 0.0, "failures": 0})


def test_a_working_cache_is_used_and_nothing_kept_locally_unless_asked():
    shared_cache.set("k", {"a": 1}, 60)
    assert cache.get("k") == {"a": 1}
    assert shared_cache.get("k") == {"a": 1}
    assert shared_cache.local.get("k") is None
    assert shared_cache.get("k", remember=True) == {"a": 1}
    assert shared_cache.local.get("k") == {"a": 1}


def test_a_remembered_value_outlives_the_cache(broken_cache):
    shared_cache.local.set("doc", {"issuer": "x"}, 60)
    assert shared_cache.get("doc", remember=True) == {"issuer": "x"}
    assert shared_cache.get("missing", "fallback") == "fallback"


def test_every_call_degrades_and_the_outage_is_logged_once(broken_cache, caplog):
    with caplog.at_level(logging.WARNING, logger="accounts.cache"):
        shared_cache.set("a", 1, 60)
        assert shared_cache.get("a") == 1  # from the process
        assert shared_cache.add("lock", "me", 60) is True
        assert shared_cache.add("lock", "you", 60) is False  # still a lock, per process
        assert shared_cache.incr("lock-count", 1) == 1
        shared_cache.delete("a")
        assert shared_cache.get("a") is None
    lines = [r.getMessage() for r in caplog.records if r.name == "accounts.cache"]
    assert len(lines) == 1, lines
    assert "shared cache unavailable (Down on set" in lines[0]
    assert shared_cache.cache_errors()
    assert shared_cache.ping() == (False, "the cache is not answering (Down)")


def test_the_local_store_is_bounded(monkeypatch):
    store = shared_cache._LocalStore(max_entries=3)
    for index in range(10):
        store.set(f"k{index}", index, 60)
    assert [store.get(f"k{i}") for i in range(10)] == [None] * 7 + [7, 8, 9]


def test_a_local_entry_expires():
    store = shared_cache._LocalStore()
    store.set("k", 1, 0.01)
    import time

    time.sleep(0.03)
    assert store.get("k") is None
    assert store.add("k", 2, 60) is True
