"""Bulk upload requests for tests and benchmarks: manifests, ZIPs and small real files (no Django)."""

from __future__ import annotations

import csv
import io
import zipfile

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2213bc50000000049454e44ae426082"
)
PROBLEM = b"""<problem>
<multiplechoiceresponse><p>2 + 2?</p><choicegroup type="MultipleChoice">
<choice correct="false">3</choice><choice correct="true">4</choice></choicegroup></multiplechoiceresponse>
</problem>"""
SRT = b"1\n00:00:00,000 --> 00:00:02,000\nHello\n"


def manifest(rows: list[dict], header: list[str] | None = None) -> bytes:
    header = header or ["course_id", "file", "type", "display_name", "unit", "transcript"]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return text.getvalue().encode("utf-8")


def content_zip(files: dict[str, bytes]) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return data.getvalue()
