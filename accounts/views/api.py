"""``GET /api/me/``: the signed-in user as JSON, by session cookie or bearer token."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..backends import identity_for
from ..bearer import user_for_bearer
from ..errors import OIDCError
from .errors import error_response


@require_GET
@never_cache
def me(request: HttpRequest) -> JsonResponse:
    auth_header = request.headers.get("Authorization", "")
    try:
        if auth_header.lower().startswith("bearer "):
            user, identity = user_for_bearer(auth_header[7:].strip())
        elif request.user.is_authenticated:
            user, identity = request.user, identity_for(request.user)
        else:
            return JsonResponse(
                {
                    "error": "not_authenticated",
                    "message": "Sign in to see this.",
                    "sign_in_url": reverse("oidc_authentication_init"),
                },
                status=401,
            )
    except OIDCError as exc:
        return error_response(request, exc, event="api request rejected")
    return JsonResponse(
        {
            "username": user.get_username(),
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "iss": identity.issuer if identity else None,
            "sub": identity.subject if identity else None,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
        }
    )
