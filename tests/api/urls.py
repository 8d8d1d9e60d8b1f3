"""The project's URLs plus POST views protected by ``api_view``, the mixin and DRF (for CSRF)."""

from django.http import JsonResponse
from django.urls import path
from django.views import View
from rest_framework.response import Response

from accounts.api.access import ApiViewMixin, api_view
from accounts.views.drf_api import ApiView
from project.urls import urlpatterns as project_urlpatterns


@api_view(scopes={"api:write"})
def plain_write(request):
    return JsonResponse({"written_by": request.caller.user.get_username()})


class MixinWrite(ApiViewMixin, View):
    api_scopes = {"api:write"}

    def post(self, request):
        return JsonResponse({"written_by": request.caller.user.get_username()})


class DrfWrite(ApiView):
    required_scopes = {"api:write"}

    def post(self, request):
        return Response({"written_by": request.user.get_username()})


urlpatterns = [
    *project_urlpatterns,
    path("api/test/plain-write/", plain_write),
    path("api/test/mixin-write/", MixinWrite.as_view()),
    path("api/test/drf-write/", DrfWrite.as_view()),
]
