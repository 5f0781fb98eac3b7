"""Bulk upload requests for tests and benchmarks: manifests, ZIPs and small real files (no Django)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from xml.etree import ElementTree

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2213bc50000000049454e44ae426082"
)
PROBLEM = b"""<problem>
<multiplechoiceresponse><p>2 + 2?</p><choicegroup type="MultipleChoice">
<choice correct="false">3</choice><choice correct="true">4</choice></choicegroup></multiplechoiceresponse>
</problem>"""
SRT = b"1\n00:00:00,000 --> 00:00:02,000\nHello\n"
SAMPLE_COURSE_ID = "course-v1:ExportBulk+Sample+2026"


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


def mixed_upload(rows_count: int, unit: str, course_id: str = SAMPLE_COURSE_ID) -> tuple[bytes, bytes]:
    """A link-mode upload of every content type in turn into one unit: (manifest, ZIP)."""
    rows, files = [], {}
    for i in range(rows_count):
        kind = i % 5
        if kind == 0:
            name = f"pages/p{i}.html"
            files[name] = f"<p>page {i}</p>".encode()
            rows.append({"course_id": course_id, "file": name, "unit": unit})
        elif kind == 1:
            name = f"problems/q{i}.xml"
            files[name] = PROBLEM
            rows.append({"course_id": course_id, "file": name, "unit": unit})
        elif kind == 2:
            name, srt = f"v{i}.mp4", f"v{i}.srt"
            files[name], files[srt] = b"\x00mp4" * 10, SRT
            rows.append({"course_id": course_id, "file": name, "unit": unit, "transcript": srt})
        elif kind == 3:
            name = f"d{i}.pdf"
            files[name] = b"%PDF-1.4 " + bytes(str(i), "ascii")
            rows.append({"course_id": course_id, "file": name, "unit": unit, "display_name": f"Doc {i}"})
        else:
            name = f"img{i}.png"
            files[name] = PNG
            rows.append({"course_id": course_id, "file": name, "unit": unit, "type": "asset"})
    return manifest(rows), content_zip(files)


def unit_children(course: Path, title: str) -> list[str]:
    """The url_names of the components of the one unit titled ``title`` of an OLX course."""
    units = [
        p
        for p in (course / "vertical").glob("*.xml")
        if ElementTree.parse(p).getroot().get("display_name") == title
    ]
    assert len(units) == 1, f"{len(units)} units titled {title!r}"
    return [c.get("url_name") for c in ElementTree.parse(units[0]).getroot()]
