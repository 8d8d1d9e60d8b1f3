"""A circuit breaker per provider host: a provider that stalls does not stall the site.

Every call to a provider goes through ``http.provider_request``, which asks ``allow`` first
and reports ``success`` or ``failure`` after. After ``OIDC_BREAKER_THRESHOLD`` consecutive
timeouts or connection errors at one origin (scheme, host and port: a provider's endpoints
live there), the breaker opens: calls fail at once with ``ProviderError`` for
``OIDC_BREAKER_INTERVAL`` seconds, doubled after each failed probe up to
``OIDC_BREAKER_MAX_INTERVAL``. Then one call, the probe, goes through; its success closes
the breaker. The state is kept per process and shared through the cache as a hint, so that
one process's discovery spares the others their own timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from accounts.conf import oidc_settings
from accounts.providers.provider import Provider
from accounts.security import shared_cache

logger = logging.getLogger("accounts.breaker")


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0  # wall-clock time: comparable across processes
    interval: float = 0.0
    probing: bool = False


_states: dict[str, _State] = {}
_lock = threading.Lock()


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _hint_key(where: str) -> str:
    return f"oidc:breaker:{where}"


def allow(url: str) -> bool:
    """Whether a call to ``url`` may go out now (the probe of an open breaker may)."""
    where = origin(url)
    now = time.time()
    with _lock:
        state = _states.setdefault(where, _State())
        if state.open_until <= now and not state.probing and state.failures == 0:
            hinted = _hinted_open_until(where)
            if hinted > now:  # another process found it down: spare our own timeout
                state.open_until = hinted
                state.interval = state.interval or oidc_settings.OIDC_BREAKER_INTERVAL
                state.failures = oidc_settings.OIDC_BREAKER_THRESHOLD
        if state.open_until <= now:
            if state.failures < oidc_settings.OIDC_BREAKER_THRESHOLD:
                return True  # closed
            if state.probing:
                return False  # one probe at a time
            state.probing = True
            return True
        return False


def _hinted_open_until(where: str) -> float:
    value = shared_cache.get(_hint_key(where))
    return float(value) if isinstance(value, (int, float)) else 0.0


def success(url: str) -> None:
    where = origin(url)
    with _lock:
        state = _states.get(where)
        if state is None or (state.failures == 0 and not state.probing):
            return
        was_open = state.failures >= oidc_settings.OIDC_BREAKER_THRESHOLD
        _states[where] = _State()
    if was_open:
        shared_cache.delete(_hint_key(where))
        logger.warning("provider at %s answers again: circuit closed", where)


def failure(url: str) -> None:
    """A timeout or a connection error at ``url``."""
    where = origin(url)
    now = time.time()
    with _lock:
        state = _states.setdefault(where, _State())
        state.failures += 1
        if state.failures < oidc_settings.OIDC_BREAKER_THRESHOLD:
            return
        if state.probing or not state.interval:
            base = oidc_settings.OIDC_BREAKER_INTERVAL
            grown = state.interval * 2 if state.interval else base
            state.interval = min(grown, oidc_settings.OIDC_BREAKER_MAX_INTERVAL)
        state.probing = False
        state.open_until = now + state.interval
        until, interval, failures = state.open_until, state.interval, state.failures
    shared_cache.set(_hint_key(where), until, max(1, int(interval) + 1))
    logger.warning(
        "provider at %s is not answering (%d consecutive failures): circuit open for %.0f s",
        where,
        failures,
        interval,
    )


def is_open(url: str) -> bool:
    """Whether calls to ``url``'s origin are being refused right now (for pages and /readyz)."""
    where = origin(url)
    now = time.time()
    with _lock:
        state = _states.get(where)
        if state is not None and state.open_until > now:
            return True
    return _hinted_open_until(where) > now


def provider_down(provider: Provider) -> bool:
    """Whether the breaker of the provider's issuer or of an endpoint set by hand is open."""
    urls = [provider.issuer, *(url for url in provider.endpoints.values() if url)]
    return any(is_open(url) for url in urls)


def reset() -> None:
    """Forget every breaker of this process (tests)."""
    with _lock:
        _states.clear()
