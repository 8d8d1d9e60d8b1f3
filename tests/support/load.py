"""Steady load on a deployment while a fault is injected: what users and probes saw.

``Load(site, sessions)`` runs one thread per signed-in session, each asking ``/api/me/``
about four times a second at the deployment's instances in turn, and one thread asking
``/healthz`` anonymously ten times a second. ``stop()`` returns a ``Seen`` with every answer:
the 5xx count, the sessions whose answers turned to 401 (lost), the probe's latencies.
Only ever talks to the deployment's loopback addresses; bounded by ``stop()``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import requests

from tests.support.signin import new_session


@dataclass
class Seen:
    statuses: list[tuple[float, int, int]] = field(default_factory=list)  # (t, session, code)
    health: list[float] = field(default_factory=list)  # /healthz latencies, seconds
    errors: list[str] = field(default_factory=list)

    def count(self, predicate) -> int:
        return sum(1 for _, _, code in self.statuses if predicate(code))

    @property
    def server_errors(self) -> list[tuple[float, int, int]]:
        return [entry for entry in self.statuses if entry[2] >= 500]

    @property
    def unauthorized(self) -> set[int]:
        return {index for _, index, code in self.statuses if code == 401}

    def p99(self) -> float:
        values = sorted(self.health)
        return values[int(len(values) * 0.99) - 1] if values else float("inf")


class Load:
    def __init__(
        self, urls: list[str], sessions: list[requests.Session], *, interval: float = 0.25
    ) -> None:
        self.urls = urls
        self.sessions = sessions
        self.interval = interval
        self.seen = Seen()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._user, args=(index,), daemon=True)
            for index in range(len(sessions))
        ]
        self._threads.append(threading.Thread(target=self._probe, daemon=True))
        self.began = time.monotonic()

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def _user(self, index: int) -> None:
        http = self.sessions[index]
        turn = index
        while not self._stop.is_set():
            url = self.urls[turn % len(self.urls)] + "/api/me/"
            turn += 1
            try:
                code = http.get(url, timeout=40, allow_redirects=False).status_code
            except requests.RequestException as exc:
                with self._lock:
                    self.seen.errors.append(type(exc).__name__)
                code = 0
            with self._lock:
                self.seen.statuses.append((time.monotonic() - self.began, index, code))
            self._stop.wait(self.interval)

    def _probe(self) -> None:
        http = new_session()
        turn = 0
        while not self._stop.is_set():
            url = self.urls[turn % len(self.urls)] + "/healthz"
            turn += 1
            began = time.monotonic()
            with contextlib.suppress(requests.RequestException):
                http.get(url, timeout=30)
            with self._lock:
                self.seen.health.append(time.monotonic() - began)
            self._stop.wait(0.1)

    def stop(self) -> Seen:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        return self.seen


def lost_sessions(urls: list[str], sessions: list[requests.Session]) -> list[int]:
    """The indexes of sessions that ``/api/me/`` no longer knows (after the fault)."""
    lost = []
    for index, http in enumerate(sessions):
        answer = http.get(urls[index % len(urls)] + "/api/me/", timeout=40)
        if answer.status_code != 200:
            lost.append(index)
    return lost
