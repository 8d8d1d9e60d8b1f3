"""Prometheus metrics of sign-in: counters and histograms, with labels from closed sets.

Every label value comes from a closed set, never from request input, so that nobody can
grow the number of series: providers are the slugs the registry knows (``note_providers``),
anything else is ``(none)``; reasons are this code's own machine codes, checked for shape
and capped in number per metric (past the cap: ``other``); endpoints are a fixed list.

Under gunicorn set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, the same for every
worker): each worker writes its counts there and ``/metrics`` adds them up
(``accounts/views/metrics.py``). Without it the counts are this process's own.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

from prometheus_client import Counter, Histogram

NO_PROVIDER = "(none)"
OTHER = "other"
MAX_REASONS = 64  # distinct reason values per metric; a safety net, codes are far fewer

_known_providers: frozenset[str] = frozenset()
_origins: dict[str, str] = {}
_reasons: dict[str, set[str]] = {}
_lock = threading.Lock()
_REASON_SHAPE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

SIGN_INS = Counter(
    "oidc_sign_ins", "Sign-ins by provider, outcome and reason", ["provider", "outcome", "reason"]
)
REFRESHES = Counter(
    "oidc_refreshes", "Refresh grants by provider and outcome", ["provider", "outcome"]
)
PROVIDER_REQUESTS = Histogram(
    "oidc_provider_request_duration_seconds",
    "Calls to identity providers by provider and endpoint",
    ["provider", "endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROVIDER_FAILURES = Counter(
    "oidc_provider_request_failures",
    "Calls to identity providers that timed out, failed to connect or were not sent",
    ["provider", "endpoint", "reason"],
)
JWKS_FETCHES = Counter(
    "oidc_jwks_fetches", "JWKS fetches by provider and budget", ["provider", "budget"]
)
BACKCHANNEL = Counter(
    "oidc_backchannel_logouts",
    "Back-channel logout tokens handled or refused",
    ["provider", "outcome", "reason"],
)
SSF_EVENTS = Counter(
    "oidc_ssf_events", "Shared Signals events handled or refused", ["provider", "outcome", "event"]
)
BEARER = Counter(
    "oidc_bearer_requests",
    "API requests with an access token, accepted or refused",
    ["provider", "outcome", "reason"],
)
AUDIT_EVENTS = Counter(
    "oidc_audit_events", "Audit events by kind and outcome", ["event", "outcome"]
)

EVENTS = {
    "sign_in", "sign_out", "refresh", "admin_step_up", "provider_added", "provider_changed",
    "provider_disabled", "sync_run", "bearer_refused", "shared_signal",
}  # fmt: skip
OUTCOMES = {"success", "failure", "accepted", "refused"}
ENDPOINTS = (
    ("/.well-known/openid-configuration", "discovery"),
    ("/.well-known/ssf-configuration", "ssf_configuration"),
    ("introspect", "introspection"),
    ("revo", "revocation"),
    ("/par", "par"),
    ("pushed", "par"),
    ("userinfo", "userinfo"),
    ("/me", "userinfo"),
    ("jwks", "jwks"),
    ("certs", "jwks"),
    ("token", "token"),
    ("stream", "ssf_stream"),
    ("poll", "ssf_poll"),
)


def note_providers(providers: dict[str, list[str]]) -> None:
    """The registry's providers: slug -> URLs (issuer, endpoints) whose origin is theirs."""
    global _known_providers
    origins = {}
    for slug, urls in providers.items():
        for url in urls:
            origins.setdefault(_origin(url), slug)
    with _lock:
        _known_providers = frozenset(providers)
        _origins.clear()
        _origins.update(origins)


def provider_label(slug: str | None) -> str:
    return slug if slug in _known_providers else NO_PROVIDER


def reason_label(metric: str, reason: str | None) -> str:
    reason = str(reason or "none")
    if not _REASON_SHAPE.match(reason):
        return OTHER
    seen = _reasons.setdefault(metric, set())
    if reason in seen:
        return reason
    with _lock:
        if len(seen) >= MAX_REASONS:
            return OTHER
        seen.add(reason)
    return reason


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def endpoint_label(url: str) -> str:
    path = urlsplit(url).path.lower()
    for marker, name in ENDPOINTS:
        if marker in path:
            return name
    return OTHER


def provider_request(url: str, seconds: float | None, *, failure: str = "") -> None:
    """One call to a provider: its duration, or why it failed (``failure``)."""
    provider = _origins.get(_origin(url), NO_PROVIDER)
    endpoint = endpoint_label(url)
    if seconds is not None:
        PROVIDER_REQUESTS.labels(provider, endpoint).observe(seconds)
    if failure:
        PROVIDER_FAILURES.labels(provider, endpoint, reason_label("provider", failure)).inc()


def refresh(provider: str, outcome: str) -> None:
    REFRESHES.labels(provider_label(provider), reason_label("refresh", outcome)).inc()


def jwks_fetch(provider: str, budget: str) -> None:
    JWKS_FETCHES.labels(provider_label(provider), budget).inc()


def bearer_accepted(provider: str | None, *, dpop: bool = False) -> None:
    BEARER.labels(provider_label(provider), "accepted", "dpop" if dpop else "bearer").inc()


def audit_event(event: str, outcome: str, reason: str, provider: str | None) -> None:
    """Count an audited event, and the named metric it belongs to."""
    if event not in EVENTS or outcome not in OUTCOMES:
        return
    AUDIT_EVENTS.labels(event, outcome).inc()
    slug = provider_label(provider)
    if event == "sign_in":
        SIGN_INS.labels(slug, outcome, reason_label("sign_in", reason or outcome)).inc()
    elif event == "bearer_refused":
        BEARER.labels(slug, "refused", reason_label("bearer", reason)).inc()
    elif event == "shared_signal":
        handled = "handled" if outcome == "success" else "refused"
        SSF_EVENTS.labels(slug, handled, reason_label("ssf", reason)).inc()
    elif event == "sign_out" and str(reason or "").startswith("backchannel"):
        BACKCHANNEL.labels(slug, outcome, reason_label("backchannel", reason)).inc()
