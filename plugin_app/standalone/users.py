"""``GET /api/user/v1/me``: who the caller is, as the LMS answers it (clients read ``username``)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class MeView(APIView):
    """``{"username": ...}`` of the authenticated caller (the LMS's ``OwnUserView`` body)."""

    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username()})
