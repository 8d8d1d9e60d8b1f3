"""Bearer-token protection for plain Django views: a decorator and a class-based-view mixin.

::

    @api_view(scopes={"api:read"}, machines=True)
    def whoami(request):
        request.caller  # accounts.api.bearer.Caller: .user (None for a machine), .scopes, ...

A request with ``Authorization: Bearer`` is authenticated by its token alone and is exempt
from CSRF (a browser never attaches it by itself); a request without one may use the
session cookie (``sessions=True``, the default) and then keeps CSRF protection for unsafe
methods. Refusals follow RFC 6750: ``401`` with ``WWW-Authenticate: Bearer ...
error="invalid_token"`` for a bad token, ``403`` with ``error="insufficient_scope"`` for a
missing scope or a machine where a user is needed; each with JSON that says what is wrong
in words and one log line with the reason.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from accounts import metrics
from accounts.api.access_tokens import BearerError
from accounts.api.bearer import Caller, authenticate_bearer
from accounts.api.dpop import ALGS_PARAM, DPoPError, start_proof
from accounts.audit import log as audit
from accounts.errors import OIDCError
from accounts.responses import error_response, loggable
from accounts.security import shared_cache
from accounts.security.client_info import client_ip
from accounts.sessions.lifecycle import SESSION_ISSUER, SESSION_PROVIDER, SESSION_SUBJECT

logger = logging.getLogger("accounts.api")

REALM = "api"
LOG_WINDOW = 60  # seconds: a refusal reason is logged once per window
# RFC 9449 7.1: the DPoP challenge names the proof algorithms this API accepts.
DPOP_CHALLENGE = f'DPoP algs="{ALGS_PARAM}"'


class ApiRefusal(Exception):
    """Why a caller may not use a view: the status, the RFC 6750 error and words."""

    def __init__(
        self,
        status: int,
        error: str,
        reason: str,
        message: str,
        scope: str = "",
        *,
        scheme: str = "Bearer",
        nonce: str = "",
    ):
        super().__init__(reason)
        self.status = status
        self.error = error  # RFC 6750 3.1 error code; "" when no credentials were sent
        self.reason = reason
        self.message = message
        self.scope = scope
        self.scheme = scheme  # the challenge's scheme: Bearer, or DPoP (RFC 9449 7.1)
        self.nonce = nonce  # a DPoP-Nonce to send (use_dpop_nonce)


def bearer_token(request: HttpRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None when there is no such header."""
    # META, not request.headers: this runs on every API request and needs one header.
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def dpop_token(request: HttpRequest) -> str | None:
    """The token of ``Authorization: DPoP <token>`` (RFC 9449 7.1), or None."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "dpop" else None


def sends_token(request: HttpRequest) -> bool:
    """Whether the request authenticates by a token (Bearer or DPoP), not the session."""
    scheme = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[0].lower()
    return scheme in ("bearer", "dpop")


@functools.cache
def _sign_in_path() -> str:
    return reverse("oidc_authentication_init")


def session_caller(request: HttpRequest) -> Caller | None:
    """The signed-in user of the session as a caller (every scope: it is the user's own)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return Caller(
        issuer=request.session.get(SESSION_ISSUER, ""),
        subject=request.session.get(SESSION_SUBJECT, ""),
        client_id="",
        scopes=frozenset(),
        user=user,
        provider=request.session.get(SESSION_PROVIDER),
    )


def check_access(caller: Caller, *, scopes: frozenset[str], machines: bool, by_token: bool) -> None:
    """Raise ``ApiRefusal`` unless this caller may use a view with these needs."""
    scheme = "DPoP" if caller.dpop else "Bearer"
    if caller.is_machine and not machines:
        raise ApiRefusal(
            403,
            "insufficient_scope",
            "user_required",
            "This API needs a user's access token; a client's own token cannot use it.",
            scheme=scheme,
        )
    missing = scopes - caller.scopes if by_token else frozenset()
    if missing:
        needed = " ".join(sorted(scopes))
        raise ApiRefusal(
            403,
            "insufficient_scope",
            "insufficient_scope",
            f"The access token lacks the scope this API needs: {' '.join(sorted(missing))}.",
            scope=needed,
            scheme=scheme,
        )


def authenticate_request(
    request: HttpRequest, *, scopes: frozenset[str], machines: bool, sessions: bool
) -> Caller:
    """The caller of this request, by bearer token or (when allowed) session; or raise."""
    token = bearer_token(request)
    bound = dpop_token(request)
    if token is None and bound is None:
        caller = session_caller(request) if sessions else None
        if caller is None:
            raise ApiRefusal(401, "", "not_authenticated", "Sign in or send an access token.")
        check_access(caller, scopes=scopes, machines=machines, by_token=False)
        return caller
    caller = (
        token_caller(token, client=client_ip(request))
        if bound is None
        else dpop_caller(request, bound)
    )
    check_access(caller, scopes=scopes, machines=machines, by_token=True)
    metrics.bearer_accepted(caller.provider, dpop=caller.dpop)
    return caller


