"""Sign-out: RP-initiated logout, its return, back-channel and front-channel logout."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import View

from accounts.audit import log as audit
from accounts.errors import OIDCError, ProviderError
from accounts.models import OIDCSession
from accounts.oidc.authorization import safe_next_url
from accounts.oidc.discovery import endpoint
from accounts.providers.provider import Provider
from accounts.providers.registry import all_providers, enabled_providers
from accounts.responses import error_response
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store
from accounts.sessions.logout import accept_logout_token
from accounts.sessions.revoke import revoke_session_tokens

logger = logging.getLogger("accounts.logout")

SESSION_LOGOUT_STATE = "oidc_logout_state"
SESSION_LOGOUT_NEXT = "oidc_logout_next"  # where to land afterwards ("sign in as someone else")


class LogoutView(View):
    """``GET`` asks for confirmation (a link must not sign anyone out); ``POST`` signs out."""

    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "accounts/logout_confirm.html")

    def post(self, request: HttpRequest) -> HttpResponse:
        """Sign out here, then at the provider this session signed in at (its end_session)."""
        row = sessions.current(request) if request.user.is_authenticated else None
        landing = safe_next_url(request, request.POST.get("next")) or resolve_url(
            settings.LOGOUT_REDIRECT_URL
        )
        id_token = _id_token_hint(row)
        provider = _session_provider(row)
        try:
            end_session = (
                endpoint("end_session_endpoint", required=False, provider=provider)
                if provider
                else ""
            )
        except ProviderError:
            end_session = ""
        if request.user.is_authenticated:
            audit.record(
                audit.SIGN_OUT,
                audit.SUCCESS,
                request=request,
                reason=audit.RP_INITIATED,
                provider=row.provider if row else "default",
                issuer=row.issuer if row else "",
                subject=row.subject if row else "",
                user=request.user,
            )
        if row is not None:
            revoke_session_tokens([row])  # in the background: never holds up the sign-out
        sessions.end_current(request)
        if not (end_session and id_token):
            messages.info(
                request,
                "You are signed out of this site. Your session at the identity provider, if "
                "any, is still open.",
            )
            return HttpResponseRedirect(landing)
        state = secrets.token_urlsafe(24)
        request.session[SESSION_LOGOUT_STATE] = state
        request.session[SESSION_LOGOUT_NEXT] = landing
        params = {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": request.build_absolute_uri(reverse("oidc_logout_complete")),
            "state": state,
            "client_id": provider.client_id,
        }
        separator = "&" if "?" in end_session else "?"
        return HttpResponseRedirect(f"{end_session}{separator}{urlencode(params)}")


def _id_token_hint(row: OIDCSession | None) -> str:
    """The ID token for ``id_token_hint``; without it (unreadable) sign-out stays local."""
    if row is None:
        return ""
    try:
        return token_store.read(row, "id_token")
    except token_store.TokensUnreadable:
        logger.warning("logout without id_token_hint: reason=tokens_unreadable sub=%s", row.subject)
        return ""


def _session_provider(row: OIDCSession | None) -> Provider | None:
    """The provider of a signed-in session, even when switched off since (to sign out there)."""
    if row is None:
        return None
    return next((p for p in all_providers() if p.slug == row.provider), None)


@require_GET
def logout_complete(request: HttpRequest) -> HttpResponse:
    """The provider sends the browser back here; ``state`` must be the one we sent."""
    expected = request.session.pop(SESSION_LOGOUT_STATE, None)
    landing = safe_next_url(request, request.session.pop(SESSION_LOGOUT_NEXT, None))
    state = request.GET.get("state", "")
    if expected and state and constant_time_compare(expected, state):
        messages.success(request, "You are signed out here and at your identity provider.")
    else:
        logger.warning("logout return rejected: reason=state_mismatch")
        messages.warning(
            request,
            "You are signed out of this site, but the identity provider's answer could not be "
            "verified.",
        )
    return HttpResponseRedirect(landing or resolve_url(settings.LOGOUT_REDIRECT_URL))


@csrf_exempt
@require_POST
@never_cache
def backchannel_logout(request: HttpRequest) -> HttpResponse:
    """OpenID Connect Back-Channel Logout 1.0 receiver: 200, or 400 with an error body."""
    try:
        ended = accept_logout_token(request.POST.get("logout_token", ""), request=request)
    except OIDCError as exc:
        logger.warning(
            "back-channel logout rejected: reason=%s%s",
            exc.code,
            f" ({exc.detail})" if exc.detail else "",
        )
        audit.record_sampled(
            audit.SIGN_OUT, audit.FAILURE, request=request, reason=f"backchannel_{exc.code}"
        )
        response = JsonResponse(
            {"error": "invalid_request", "error_description": exc.message}, status=400
        )
    else:
        response = JsonResponse({"ended_sessions": ended})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def frontchannel_logout(request: HttpRequest) -> HttpResponse:
    """OpenID Connect Front-Channel Logout 1.0: the provider loads this in an iframe."""
    iss, sid = request.GET.get("iss", ""), request.GET.get("sid", "")
    providers = [p for p in enabled_providers() if p.issuer == iss]
    if not providers or not sid:
        audit.record_sampled(
            audit.SIGN_OUT, audit.FAILURE, request=request, reason="frontchannel_mismatch"
        )
        return error_response(
            request,
            OIDCError("frontchannel_mismatch", "This sign-out request is not for this site."),
            event="front-channel logout rejected",
            iss=iss[:200] or "-",
        )
    # Only sessions of the providers with this issuer: the same sid elsewhere is untouched.
    ended = sum(
        sessions.end_by_claims(
            issuer=iss, sid=sid, reason=audit.FRONTCHANNEL, request=request, provider=p
        )
        for p in providers
    )
    logger.info("front-channel logout: iss=%s sid-matched sessions=%d", iss, ended)
    response = HttpResponse("Signed out.", content_type="text/plain")
    response["Cache-Control"] = "no-store"
    # Only the provider may frame this page.
    response["Content-Security-Policy"] = f"frame-ancestors {_origin(iss)}"
    response.xframe_options_exempt = True
    return response


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
