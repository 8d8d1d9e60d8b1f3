"""Answers about the site's own availability: readiness, and 503 (not 500) while a store is down.

- ``/healthz`` (in ``pages``) stays a cheap liveness answer;
- ``readyz`` checks the database, the shared cache (one round trip) and every provider's
  circuit breaker, and names in JSON what is down;
- ``OutageMiddleware``, first in ``MIDDLEWARE``, turns the 500 of a request that met a
  database that is stopped, restarting or busy into a 503 page (or JSON) in words, logged
  once a minute rather than a traceback per request. The exception is seen through Django's
  ``got_request_exception`` signal, which fires whichever layer raised it, in debug too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from accounts.oidc import breaker
from accounts.providers.registry import enabled_providers
from accounts.responses import loggable, wants_json
from accounts.security import shared_cache
from accounts.security.locks import cache_is_shared

logger = logging.getLogger("accounts.availability")

OUTAGE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER = 5
LOG_INTERVAL = 60.0
MESSAGE = "This site cannot reach its database for a moment. Please try again in a minute."
_last_log = {"at": 0.0, "count": 0}
_log_lock = threading.Lock()


def _is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, OUTAGE_ERRORS)


@receiver(got_request_exception)
def _remember_outage(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    import sys

    exc = sys.exc_info()[1]
    if request is not None and _is_outage(exc):
        request._database_outage = type(exc).__name__


class DatabaseOutageLogFilter(logging.Filter):
    """Drop Django's per-request traceback for a database outage: ``OutageMiddleware`` logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _is_outage(record.exc_info[1]))


def _log_outage(request: HttpRequest, reason: str) -> None:
    now = time.monotonic()
    with _log_lock:
        _last_log["count"] += 1
        if now - _last_log["at"] < LOG_INTERVAL:
            return
        _last_log["at"], count, _last_log["count"] = now, _last_log["count"], 0
    logger.error(
        "database unavailable (%s): answering 503 (%d request(s) since the last line), e.g. %s",
        reason,
        count,
        loggable(request.path),
    )


class OutageMiddleware:
    """A request that met a database outage answers 503 in words, not 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        reason = getattr(request, "_database_outage", None)
        if reason is None or response.status_code != 500:
            return response
        _log_outage(request, reason)
        return unavailable(request)


def unavailable(request: HttpRequest) -> HttpResponse:
    """The 503 answer; touches neither the session nor the user (both need the database)."""
    if wants_json(request):
        response: HttpResponse = JsonResponse(
            {"error": "database_unavailable", "message": MESSAGE}, status=503
        )
    else:
        page = render_to_string(
            "503.html",
            {
                "title": "This site is briefly unavailable",
                "message": MESSAGE,
                "code": "database_unavailable",
                "retry_url": request.get_full_path(),
            },
        )
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True
    return response


def readyz(request: HttpRequest) -> JsonResponse:
    """Whether this instance can serve: 503 naming what is down (database, cache).

    Providers whose circuit breaker is open are named too, as ``degraded``: the instance
    still serves its signed-in users, and no other instance would do better, so a provider
    outage does not take every instance out of the load balancer.
    """
    checks: dict[str, object] = {}
    down: list[str] = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
    except DatabaseError as exc:
        checks["database"] = f"down ({type(exc).__name__})"
        down.append("database")
    if cache_is_shared():
        ok, reason = shared_cache.ping()
        checks["cache"] = "ok" if ok else f"down: {reason}"
        if not ok:
            down.append("cache")
    else:
        checks["cache"] = "local to this process"
    providers = {}
    try:
        for provider in enabled_providers():
            providers[provider.slug] = "not answering" if breaker.provider_down(provider) else "ok"
    except DatabaseError:
        providers = {}  # providers from the admin need the database: already named above
    checks["providers"] = providers
    degraded = [slug for slug, state in providers.items() if state != "ok"]
    status = "unavailable" if down else ("degraded" if degraded else "ok")
    return JsonResponse(
        {"status": status, "down": down, "degraded_providers": degraded, **checks},
        status=503 if down else 200,
        headers={"Cache-Control": "no-store"},
    )
