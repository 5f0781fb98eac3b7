"""
The export anchor's endpoints, each over a baseline of the same run (the authenticated constant
endpoint ``/standalone/ping``: the framework's floor on this machine):

- ``versions_200_vs_floor``: ``POST export/versions/`` for 200 courses, warm (the worker-side digest
  cache filled by a first call, as a pipeline that polls finds it); ``versions_200_cold_vs_floor``
  the first call, which reads every file once;
- ``export_answer_1_vs_floor``: a synchronous export of one course, from request to answer.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import requests

from bench.stack import copy_course
from plugin_app.standalone.cli import SAMPLE_COURSES

SAMPLE = "course-v1:ExportBulk+Sample+2026"
COURSES = 200


def bench_versions(stack: Any, figures: dict) -> None:
    ids = [
        copy_course(SAMPLE_COURSES / "sample", stack.work / "courses", f"Versions{i:03d}")
        for i in range(COURSES)
    ]
    client = stack.client()
    session = requests.Session()
    session.headers["Authorization"] = f"JWT {client.access_token()}"

    def timed(method: str, path: str, **kwargs: Any) -> float:
        start = time.perf_counter()
        response = session.request(method, stack.base_url + path, timeout=600, **kwargs)
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.text
        return elapsed

    def median(runs: int, method: str, path: str, **kwargs: Any) -> float:
        return statistics.median(timed(method, path, **kwargs) for _ in range(runs))

    versions = {"json": {"courses": ids}}
    cold = timed("POST", "/api/courses/v0/export/versions/", **versions)
    warm = median(5, "POST", "/api/courses/v0/export/versions/", **versions)
    export = median(5, "POST", "/api/courses/v0/export/", json={"courses": [SAMPLE]})
    floor = median(21, "GET", "/standalone/ping")
    figures["versions_200_ms"] = warm * 1000
    figures["versions_200_vs_floor"] = warm / floor
    figures["versions_200_cold_vs_floor"] = cold / floor
    figures["export_answer_1_ms"] = export * 1000
    figures["export_answer_1_vs_floor"] = export / floor
    figures["floor_ms"] = floor * 1000
