"""Content-Security-Policy on every page (django-csp 4), and the endpoint browsers report to.

The policy itself is in ``project/settings.py`` (``CONTENT_SECURITY_POLICY``, or
``CONTENT_SECURITY_POLICY_REPORT_ONLY`` with ``DJANGO_CSP_REPORT_ONLY=1``). This middleware
adds to its ``form-action`` the origins of the providers the site sends a browser to after
a form (the work-email form and sign-in lead to an authorization endpoint, the sign-out
form to an end-session endpoint): their issuers' and their configured endpoints' origins,
read from the registry without any network call. A view that sets its own policy keeps it
(front-channel logout: ``frame-ancestors`` of the provider only).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.oidc.jose_safe import UnreadableToken, loads_json
from accounts.providers.registry import enabled_providers
from accounts.responses import loggable
from accounts.security import shared_cache

logger = logging.getLogger("accounts.csp")

FORM_TARGETS = ("authorization_endpoint", "end_session_endpoint")
MAX_REPORT_BYTES = 16 * 1024
LOG_WINDOW = 60  # seconds: one log line per violated directive and window


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def provider_form_origins() -> list[str]:
    """The origins a form of this site may end up at: the enabled providers' sign-in and out."""
    origins: list[str] = []
    for provider in enabled_providers():
        urls = [provider.issuer, *(provider.endpoints.get(name, "") for name in FORM_TARGETS)]
        origins += [o for o in map(_origin, urls) if o and o not in origins]
    return origins


class SiteCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with the providers' origins added to ``form-action``."""

    def get_policy_parts(
        self, request: HttpRequest, response: Any, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        origins = provider_form_origins()
        if origins:
            parts.update = {**(parts.update or {})}
            parts.update["form-action"] = [*parts.update.get("form-action", ()), *origins]
        return parts


@csrf_exempt
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """``POST /csp-report/``: a browser's CSP violation report, logged once a minute per kind.

    Anybody can post here: the body is capped, read without ever raising, and only the
    violated directive and the blocked URL's origin are logged, once per directive and
    minute. Always ``204``.
    """
    body = request.body[: MAX_REPORT_BYTES + 1]
    if len(body) > MAX_REPORT_BYTES:
        return HttpResponse(status=204)
    try:
        report = loads_json(body or b"{}")
    except UnreadableToken:
        report = {}
    found = report.get("csp-report") if isinstance(report, dict) else None
    found = found if isinstance(found, dict) else {}
    directive = str(found.get("effective-directive") or found.get("violated-directive") or "-")
    directive = directive.split()[0][:40] if directive.split() else "-"
    blocked = str(found.get("blocked-uri") or "-")
    minute = int(time.time() // LOG_WINDOW)
    if shared_cache.add(f"oidc:csp-report:{directive}:{minute}", 1, LOG_WINDOW):
        logger.warning(
            "csp violation: directive=%s blocked=%s page=%s (logged once a minute per directive)",
            loggable(directive),
            loggable(_origin(blocked) or blocked[:40]),
            loggable(urlsplit(str(found.get("document-uri") or "")).path[:100] or "-"),
        )
    return HttpResponse(status=204)
