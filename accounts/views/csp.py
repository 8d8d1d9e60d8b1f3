"""Content-Security-Policy on every page (django-csp 4), and the endpoint browsers report to.

The policy itself is in ``project/settings.py`` (``CONTENT_SECURITY_POLICY``, or
``CONTENT_SECURITY_POLICY_REPORT_ONLY`` with ``DJANGO_CSP_REPORT_ONLY=1``). This middleware
adds to its ``form-action`` the origins of the providers the site sends a browser to after
a form (the work-email form and sign-in lead to an authorization endpoint, the sign-out
form to an end-session endpoint): their issuers' and their configured endpoints' origins,
read from the registry without any network call. A view that sets its own policy keeps it
(front-channel logout: ``frame-ancestors`` of the provider only).

The header is the same on every response but for the nonce, so it is built once per policy
setting and set of providers, with a mark where each request's nonce goes (django-csp builds
it twice per response, from the settings). Responses with a policy of their own
(``csp_update``, ``csp_replace``, ``csp_override``) still go through django-csp.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from csp.utils import build_policy
from django.conf import settings
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
NONCE_MARK = "csp-nonce-of-this-request"  # in a built header, replaced by the request's nonce
# What django-csp's decorators set on a response that has its own policy.
PER_VIEW = tuple(
    f"_csp_{kind}{ro}" for kind in ("config", "update", "replace") for ro in ("", "_ro")
)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


# (the provider objects, their origins): one tuple, swapped whole (threads).
_origins_of: list[tuple[tuple[Any, ...], tuple[str, ...]]] = [((), ())]


def provider_form_origins() -> list[str]:
    """The origins a form of this site may end up at: the enabled providers' sign-in and out."""
    providers = enabled_providers()
    known, found = _origins_of[0]  # the same provider objects: the same origins
    if len(known) == len(providers) and all(a is b for a, b in zip(known, providers, strict=True)):
        return list(found)
    origins: list[str] = []
    for provider in providers:
        urls = [provider.issuer, *(provider.endpoints.get(name, "") for name in FORM_TARGETS)]
        origins += [o for o in map(_origin, urls) if o and o not in origins]
    _origins_of[0] = (tuple(providers), tuple(origins))
    return origins


# (with a nonce, origins) -> (policy setting, report-only setting, the built headers)
_built: dict[tuple[bool, tuple[str, ...]], tuple[Any, Any, tuple[tuple[str, str, Any], ...]]] = {}


def site_headers(with_nonce: bool) -> tuple[tuple[str, str, Any], ...]:
    """(header, value with ``NONCE_MARK``, excluded path prefixes) of the site's policies."""
    enforced = getattr(settings, "CONTENT_SECURITY_POLICY", None)
    report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
    key = (with_nonce, tuple(provider_form_origins()))
    cached = _built.get(key)
    if cached is not None and cached[0] is enforced and cached[1] is report_only:
        return cached[2]
    update = {"form-action": list(key[1])} if key[1] else None
    nonce = NONCE_MARK if with_nonce else None
    headers = tuple(
        (header, value, tuple((config or {}).get("EXCLUDE_URL_PREFIXES") or ()))
        for header, config, ro in (
            (HEADER, enforced, False),
            (HEADER_REPORT_ONLY, report_only, True),
        )
        if (value := build_policy(update=update, nonce=nonce, report_only=ro))
    )
    if len(_built) > 16:  # providers changed many times: start again
        _built.clear()
    _built[key] = (enforced, report_only, headers)
    return headers


class SiteCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with the providers' origins added to ``form-action``."""

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        """Set the site's headers, built once; a view's own policy goes through django-csp."""
        if any(hasattr(response, name) for name in PER_VIEW):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response  # django-csp leaves the debug pages alone
        nonce = getattr(request, "_csp_nonce", None)
        for header, value, prefixes in site_headers(nonce is not None):
            exempt = "_csp_exempt" if header == HEADER else "_csp_exempt_ro"
            if (
                header not in response
                and getattr(response, exempt, False) is False
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = value.replace(NONCE_MARK, nonce) if nonce else value
        if nonce is None:  # a nonce asked for after the header was written is an error
            request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

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