def token_caller(token: str, *, client: str | None = None) -> Caller:
    """The caller of a bearer token; a refused token is a 401 ``invalid_token`` refusal."""
    try:
        return authenticate_bearer(token, client=client)
    except BearerError as exc:
        raise ApiRefusal(401, "invalid_token", exc.code, exc.message) from exc


def dpop_caller(request: HttpRequest, token: str) -> Caller:
    """The caller of a DPoP-bound token and its proof; a refusal is a 401 with a DPoP challenge."""
    try:
        proof = start_proof(request, token)
        return authenticate_bearer(token, client=client_ip(request), proof=proof)
    except DPoPError as exc:
        raise ApiRefusal(
            401, exc.error, exc.code, exc.message, scheme="DPoP", nonce=exc.nonce
        ) from exc
    except BearerError as exc:
        raise ApiRefusal(401, "invalid_token", exc.code, exc.message, scheme="DPoP") from exc


def log_refusal(request: HttpRequest, refusal: ApiRefusal) -> None:
    if not refusal.error:
        return  # no credentials at all: a plain challenge, not an event worth a line
    # Anybody can send junk tokens: one line per reason and minute, like the audit rows.
    minute = int(time.time() // LOG_WINDOW)
    if shared_cache.add(f"oidc:api-refusal-log:{refusal.reason[:64]}:{minute}", 1, LOG_WINDOW):
        logger.warning(
            "api request refused: reason=%s path=%s (logged once a minute per reason; the "
            "audit row counts them)",
            loggable(refusal.reason),
            loggable(request.path),
        )
    # A token was sent and refused: audited, one row per reason and minute.
    audit.record_sampled(
        audit.BEARER_REFUSED, audit.FAILURE, request=request, reason=refusal.reason
    )


def challenge(refusal: ApiRefusal) -> tuple[dict[str, Any], str]:
    """The RFC 6750 answer: a JSON body in words and the ``WWW-Authenticate`` challenge."""
    body: dict[str, Any] = {
        "error": refusal.error or refusal.reason,
        "reason": refusal.reason,
        "message": refusal.message,
    }
    header = f'Bearer realm="{REALM}"' if refusal.scheme == "Bearer" else DPOP_CHALLENGE
    if refusal.error:
        # RFC 6750 3: error_description is printable ASCII without '"' or '\\'.
        description = "".join(c for c in refusal.message if " " <= c <= "~" and c not in '"\\')
        header += f', error="{refusal.error}", error_description="{description}"'
    if refusal.scope:
        header += f', scope="{refusal.scope}"'
        body["scope"] = refusal.scope
    if not refusal.error:
        header += f", {DPOP_CHALLENGE}"  # no credentials: both schemes are welcome
    if refusal.nonce:
        body["dpop_nonce"] = refusal.nonce
    if refusal.status == 401:
        body["sign_in_url"] = _sign_in_path()
    return body, header


def refusal_response(request: HttpRequest, refusal: ApiRefusal) -> JsonResponse:
    """Answer a refused API request (plain Django views)."""
    log_refusal(request, refusal)
    body, header = challenge(refusal)
    response = JsonResponse(body, status=refusal.status)
    response["WWW-Authenticate"] = header
    response["Cache-Control"] = "no-store"
    if refusal.nonce:
        response["DPoP-Nonce"] = refusal.nonce
    return response


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check, for a session request to a view exempt for bearer requests."""
    if request.method in SAFE_METHODS:
        return None  # what the check itself would conclude, without building it
    check = CsrfViewMiddleware(lambda req: HttpResponse())
    check.process_request(request)
    return check.process_view(request, lambda req: None, (), {})


def api_view(
    view: Callable[..., HttpResponse] | None = None,
    *,
    scopes: Iterable[str] = (),
    machines: bool = False,
    sessions: bool = True,
) -> Any:
    """Protect a function view; the caller is set as ``request.caller``."""
    needed = frozenset(scopes)

    def decorate(func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                caller = authenticate_request(
                    request, scopes=needed, machines=machines, sessions=sessions
                )
            except ApiRefusal as refusal:
                return refusal_response(request, refusal)
            except OIDCError as exc:  # the provider is down: a deliberate 502 in words
                return error_response(request, exc, event="api request rejected")
            if not sends_token(request) and (failure := _csrf_failure(request)):
                return failure
            request.caller = caller
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


class ApiViewMixin:
    """The same protection for a class-based view: set ``api_scopes``, ``api_machines``."""

    api_scopes: Iterable[str] = ()
    api_machines: bool = False
    api_sessions: bool = True

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponse]:
        view = super().as_view(**initkwargs)  # type: ignore[misc]
        return api_view(
            view, scopes=cls.api_scopes, machines=cls.api_machines, sessions=cls.api_sessions
        )
