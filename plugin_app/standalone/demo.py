"""
The README's main job, for real: provision a service client, serve the API with gunicorn, and
through the REST client (a JWT from ``/oauth2/access_token/``) list the courses, export the
sample course, restore that export into a new course id (the round trip), back up the sample v2
library and restore it into a new library key, and bulk-upload files into the sample course from a
CSV manifest and a ZIP. The server's and the worker's logs go to ``$EXPORTBULK_HOME/demo.log``, so
that the demo's own lines read as a story.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import subprocess
import tempfile
import zipfile
from pathlib import Path

from plugin_app.standalone.processes import free_port, standalone, wait_for_port
from tutor_exportbulk.client import OpenedxRESTAPIClient

COURSE_ID = "course-v1:ExportBulk+Sample+2026"
RESTORED_ID = "course-v1:ExportBulk+Restored+2027"
LIBRARY_ID = "lib:ExportBulk:sample-library"
RESTORED_LIBRARY_ID = "lib:ExportBulk:restored-library"
UNIT = "Bulk Uploads / Demo Files / Uploaded Unit"
DEMO_FILES = {
    "welcome.html": b"<h2>Welcome</h2><p>This page came in through the bulk upload API.</p>\n",
    "quiz.xml": b"""<problem>
<multiplechoiceresponse><p>Which API uploaded this problem?</p>
<choicegroup type="MultipleChoice"><choice correct="true">Bulk upload</choice>
<choice correct="false">Studio, by hand</choice></choicegroup></multiplechoiceresponse>
</problem>
""",
    "handout.pdf": b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
}
DEMO_ROWS = [
    {"course_id": COURSE_ID, "file": "welcome.html", "display_name": "Welcome (bulk)", "unit": UNIT},
    {"course_id": COURSE_ID, "file": "quiz.xml", "display_name": "Quick check (bulk)", "unit": UNIT},
    {"course_id": COURSE_ID, "file": "handout.pdf", "display_name": "Handout (bulk)", "unit": UNIT},
]


def _upload_files(folder: Path) -> tuple[Path, Path]:
    manifest, content = folder / "manifest.csv", folder / "content.zip"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["course_id", "file", "display_name", "unit"])
    writer.writeheader()
    writer.writerows(DEMO_ROWS)
    manifest.write_text(text.getvalue(), encoding="utf-8")
    with zipfile.ZipFile(content, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in DEMO_FILES.items():
            archive.writestr(name, data)
    return manifest, content


def _library_round_trip(client: OpenedxRESTAPIClient) -> bool:
    """Back up the sample v2 library (Learning Core's zip), then restore it into a new key."""
    process_id = client.backup_courses([LIBRARY_ID])["processId"]
    *_, backed_up = client.wait(process_id, kind="backup", interval=0.5, timeout=300)
    (item,) = backed_up["items"]
    print(f"Backed up the library {LIBRARY_ID}: {item['status']} {item.get('key') or item.get('reason')}")
    if item["status"] not in ("exported", "unchanged"):
        return False
    items = [{"source": item["key"], "course_id": RESTORED_LIBRARY_ID}]
    process_id = client.restore(items, overwrite=True)["processId"]
    *_, restored = client.wait(process_id, kind="restore", interval=0.5, timeout=300)
    (item,) = restored["items"]
    print(f"Restored it into the library {RESTORED_LIBRARY_ID}: {item['status']} {item['reason']}".rstrip())
    return bool(item["status"] == "restored")


def run_demo(port: int = 0) -> int:
    """Run the demo; returns the exit status."""
    home = Path(os.environ.setdefault("EXPORTBULK_HOME", str(Path.home() / ".exportbulk"))).resolve()
    client_id, client_secret = "exportbulk-demo", secrets.token_urlsafe(24)
    print(f"State folder: {home}")
    if standalone("provision", "--username", "exportbulk_service", "--email", "exportbulk@example.com",
                   "--client-id", client_id, "--client-secret", client_secret).wait() != 0:  # fmt: skip
        return 1
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = home / "demo.log"  # the server's and the worker's logs, apart from the demo's own lines
    print(f"Server and worker logs: {log_path}")
    log = log_path.open("ab")
    server = standalone("serve", "--port", str(port), stdout=log, stderr=subprocess.STDOUT)
    worker = (
        standalone("worker", stdout=log, stderr=subprocess.STDOUT)
        if os.environ.get("CELERY_BROKER_URL")
        else None
    )
    try:
        wait_for_port(port, server)
        where = "in a Celery worker" if worker else "in-process"
        print(f"Serving the API at {base_url} (gunicorn); tasks run {where}")
        client = OpenedxRESTAPIClient(base_url, client_id, client_secret, token_type="jwt")
        courses = client.list_all_courses()
        print(f"Courses visible to the service user: {', '.join(c['id'] for c in courses)}")

        exported = client.export_courses([COURSE_ID])
        if exported["failed_uploads"]:
            print(f"Export failed: {exported['failed_uploads']}")
            return 1
        print(f"Exported {COURSE_ID} -> {exported['successful_uploads'][COURSE_ID]}")

        items = [{"source": f"{COURSE_ID}.tar.gz", "course_id": RESTORED_ID}]
        process_id = client.restore(items, overwrite=True)["processId"]
        *_, restored = client.wait(process_id, kind="restore", interval=0.5, timeout=300)
        (item,) = restored["items"]
        print(
            f"Restored that export into {RESTORED_ID}: {item['status']} {item['reason']}".rstrip()
            + f" ({len(item['findings'])} olxcleaner findings, reported)"
        )
        if item["status"] != "restored":
            return 1
        if not _library_round_trip(client):
            return 1

        with tempfile.TemporaryDirectory() as folder:
            manifest, content = _upload_files(Path(folder))
            process_id = client.bulk_upload(manifest, content, mode="link")["processId"]
        print(f"Bulk upload {process_id} queued ({len(DEMO_ROWS)} rows, mode link)")
        for status in client.wait(process_id, kind="upload", interval=0.5, timeout=300):
            final = status
        print(
            f"Bulk upload {final['status']}: {final['successCount']} of {final['totalCount']} rows done, "
            f"{final['failedCount']} failed; report: {final.get('report')}"
        )
        bucket = os.environ.get("EXPORTBULK_BUCKET")
        storage = f"s3://{bucket}/" if bucket else f"{home / 'storage'}/"
        courses_root = Path(os.environ.get("EXPORTBULK_OLX_ROOT") or home / "courses")
        print(f"The export tarball landed at {storage}{COURSE_ID}.tar.gz (reports beside it, under reports/)")
        print(f"The uploaded files and components landed in the course folder {courses_root / 'sample'}")
        print(f"The restored course is the folder {courses_root / 'ExportBulk+Restored+2027'}")
        return 0 if final["status"] == "Completed" and final["failedCount"] == 0 else 1
    finally:
        for process in (worker, server):
            if process is not None:
                process.terminate()
                process.wait(15)
        log.close()
