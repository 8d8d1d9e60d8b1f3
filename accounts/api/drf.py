"""Bearer-token protection for Django REST framework, with the same rules as ``access``.

::

    class Things(APIView):
        authentication_classes = [BearerAuthentication, SessionAuthentication]
        permission_classes = [ApiAccess]
        required_scopes = {"api:read"}
        allow_machines = True      # client-credentials callers welcome

A bearer request is authenticated by ``BearerAuthentication`` (no CSRF: DRF only enforces
it in ``SessionAuthentication``); ``request.auth`` is the ``Caller`` and ``request.user``
the user, or a ``MachineUser`` for a client's own token. ``ApiAccess`` checks scopes and
machines. Refusals carry the same JSON and ``WWW-Authenticate`` challenge as plain views.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions

from accounts import metrics
from accounts.api.access import (
    DPOP_CHALLENGE,
    REALM,
    ApiRefusal,
    bearer_token,
    challenge,
    check_access,
    dpop_caller,
    dpop_token,
    log_refusal,
    session_caller,
    token_caller,
)
from accounts.api.bearer import Caller
from accounts.errors import OIDCError
from accounts.security.client_info import client_ip


class ApiRefused(exceptions.APIException):
    """An ``ApiRefusal`` as DRF's exception handler renders it: same body, same header."""

    def __init__(self, refusal: ApiRefusal) -> None:
        body, self.auth_header = challenge(refusal)
        self.status_code = refusal.status
        super().__init__(detail=body)


class ProviderUnavailable(exceptions.APIException):
    status_code = 502


class MachineUser:
    """``request.user`` for a client-credentials caller: authenticated, no rights."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.username = caller.client_id

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def __str__(self) -> str:
        return f"client {self.username}"


class BearerAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <access token>``, checked as ``accounts.api.bearer`` does;
    ``Authorization: DPoP <token>`` with its ``DPoP`` proof as ``accounts.api.dpop`` does."""

    def authenticate(self, request: Any) -> tuple[Any, Caller] | None:
        token = bearer_token(request._request)
        bound = dpop_token(request._request)
        if token is None and bound is None:
            return None  # let the next class (the session) try
        try:
            if bound is not None:
                caller = dpop_caller(request._request, bound)
            else:
                caller = token_caller(token, client=client_ip(request._request))
            metrics.bearer_accepted(caller.provider, dpop=caller.dpop)
        except ApiRefusal as refusal:
            log_refusal(request._request, refusal)
            raise ApiRefused(refusal) from refusal
        except OIDCError as exc:  # the provider is down: 502 in words
            raise ProviderUnavailable(detail={"error": exc.code, "message": exc.message}) from exc
        return (caller.user or MachineUser(caller), caller)

    def authenticate_header(self, request: Any) -> str:
        return f'Bearer realm="{REALM}", {DPOP_CHALLENGE}'


def caller_of(request: Any) -> Caller | None:
    """The caller of a DRF request: its bearer token's, else its session's user."""
    return request.auth if isinstance(request.auth, Caller) else session_caller(request)


class ApiAccess(permissions.BasePermission):
    """A caller is needed; bearer callers need the view's ``required_scopes``; machines only
    where ``allow_machines`` is set."""

    def has_permission(self, request: Any, view: Any) -> bool:
        caller = caller_of(request)
        try:
            if caller is None:
                raise ApiRefusal(401, "", "not_authenticated", "Sign in or send an access token.")
            check_access(
                caller,
                scopes=frozenset(getattr(view, "required_scopes", ())),
                machines=getattr(view, "allow_machines", False),
                by_token=isinstance(request.auth, Caller),
            )
        except ApiRefusal as refusal:
            log_refusal(request._request, refusal)
            raise ApiRefused(refusal) from None
        return True
