"""Site pages for signed-in people, and the health check."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from .. import sessions
from ..backends import identity_for


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    row = sessions.current(request)
    expiry = request.session.get_expiry_date()
    started = request.session.get(sessions.SESSION_STARTED_AT)
    auth_time = request.session.get(sessions.SESSION_AUTH_TIME)
    return render(
        request,
        "accounts/profile.html",
        {
            "identity": identity_for(request.user),
            "groups": sorted(request.user.groups.values_list("name", flat=True)),
            "session_expires_at": expiry,
            "session_started_at": (datetime.fromtimestamp(started, tz=UTC) if started else None),
            "access_expires_at": row.access_expires_at if row else None,
            "has_refresh_token": bool(row and row.refresh_token),
            "oidc_session": sessions.SESSION_EXPIRES_AT in request.session,
            "auth_time": datetime.fromtimestamp(auth_time, tz=UTC) if auth_time else None,
            "acr": request.session.get(sessions.SESSION_ACR),
        },
    )


@login_required
def members(request: HttpRequest) -> HttpResponse:
    return render(request, "members.html")


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def signin(request: HttpRequest) -> HttpResponse:
    """A page with the sign-in button, where ended sessions land with their message."""
    from ..flows import safe_next_url

    return render(
        request, "accounts/signin.html", {"next": safe_next_url(request, request.GET.get("next"))}
    )
