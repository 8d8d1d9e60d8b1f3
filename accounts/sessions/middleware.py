"""Keep OIDC sessions fresh without redirects, and end them when they must end.

A request whose access token is still valid costs nothing here: one look at the session
dict, no provider call and no query. Near expiry the refresh_token grant runs (see
``refresh.py``). When a session cannot be kept, an HTML navigation lands on the sign-in
page with a message and everything else gets ``401`` JSON with a sign-in URL; only a
top-level GET without a refresh token is sent to the provider for silent sign-in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from accounts.audit import log as audit
from accounts.conf import oidc_settings
from accounts.errors import OIDCError
from accounts.oidc.authorization import authorization_url
from accounts.providers.registry import provider_get
from accounts.responses import wants_json
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store
from accounts.sessions.refresh import Outcome, refresh_session

logger = logging.getLogger("accounts.middleware")  # the name operators filter on, kept across moves

MESSAGES = {
    Outcome.ENDED: "Your session has ended at your identity provider. Please sign in again.",
    "max_age": "Your session reached its maximum length. Please sign in again.",
    Outcome.NO_REFRESH_TOKEN: "Your session needs to be renewed. Please sign in again.",
    Outcome.UNREADABLE: token_store.TokensUnreadable.message,
}


# Outcomes that serve the request as it is: refreshed, or kept while the provider is slow.
KEPT = (Outcome.FRESH, Outcome.REFRESHED, Outcome.PROVIDER_DOWN, Outcome.BUSY, Outcome.PENDING)


class OIDCSessionMiddleware:
    """Refresh tokens before they expire; end sessions that cannot be kept."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # The provider's own round trips, static files and the health check are never held up.
        self.exempt = (
            "/oidc/",
            "/healthz",
            "/readyz",
            "/metrics",
            "/" + settings.STATIC_URL.lstrip("/"),
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.check(request)
        if response is not None:
            return response
        recorded = sessions.recorded_key(request)
        response = self.get_response(request)
        sessions.follow_session_key(request, recorded)  # the view may cycle or drop it
        return response

    def check(self, request: HttpRequest) -> HttpResponse | None:
        if request.path_info.startswith(self.exempt):
            return None
        session = request.session
        if sessions.SESSION_EXPIRES_AT not in session:
            return None  # not an OIDC session
        key_id = session.get(token_store.SESSION_KEY_ID)
        if key_id and not token_store.key_readable(key_id):  # a comparison, no decryption
            return self.end(request, Outcome.UNREADABLE, audit_reason="tokens_unreadable")
        now = time.time()
        if sessions.session_lifetime_exceeded(session, oidc_settings.OIDC_SESSION_MAX_AGE, now):
            return self.end(request, "max_age", audit_reason=audit.EXPIRED)
        if not sessions.refresh_due(
            session[sessions.SESSION_EXPIRES_AT],
            session.get(sessions.SESSION_LIFETIME),
            oidc_settings.OIDC_REFRESH_LEEWAY,
            now,
        ):
            return None  # the fast path
        outcome = refresh_session(request, started=now)
        if outcome in KEPT:
            return None
        if outcome is Outcome.NO_REFRESH_TOKEN:
            if is_navigation(request):
                try:
                    url = authorization_url(
                        request,
                        next_url=request.get_full_path(),
                        prompt="none",
                        provider=session_provider(request),
                    )
                except OIDCError as exc:
                    logger.warning(
                        "silent re-authentication could not start: reason=%s%s",
                        exc.code,
                        f" ({exc.detail})" if exc.detail else "",
                    )
                    return None  # discovery unavailable: keep for now, as above
                return HttpResponseRedirect(url)
            return unauthorized(request, outcome)  # the session stays for the next navigation
        return self.end(request, outcome)

    def end(
        self, request: HttpRequest, reason: Outcome | str, *, audit_reason: str = ""
    ) -> HttpResponse:
        # The row first: reading request.user may flush a session whose auth hash no
        # longer verifies (SECRET_KEY gone), and the row must go with it.
        row = sessions.current(request)
        if audit_reason:
            audit.record(
                audit.SIGN_OUT,
                audit.SUCCESS,
                request=request,
                reason=audit_reason,
                provider=row.provider if row else "default",
                issuer=row.issuer if row else "",
                subject=row.subject if row else "",
                user=row.user if row else None,
            )
        sessions.end_current(request, row=row)
        if wants_json(request) or request.method != "GET":
            return unauthorized(request, reason)
        messages.info(request, MESSAGES.get(reason, MESSAGES[Outcome.ENDED]))
        next_url = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse('signin')}?{next_url}")


def unauthorized(request: HttpRequest, reason: Outcome | str) -> JsonResponse:
    """401 JSON with words and a sign-in URL: for XHR, API and non-GET requests."""
    next_url = urlencode({"next": request.get_full_path()})
    return JsonResponse(
        {
            "error": "session_ended" if reason != Outcome.NO_REFRESH_TOKEN else "reauth_required",
            "reason": reason.value if isinstance(reason, Outcome) else reason,
            "message": MESSAGES.get(reason, MESSAGES[Outcome.ENDED]),
            "sign_in_url": f"{reverse('oidc_authentication_init')}?{next_url}",
        },
        status=401,
    )


def session_provider(request: HttpRequest):
    """The provider this session signed in at (silent sign-in goes back there)."""
    row = sessions.current(request)
    return provider_get(row.provider if row else None)


def is_navigation(request: HttpRequest) -> bool:
    """A top-level GET page load: the only request that may be redirected to the provider."""
    if request.method != "GET" or wants_json(request):
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    return mode in (None, "navigate")
