"""``POST /oidc/ssf/push/``: the Shared Signals push receiver (RFC 8935) of every provider."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.audit import log as audit
from accounts.ssf.decoding import MAX_BODY_BYTES, too_large
from accounts.ssf.errors import SetRefused
from accounts.ssf.receiver import accept_push, push_providers

logger = logging.getLogger("accounts.ssf")


def _body(request: HttpRequest) -> bytes:
    """The body, read only up to the cap: a larger one is refused unread."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise too_large()
    try:
        body = request.read(MAX_BODY_BYTES + 1)
    except RawPostDataException:
        body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise too_large()
    return body


def _refusal(request: HttpRequest, exc: SetRefused, provider: str = "-") -> HttpResponse:
    logger.warning(
        "shared signal refused: reason=%s err=%s status=%d provider=%s",
        exc.reason,
        exc.err,
        exc.status,
        provider,
    )
    audit.record_sampled(
        audit.SHARED_SIGNAL, audit.FAILURE, request=request, reason=f"ssf_{exc.reason}"
    )
    response = JsonResponse(exc.body(), status=exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="ssf"'
    return response


@csrf_exempt
@require_POST
@never_cache
def ssf_push(request: HttpRequest) -> HttpResponse:
    """202 when the SET was accepted; 400 with ``err`` and words, or 401/403, otherwise."""
    try:
        providers = push_providers(request.META.get("HTTP_AUTHORIZATION"))
        accepted = accept_push(
            _body(request),
            content_type=request.META.get("CONTENT_TYPE", ""),
            providers=providers,
            request=request,
        )
    except SetRefused as exc:
        return _refusal(request, exc)
    except DatabaseError:
        logger.exception("shared signal not processed: reason=database_error")
        return _refusal(
            request,
            SetRefused(
                "temporarily_unavailable",
                "The event could not be stored right now; send it again later.",
                reason="database_error",
                status=503,
            ),
        )
    except Exception:  # never a 500, whatever the body: say so and let the transmitter know
        logger.exception("shared signal not processed: reason=unexpected_error")
        return _refusal(
            request,
            SetRefused(
                "invalid_request",
                "The event could not be processed.",
                reason="unexpected_error",
            ),
        )
    logger.debug("shared signal accepted from %s", accepted.provider.slug)
    return HttpResponse(status=202)
