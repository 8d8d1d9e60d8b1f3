"""``GET /metrics``: the Prometheus text format, for the allowed addresses or a bearer token.

Counters and histograms come from ``accounts.metrics`` (added up across gunicorn workers
when ``PROMETHEUS_MULTIPROC_DIR`` is set). Gauges are computed when scraped: the active
OIDC sessions per provider (one grouped count, kept for ``SESSIONS_TTL`` seconds) and the
readiness checks of ``/readyz`` (database, cache, each provider's circuit breaker), so an
alert can fire on "provider X unreachable for 2 minutes".

Who may scrape: a client address in ``METRICS_ALLOWED_IPS`` (default loopback), or a
request with ``Authorization: Bearer <METRICS_TOKEN>``. Anyone else gets a 403 in words.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from accounts import metrics
from accounts.models import OIDCSession
from accounts.oidc import breaker
from accounts.providers.registry import enabled_providers
from accounts.security import shared_cache
from accounts.security.client_info import client_ip
from accounts.security.locks import cache_is_shared

logger = logging.getLogger("accounts.metrics")

SESSIONS_TTL = 15.0
_sessions: dict[str, object] = {"at": 0.0, "counts": {}}


def _active_sessions() -> dict[str, int]:
    if time.monotonic() - float(_sessions["at"]) > SESSIONS_TTL:
        rows = OIDCSession.objects.values("provider").annotate(n=Count("pk")).order_by()
        _sessions["counts"] = {metrics.provider_label(r["provider"]): r["n"] for r in rows}
        _sessions["at"] = time.monotonic()
    return dict(_sessions["counts"])


class ScrapeCollector(Collector):
    """The gauges computed at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ready = GaugeMetricFamily(
            "oidc_ready", "1 when this check of /readyz passes, else 0", labels=["check"]
        )
        up = GaugeMetricFamily(
            "oidc_provider_up",
            "1 unless the provider's circuit breaker is open (it stopped answering)",
            labels=["provider"],
        )
        active = GaugeMetricFamily(
            "oidc_active_sessions", "OIDC sessions by provider", labels=["provider"]
        )
        try:
            counts = _active_sessions()
            ready.add_metric(["database"], 1)
        except DatabaseError:
            counts = {}
            ready.add_metric(["database"], 0)
        for provider, count in sorted(counts.items()):
            active.add_metric([provider], count)
        if cache_is_shared():
            ready.add_metric(["cache"], 1 if shared_cache.ping()[0] else 0)
        try:
            providers = enabled_providers()
        except DatabaseError:
            providers = []
        for provider in providers:
            up.add_metric([provider.slug], 0 if breaker.provider_down(provider) else 1)
        yield ready
        yield up
        yield active


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    registry.register(ScrapeCollector())
    return registry


class _ProcessMetrics(Collector):
    """This process's own counters (no multiprocess directory: runserver, one worker)."""

    def collect(self):
        yield from REGISTRY.collect()


def allowed(request: HttpRequest) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return secrets.compare_digest(header[7:].encode(), str(token).encode())
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    for entry in getattr(settings, "METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"]):
        try:
            if ip in ipaddress.ip_network(str(entry), strict=False):
                return True
        except ValueError:
            continue
    return False


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        if shared_cache.add("oidc:metrics-refused-log", 1, 60):
            logger.warning(
                "metrics refused: the caller is not in METRICS_ALLOWED_IPS and sent no valid "
                "METRICS_TOKEN (logged once a minute)"
            )
        return JsonResponse(
            {
                "error": "forbidden",
                "message": "Metrics are only served to the addresses in METRICS_ALLOWED_IPS "
                "or to a caller with the METRICS_TOKEN bearer token.",
            },
            status=403,
        )
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
