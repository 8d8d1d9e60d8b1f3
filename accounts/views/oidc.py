"""Sign-in: the authorization request and the callback, over mozilla-django-oidc's views."""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.contrib import auth, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.views.decorators.cache import never_cache
from django.views.generic import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from accounts.audit import log as audit
from accounts.conf import token_auth_method
from accounts.errors import (
    AccountError,
    OIDCError,
    ProviderNotAnswering,
    StateError,
    StepUpError,
    TokenError,
)
from accounts.models import OIDCIdentity
from accounts.oidc import breaker, signing_keys
from accounts.oidc.authorization import authorization_url, consume_state, safe_next_url
from accounts.oidc.discovery import get_metadata
from accounts.oidc.requirement import Requirement
from accounts.oidc.tokens import unverified_claims
from accounts.providers.provider import DEFAULT_SLUG, Provider
from accounts.providers.registry import UnknownProvider, all_providers, provider_get
from accounts.responses import error_response, log_refusal
from accounts.sessions import lifecycle as sessions
from accounts.sessions.stepup import admin_requirement, is_admin_url
from accounts.views.chooser import (
    NoProviderForEmail,
    chooser_url,
    remember_provider,
    several_providers,
    sign_in_target,
)
from accounts.views.pages import signin_page

logger = logging.getLogger("accounts.signin")

PROVIDER_ERRORS = {
    "access_denied": "You cancelled the sign-in, or the identity provider refused it.",
    "login_required": "The identity provider needs you to sign in again.",
    "consent_required": "The identity provider needs your consent to sign you in.",
    "interaction_required": "The identity provider needs you to sign in again.",
    "temporarily_unavailable": "The identity provider is busy. Please try again in a moment.",
}


class AuthenticateView(OIDCAuthenticationRequestView):
    """``GET /oidc/authenticate/?provider=<slug>&next=/path``: redirect to that provider.

    ``email=`` (the sign-in page's "work email") picks the provider by its email domains
    and is passed on as ``login_hint``. Naming neither: with one provider, the provider
    ``default``; with several, the remembered one or the sign-in page (the chooser); ``next``
    is kept either way. ``remember=1``: remember this provider once the sign-in succeeds.
    An unknown or disabled provider: a 404 page in words.
    """

    def __init__(self, **kwargs) -> None:
        View.__init__(self, **kwargs)  # the parent reads settings here; conf.py does that

    def get(self, request: HttpRequest) -> HttpResponse:
        next_url = safe_next_url(request, request.GET.get("next"))
        request.oidc_next_url = next_url  # "Sign in again" on an error page keeps it
        try:
            provider, login_hint = sign_in_target(request)
            if provider is None:
                return HttpResponseRedirect(chooser_url(next_url))
            _attempt_at(request, provider.slug, next_url)
            if breaker.provider_down(provider):  # not a redirect to a provider known down
                raise ProviderNotAnswering(detail=f"sign-in at {provider.slug} not started")
            # Headed for the admin: ask for what the admin will want, in this one round trip.
            requirement = admin_requirement(provider) if is_admin_url(next_url) else None
            url = authorization_url(
                request,
                next_url=next_url,
                provider=provider,
                login_hint=login_hint,
                requirement=requirement,
                remember=request.GET.get("remember") == "1",
            )
        except NoProviderForEmail as exc:  # the chooser again, its buttons, the email kept
            refused(request, exc)
            log_refusal(exc, event="sign-in could not start")
            email = (request.GET.get("email") or "")[:254]
            return signin_page(request, next_url, error=exc, email=email)
        except OIDCError as exc:
            refused(request, exc)
            return error_response(request, exc, event="sign-in could not start")
        return HttpResponseRedirect(url)


