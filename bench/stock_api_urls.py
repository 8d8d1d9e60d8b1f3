"""``/api/me/`` for the stock mozilla-django-oidc variant: the same fields, by session only."""

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.views.availability import readyz
from accounts.views.pages import healthz


@require_GET
@never_cache
def me(request):
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"error": "not_authenticated", "message": "Sign in."}, status=401)
    return JsonResponse(
        {
            "username": user.get_username(),
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "iss": None,  # stock keeps no identity: it cannot say
            "sub": None,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
        }
    )


urlpatterns = [
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("api/me/", me),
    path("healthz", healthz),
    path("readyz", readyz),  # what the bench waits for before it starts
]
