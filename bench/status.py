"""The status API's latency under 20 polling clients, against a constant endpoint's (the floor)."""

from __future__ import annotations

import threading
import time

import requests

from bench.stack import Stack

SAMPLE = "course-v1:ExportBulk+Sample+2026"


def bench_status(
    stack: Stack, seconds: float, figures: dict, suffix: str = "", course_id: str = SAMPLE
) -> None:
    """p50/p99 of the status API under 20 polling clients, against a constant endpoint's p99 (the floor)."""
    client = stack.client()
    process_id = client.export_courses([course_id], async_=True)["processId"]
    header = {"Authorization": f"JWT {client.access_token()}"}

    def poll(path: str) -> list[float]:
        latencies: list[float] = []
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def run() -> None:
            session = requests.Session()
            while time.monotonic() < deadline:
                start = time.perf_counter()
                assert session.get(stack.base_url + path, headers=header, timeout=30).status_code == 200
                with lock:
                    latencies.append((time.perf_counter() - start) * 1000)

        threads = [threading.Thread(target=run) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(latencies)

    def p(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    status = poll(f"/api/courses/v0/export/status/{process_id}")
    floor = poll("/standalone/ping")
    figures[f"status_p50_ms{suffix}"] = p(status, 0.5)
    figures[f"status_p99_ms{suffix}"] = p(status, 0.99)
    figures[f"floor_p99_ms{suffix}"] = p(floor, 0.99)
    figures[f"status_p99_vs_floor{suffix}"] = p(status, 0.99) / p(floor, 0.99)