class CallbackView(OIDCAuthenticationCallbackView):
    """``GET /oidc/callback/[<slug>/]``: state, provider and ``iss`` first, then sign in."""

    def get(self, request: HttpRequest, slug: str | None = None) -> HttpResponse:
        try:
            # The default provider answers at /oidc/callback/ only; an unknown name is a 404.
            if slug == DEFAULT_SLUG or not (slug is None or _known(slug)):
                raise UnknownProvider()
            return self._callback(request, slug or DEFAULT_SLUG)
        except StepUpError as exc:  # the token's signature and claims were checked first
            identity = _unverified_identity(request)
            stepup_refused(request, exc, **identity)
            return error_response(request, exc, **identity)
        except TokenError as exc:
            refused(request, exc)  # its identity is unverified: not recorded
            return error_response(request, exc, **_unverified_identity(request))
        except OIDCError as exc:
            identity = getattr(request, "oidc_log_identity", {})
            refused(request, exc, **identity)
            return error_response(request, exc, **identity)

    def _callback(self, request: HttpRequest, slug: str) -> HttpResponse:
        state = request.GET.get("state")
        if request.GET.get("error"):
            return self._provider_error(request, state, slug)
        try:
            entry = consume_state(request, state, provider_slug=slug)
        except StateError as exc:
            if exc.code == "wrong_redirect_uri":
                request.session.save()  # the state is spent: it cannot be replayed
                raise
            if request.user.is_authenticated:
                # A reload or a second tab after a finished sign-in: nothing is wrong.
                messages.info(request, "You are already signed in.")
                return HttpResponseRedirect(resolve_url(settings.LOGIN_REDIRECT_URL))
            raise
        request.session.save()  # the state is spent even if what follows fails
        _attempt_at(request, slug, entry.get("next"))  # the state names the attempt's provider
        provider = provider_get(slug)  # switched off since the sign-in started: refused
        _check_response_issuer(request, provider)
        code = request.GET.get("code")
        if not code:
            raise OIDCError(
                "missing_code", "The identity provider's answer carried no sign-in code."
            )
        user = auth.authenticate(
            request,
            code=code,
            code_verifier=entry["code_verifier"],
            nonce=entry["nonce"],
            requirement=Requirement.from_state(entry),
            provider=provider,
        )
        if user is None:
            raise AccountError()
        tokens, claims = request.oidc_tokens
        previous = sessions.recorded_row(request)  # a silent re-auth, or another user's session
        with transaction.atomic():  # signed in only together with the tokens' record
            auth.login(request, user, backend="accounts.backends.OIDCBackend")  # new key
            request.session.set_expiry(None)  # the session's own lifetime, not the state's
            if previous is not None:
                previous.delete()  # its session key is gone with the rotation
            sessions.store_tokens(
                request, user=user, claims=claims, tokens=tokens, provider=provider
            )
        _audit_sign_in(request, user, claims, step_up=_step_up(entry, previous))
        messages.success(request, f"Signed in as {user.get_username()}.")
        response = HttpResponseRedirect(
            entry.get("next") or resolve_url(settings.LOGIN_REDIRECT_URL)
        )
        remember_provider(request, response, provider, remember=bool(entry.get("remember")))
        return response

    def _provider_error(self, request: HttpRequest, state: str | None, slug: str) -> HttpResponse:
        error = request.GET.get("error", "")[:64]
        entry = None
        with contextlib.suppress(StateError):
            entry = consume_state(request, state, provider_slug=slug)
        if entry:
            _attempt_at(request, slug, entry.get("next"))
        if entry and entry.get("prompt") == "none":
            # Silent re-authentication failed: the provider session is gone, so is ours.
            audit.record(
                audit.SIGN_OUT,
                audit.SUCCESS,
                request=request,
                reason=audit.REAUTH_FAILED,
                provider=slug,
                user=request.user,
                detail={"provider_error": error if error in PROVIDER_ERRORS else "other"},
            )
            sessions.end_current(request)
            messages.info(request, "Your session has ended. Please sign in again.")
            return HttpResponseRedirect(resolve_url("signin"))
        if request.user.is_authenticated and entry is not None:
            sessions.end_current(request)
        message = PROVIDER_ERRORS.get(error, "The identity provider could not sign you in.")
        exc = OIDCError(error or "provider_error", message)
        # The reason is a known code: the query string must not choose the sample buckets.
        refused(request, OIDCError(error if error in PROVIDER_ERRORS else "provider_error"))
        return error_response(request, exc)


def _attempt_at(request: HttpRequest, slug: str, next_url: str | None) -> None:
    """Name the attempt's provider: for its audit rows, and an error page's "Sign in again".

    With one provider "Sign in again" stays ``/oidc/authenticate/`` (it goes there anyway);
    with several it names the provider, since a sign-in naming none shows the chooser.
    """
    request.oidc_provider_slug = slug
    request.oidc_next_url = next_url
    request.oidc_retry_slug = slug if several_providers() else ""


def _known(slug: str) -> bool:
    """Whether a provider of this name exists, switched on or off."""
    return any(provider.slug == slug for provider in all_providers())


