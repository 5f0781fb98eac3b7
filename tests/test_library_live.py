"""
Libraries on the live stack: Learning Core on MariaDB, gunicorn, a real Celery worker on Redis,
moto's S3 server. The sample library is the one the server's first-time set-up seeded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from plugin_app.standalone.sample_library import SAMPLE_LIBRARY
from tests.libraries import comparable, members_of, zip_of
from tests.test_backup_live import cli

pytestmark = pytest.mark.live
REPO = Path(__file__).resolve().parents[1]


def in_stack(live, code: str) -> str:
    """Run Python in the stack's environment (its MariaDB, its Learning Core); its output."""
    script = f"import django\ndjango.setup()\n{code}"
    result = subprocess.run(
        [sys.executable, "-c", script], env=live.env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def backup(live, *library_ids: str) -> dict:
    code, output = cli(live, "--json", "backup", *library_ids, "--wait")
    assert code == 0, output
    return json.loads(output)


def restore(live, items: list[dict], files=(), **options) -> dict:
    client = live.client()
    process_id = client.restore(items, files=list(files), **options)["processId"]
    return list(client.wait(process_id, kind="restore", interval=0.2, timeout=180))[-1]


def stored(live, key: str) -> bytes:
    return live.s3.get_object(Bucket=live.bucket, Key=key)["Body"].read()


def test_the_seeded_library_is_backed_up_then_unchanged_then_exported_again(live):
    first = backup(live, SAMPLE_LIBRARY)
    (item,) = first["items"]
    assert item["status"] == "exported" and item["course_id"] == SAMPLE_LIBRARY
    assert item["key"].startswith(f"backups/{SAMPLE_LIBRARY}/") and item["key"].endswith(".zip")
    assert backup(live, SAMPLE_LIBRARY)["items"][0]["status"] == "unchanged"

    in_stack(
        live,
        "from tests.libraries import change_component\n"
        f"change_component({SAMPLE_LIBRARY!r}, 'square-sides', b'<problem><p>Corners?</p></problem>')",
    )
    third = backup(live, SAMPLE_LIBRARY)
    assert third["items"][0]["status"] == "exported" and third["items"][0]["key"] != item["key"]
    code, output = cli(live, "--json", "verify", third["processId"])
    assert code == 0 and all(check["ok"] for check in json.loads(output)["objects"])


def test_restore_into_a_new_key_then_overwrite_after_a_dry_run(live, tmp_path):
    source = backup(live, SAMPLE_LIBRARY)["items"][0]["key"]
    copy = f"lib:ExportBulk:copy-{uuid.uuid4().hex[:6]}"

    done = restore(live, [{"source": source, "course_id": copy}])
    assert [(i["course_id"], i["status"], i["reason"]) for i in done["items"]] == [(copy, "restored", "")]
    copied = backup(live, copy)["items"][0]
    assert copied["status"] == "exported"
    assert comparable(stored(live, copied["key"])) == comparable(stored(live, source))

    # A modified backup, uploaded: the dry run changes nothing, the overwrite replaces the content.
    members = members_of(stored(live, source))
    block = next(name for name in sorted(members) if "square-sides" in name and name.endswith("block.xml"))
    members[block] = b"<problem><p>Replaced by the overwrite.</p></problem>"
    (tmp_path / "modified.zip").write_bytes(zip_of(members))
    upload = [{"source": "modified.zip", "course_id": copy}]
    dry = restore(live, upload, [tmp_path / "modified.zip"], overwrite=True, dry_run=True)
    assert dry["items"][0]["status"] == "would restore"
    assert backup(live, copy)["items"][0]["status"] == "unchanged"

    done = restore(live, upload, [tmp_path / "modified.zip"], overwrite=True)
    assert done["items"][0]["status"] == "restored"
    after = backup(live, copy)["items"][0]
    assert after["status"] == "exported"
    assert members_of(stored(live, after["key"]))[block] == members[block]
