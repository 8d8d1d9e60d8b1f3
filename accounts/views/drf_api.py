"""``/api/drf/me/`` and ``/api/drf/whoami/``: the API as Django REST framework views.

They answer exactly as the plain views of ``views/api.py`` do (same JSON, same refusals),
through ``accounts.api.drf``'s authentication and permission classes.
"""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.bearer import Caller
from accounts.api.drf import ApiAccess, BearerAuthentication, caller_of
from accounts.views.api import me_payload, whoami_payload


class ApiView(APIView):
    authentication_classes = [BearerAuthentication, SessionAuthentication]
    permission_classes = [ApiAccess]

    def caller(self, request: Request) -> Caller:
        return caller_of(request)  # ApiAccess let only a caller through


class Me(ApiView):
    def get(self, request: Request) -> Response:
        return Response(me_payload(self.caller(request)), headers={"Cache-Control": "no-store"})


class WhoAmI(ApiView):
    required_scopes = {"api:read"}
    allow_machines = True

    def get(self, request: Request) -> Response:
        return Response(whoami_payload(self.caller(request)), headers={"Cache-Control": "no-store"})