def _check_response_issuer(request: HttpRequest, provider: Provider) -> None:
    """RFC 9207: the ``iss`` of the authorization response must be the state's provider's."""
    iss = request.GET.get("iss")
    expected = provider.issuer
    if iss is None:
        # FAPI 2.0 5.3.2.2: required, whatever the metadata says.
        if provider.fapi2 or get_metadata(provider).get(
            "authorization_response_iss_parameter_supported"
        ):
            raise OIDCError(
                "missing_response_iss", "The sign-in response did not name its provider."
            )
        return
    if iss != expected:
        raise OIDCError(
            "wrong_response_iss", "The sign-in response came from a different provider."
        )


def _step_up(entry: dict, previous: object) -> str:
    """Whether this sign-in was an admin step-up: ``""`` (not for the admin), ``not_required``
    (the admin's limits asked nothing a fresh sign-in does not give) or ``stepped_up``.

    A step-up happened when the admin asked for a stronger authentication (``acr_values``)
    or sent a session it already had back to the provider (too old, too weak).
    """
    requirement = Requirement.from_state(entry)
    if requirement is None:
        return ""
    return "stepped_up" if requirement.acr_values or previous is not None else "not_required"


def _audit_sign_in(request: HttpRequest, user, claims: dict, *, step_up: str) -> None:
    """The sign-in's row; an admin step-up that happened gets its own row too."""
    identity = {
        "issuer": claims["iss"],
        "subject": claims["sub"],
        "user": user,
        "provider": _slug(request),
    }
    detail = {"admin_step_up": "not_required"} if step_up == "not_required" else None
    audit.record(audit.SIGN_IN, audit.SUCCESS, request=request, detail=detail, **identity)
    if step_up == "stepped_up":
        detail = {"acr": str(claims.get("acr") or "")[:64], "auth_time": claims.get("auth_time")}
        audit.record(audit.ADMIN_STEP_UP, audit.SUCCESS, request=request, detail=detail, **identity)


def _slug(request: HttpRequest) -> str:
    """The attempt's provider, once known (a valid state names it); else none (``""``)."""
    return getattr(request, "oidc_provider_slug", audit.NO_PROVIDER)


def _record_refusal(event: str, request: HttpRequest, exc: OIDCError, iss: str, sub: str) -> None:
    """One row naming the vouched-for identity (iss, sub), its user and its provider."""
    found = (
        OIDCIdentity.objects.select_related("user")
        .filter(issuer=iss, subject=sub, provider=_slug(request))
        .first()
    )
    audit.record(
        event,
        audit.FAILURE,
        request=request,
        reason=exc.code,
        provider=_slug(request),
        issuer=iss,
        subject=sub,
        user=found.user if found else None,
    )


def stepup_refused(request: HttpRequest, exc: OIDCError, *, iss: str = "", sub: str = "") -> None:
    """An admin step-up answered short (too old, too weak): one row naming whose."""
    _record_refusal(audit.ADMIN_STEP_UP, request, exc, iss, sub)


def refused(request: HttpRequest, exc: OIDCError, *, iss: str = "", sub: str = "") -> None:
    """The audit row of a refused sign-in.

    With an identity the provider vouched for (a verified ID token): a row naming it and
    its user. Anything else can be sent by anyone at will (a forged callback, a bad
    token), so it is counted per reason and minute instead (``audit.record_sampled``).
    """
    if not (iss and sub and iss != "-"):
        audit.record_sampled(
            audit.SIGN_IN, audit.FAILURE, request=request, reason=exc.code, provider=_slug(request)
        )
        return
    _record_refusal(audit.SIGN_IN, request, exc, iss, sub)


def _unverified_identity(request: HttpRequest) -> dict[str, str]:
    """iss and sub of a rejected ID token, for the log line only (identifiers, not secrets)."""
    token = getattr(request, "oidc_pending_id_token", None)
    claims = unverified_claims(token) if token else {}
    if not claims:
        return {}
    return {"iss": str(claims.get("iss", "-")), "sub": str(claims.get("sub", "-"))}


@never_cache
def site_jwks(request: HttpRequest) -> HttpResponse:
    """``GET /oidc/jwks.json``: the site's public keys, for ``private_key_jwt``.

    The signing key, a rotated-in key waiting to sign, and the previous key are all listed.
    Nothing is generated unless the site authenticates with ``private_key_jwt``.
    """
    in_use = any(token_auth_method(p) == "private_key_jwt" for p in all_providers())
    if not in_use and not signing_keys.key_file().exists():
        return JsonResponse({"keys": []})
    try:
        return JsonResponse(signing_keys.public_jwks())
    except signing_keys.KeyFileError as exc:
        logger.error("jwks.json: the signing key file is unusable: %s", exc)
        return JsonResponse(
            {"error": "keys_unavailable", "message": "This site's public keys cannot be read."},
            status=503,
        )
