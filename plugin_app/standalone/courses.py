"""``GET /api/courses/v1/courses/``: the LMS's course list, paginated the LMS's way, for clients."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from plugin_app.backends import get_backend
from plugin_app.data import CourseSummary


class NamespacedPageNumberPagination(PageNumberPagination):
    """``{"results": [...], "pagination": {next, previous, count, num_pages}}`` as in edx-platform."""

    page_size = 10
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_paginated_response(self, data: list[dict[str, Any]]) -> Response:
        assert self.page is not None  # set by paginate_queryset, called first
        return Response(
            {
                "results": data,
                "pagination": {
                    "next": self.get_next_link(),
                    "previous": self.get_previous_link(),
                    "count": self.page.paginator.count,
                    "num_pages": self.page.paginator.num_pages,
                },
            }
        )


def course_json(summary: CourseSummary, request: Request) -> dict[str, Any]:
    """One course with the fields of the LMS's ``CourseSerializer``."""
    blocks_url = request.build_absolute_uri(reverse("standalone-courses")) + f"?course_id={summary.course_id}"
    return {
        "blocks_url": blocks_url,
        "effort": None,
        "end": summary.end,
        "enrollment_start": None,
        "enrollment_end": None,
        "id": summary.course_id,
        "media": {"course_image": {"uri": None}, "course_video": {"uri": None}, "image": {}},
        "name": summary.display_name,
        "number": summary.number,
        "org": summary.org,
        "short_description": "",
        "start": summary.start,
        "start_display": summary.start,
        "start_type": "timestamp" if summary.start else "empty",
        "pacing": "self" if summary.self_paced else "instructor",
        "mobile_available": False,
        "hidden": False,
        "invitation_only": False,
        "course_id": summary.course_id,
    }


class CourseListView(APIView):
    """Every course, or those of ``?org=``; ``?page=`` and ``?page_size=`` page through them.

    ``?username=`` names the user whose visible courses are listed, as in the LMS
    (lms/djangoapps/course_api ``get_effective_user``): the caller's own name, or anyone's for
    staff; another user's name is refused (403), an unknown one too (404). Here every course is
    visible to every user, so the list is the same.
    """

    def get(self, request: Request) -> Response:
        username = request.query_params.get("username")
        if username is not None and username != request.user.get_username():
            if not request.user.is_staff:
                raise PermissionDenied("Only staff may list another user's courses.")
            if not get_user_model().objects.filter(username=username).exists():
                raise NotFound(f"No user named {username!r}.")
        org = request.query_params.get("org")
        courses = [c for c in get_backend().list_courses() if org is None or c.org == org]
        paginator = NamespacedPageNumberPagination()
        page = paginator.paginate_queryset(courses, request, view=self)
        assert page is not None  # page_size is set
        return paginator.get_paginated_response([course_json(course, request) for course in page])
