"""The site's API: ``/api/me/`` (users, by session or token) and ``/api/whoami/`` (any caller).

The same two endpoints exist as Django REST framework views (``views/drf_api.py``) and
answer the same JSON; both build it with the functions here.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.api.access import api_view
from accounts.api.bearer import Caller
from accounts.providers.registry import all_providers
from accounts.users.backend import identity_for


def me_payload(caller: Caller) -> dict[str, Any]:
    """The user behind a caller: who they are here and at the provider, and which provider."""
    user = caller.user
    issuer, subject, provider = caller.issuer, caller.subject, caller.provider
    if not subject:  # a session from before the session kept them: read the identity
        identity = identity_for(user)
        issuer, subject = (identity.issuer, identity.subject) if identity else (None, None)
    if provider is None and issuer:  # a session from before providers had names
        provider = next((p.slug for p in all_providers() if p.issuer == issuer), None)
    return {
        "username": user.get_username(),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "iss": issuer,
        "sub": subject,
        "provider": provider,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


def whoami_payload(caller: Caller) -> dict[str, Any]:
    """Any caller, machines included: what kind, which client, which scopes."""
    return {
        "kind": "machine" if caller.is_machine else "user",
        "username": None if caller.is_machine else caller.user.get_username(),
        "client_id": caller.client_id or None,
        "scopes": sorted(caller.scopes),
    }


@require_GET
@never_cache
@api_view
def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse(me_payload(request.caller))


@require_GET
@never_cache
@api_view(scopes={"api:read"}, machines=True)
def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse(whoami_payload(request.caller))
