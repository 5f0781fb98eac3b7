"""
Course keys are case-sensitive, and MariaDB's default collation (``utf8mb4_general_ci``) is not:
on the live stack (MariaDB, real migrations, a real worker) a course whose key differs from
another's only by case is a course of its own for access, backups and their plan.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time

import pytest
import requests

from tests.conftest import SAMPLE_COURSE_ID, _mariadb

pytestmark = pytest.mark.live
VARIANT = "course-v1:exportbulk+sample+2026"
VARIANT_FOLDER = "exportbulk+sample+2026"
RESTORE = "/api/courses/v0/restore/"


def author_token(live, username: str, course_id: str) -> str:
    """A JWT of a non-staff user of the course's author group, made in the stack's database."""
    code = f"""
from plugin_app.standalone.cli import setup_django
setup_django()
from django.contrib.auth.models import Group, User
from opaque_keys.edx.keys import CourseKey
from plugin_app.backends.olx_directory import author_group_name
from plugin_app.standalone.oauth import make_jwt
user, _ = User.objects.get_or_create(username={username!r})
group, _ = Group.objects.get_or_create(name=author_group_name(CourseKey.from_string({course_id!r})))
user.groups.add(group)
print(make_jwt(user, 3600, ["user_id"], "client_credentials"))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], env=live.env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def variant(live):
    """The sample course copied under the same key in lower case: another course."""
    folder = live.olx_root / VARIANT_FOLDER
    shutil.copytree(live.olx_root / "sample", folder)
    pointer = folder / "course.xml"
    pointer.write_text(
        re.sub(r'org="[^"]*" course="[^"]*"', 'org="exportbulk" course="sample"', pointer.read_text())
    )
    assert 'org="exportbulk"' in pointer.read_text()
    yield VARIANT
    shutil.rmtree(folder, ignore_errors=True)


def test_an_author_of_a_course_cannot_create_its_lower_case_variant(live):
    assert not live.client().export_courses([SAMPLE_COURSE_ID])["failed_uploads"]
    headers = {"Authorization": f"JWT {author_token(live, 'case-author', SAMPLE_COURSE_ID)}"}
    body = {"items": [{"source": f"{SAMPLE_COURSE_ID}.tar.gz", "course_id": VARIANT}]}

    try:
        answer = requests.post(live.base_url + RESTORE, json=body, headers=headers, timeout=60)
        assert answer.status_code == 202, answer.text
        status_url = f"{live.base_url}{RESTORE}status/{answer.json()['processId']}"
        deadline = time.monotonic() + 120
        while True:
            result = requests.get(status_url, headers=headers, timeout=60).json()["result"]
            if result["status"] in ("Completed", "Failed", "Canceled"):
                break
            assert time.monotonic() < deadline, json.dumps(result)
            time.sleep(0.2)
        (item,) = result["items"]
        assert item["status"] == "failed" and item["reason"].startswith("Permission denied"), item
        assert not (live.olx_root / VARIANT_FOLDER).exists()
    finally:
        shutil.rmtree(live.olx_root / VARIANT_FOLDER, ignore_errors=True)


def _backup(live, course_ids: list[str]) -> dict:
    client = live.client()
    process_id = client.backup_courses(course_ids)["processId"]
    return list(client.wait(process_id, kind="backup", interval=0.2, timeout=180))[-1]


def _newest_org(live, course_id: str) -> str:
    """The org in course.xml of the course's newest backup object: what backup:latest restores."""
    listed = live.s3.list_objects_v2(Bucket=live.bucket, Prefix=f"backups/{course_id}/")
    newest = max(o["Key"] for o in listed.get("Contents", []))
    body = live.s3.get_object(Bucket=live.bucket, Key=newest)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        pointer = next(m for m in tar.getmembers() if m.name.endswith("/course.xml"))
        return re.search(r'org="([^"]*)"', tar.extractfile(pointer).read().decode())[1]


def test_backing_up_the_variant_alone_runs_its_plan_and_backs_it_up(live, variant):
    assert _backup(live, [SAMPLE_COURSE_ID])["status"] == "Completed"  # the original has a record

    final = _backup(live, [variant])

    assert final["status"] == "Completed", final
    assert [item["status"] for item in final["items"]] == ["exported"], final["items"]


def test_backup_latest_of_the_original_is_never_the_variant(live, variant):
    final = _backup(live, [SAMPLE_COURSE_ID, variant])

    assert final["status"] == "Completed" and all(i["status"] != "failed" for i in final["items"]), final
    assert _newest_org(live, SAMPLE_COURSE_ID) == "ExportBulk"
    assert _newest_org(live, variant) == "exportbulk"
    rows = _mariadb(
        f"SELECT course_id FROM {live.database}.exportbulk_backupcourse WHERE course_id = '{variant}'"
    )
    assert [row[0] for row in rows] == [variant]  # a record of its own, found by its own key only
