"""
The 500-byte fan-out tarball on the live stack (gunicorn, a real Celery worker on Redis, MariaDB,
moto): its item ends within three minutes with a status under 2 MB, and a cancel stops it while
olxcleaner runs.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.tarballs import fan_out_tarball

pytestmark = pytest.mark.live


def _start(live, tmp_path, course_id: str) -> str:
    tarball = tmp_path / "fan.tar.gz"
    tarball.write_bytes(fan_out_tarball())
    client = live.client()
    return client.restore([{"source": "fan.tar.gz", "course_id": course_id}], files=[tarball])["processId"]


def test_the_fan_out_tarball_ends_within_three_minutes_with_a_small_status(live, tmp_path):
    client = live.client()
    process_id = _start(live, tmp_path, "course-v1:Fan+Live1+2027")

    final = list(client.wait(process_id, kind="restore", interval=1, timeout=180))[-1]

    (item,) = final["items"]
    ended = {"failed": "Failed", "restored": "Completed"}  # a process whose items all failed failed
    assert final["status"] == ended.get(item["status"]), (final["status"], item["status"], item["reason"])
    assert len(json.dumps(client.restore_status(process_id))) < 2 * 1024**2
    assert len(json.dumps(item["findings"])) <= 3000
    assert not (live.olx_root / "Fan+Live1+2027").exists() or item["status"] == "restored"


def test_a_cancel_stops_a_running_restore_item_and_writes_nothing(live, tmp_path):
    client = live.client()
    process_id = _start(live, tmp_path, "course-v1:Fan+Live2+2027")
    deadline = time.monotonic() + 60
    while client.restore_status(process_id)["items"][0]["status"] != "running":
        assert time.monotonic() < deadline, "the restore never started"
        time.sleep(0.1)

    client.cancel(process_id, kind="restore")

    final = list(client.wait(process_id, kind="restore", interval=0.5, timeout=30))[-1]
    assert final["status"] == "Canceled" and final["items"][0]["status"] == "canceled", final
    assert not (live.olx_root / "Fan+Live2+2027").exists()
