"""
Doing one manifest row of a bulk upload through the course backend.

Every row is safe to do twice: assets are stored under their name (a second save replaces
the first) and components get a block id derived from the process and the row, so a retried
or restarted task replaces what it made instead of adding a copy.
"""

from __future__ import annotations

import html
import posixpath
import zipfile
from typing import Any, BinaryIO, cast

from opaque_keys.edx.keys import CourseKey

from plugin_app.backends.base import CourseBackend
from plugin_app.data import AssetFile, ComponentSpec, ContentType, UploadMode
from plugin_app.manifest import ManifestRow, content_type_of


def component_block_id(process_hex: str, line: int) -> str:
    """The block id of the component made for a row of a process."""
    return f"bulk{process_hex[:16]}r{line}"


def _store_asset(
    backend: CourseBackend, course_key: CourseKey, archive: zipfile.ZipFile, file: str, locked: bool
) -> str:
    with archive.open(file) as stream:
        name = posixpath.basename(file)
        return backend.save_asset(
            course_key, AssetFile(name, content_type_of(name), cast(BinaryIO, stream), locked)
        )


def _presenting_html(row: ManifestRow, asset_url: str) -> str:
    """HTML that shows an asset: the image itself, or a link to the file."""
    portable = f"/static/{row.asset_name}"
    title = html.escape(row.display_name)
    if content_type_of(row.asset_name).startswith("image/"):
        return f'<p><img src="{html.escape(portable)}" alt="{title}"/></p>\n'
    return f'<p><a href="{html.escape(portable)}">{title}</a></p>\n'


def _component(row: ManifestRow, archive: zipfile.ZipFile, block_id: str, asset_url: str) -> ComponentSpec:
    if row.type == ContentType.HTML:
        fields = {"data": archive.read(row.file).decode("utf-8")}
        return ComponentSpec("html", block_id, row.display_name, fields)
    if row.type == ContentType.PROBLEM:
        return ComponentSpec(
            "problem", block_id, row.display_name, {"data": archive.read(row.file).decode("utf-8")}
        )
    if row.type == ContentType.VIDEO:
        return ComponentSpec(
            "video", block_id, row.display_name, {"html5_sources": [asset_url], "transcripts": {}}
        )
    return ComponentSpec("html", block_id, row.display_name, {"data": _presenting_html(row, asset_url)})


def process_row(
    backend: CourseBackend,
    archive: zipfile.ZipFile,
    row: ManifestRow,
    mode: UploadMode,
    process_hex: str,
    user: Any,
) -> dict[str, str]:
    """Do one row; return what it made: ``asset_name`` and ``asset_url``, and/or ``usage_key``."""
    course_key = CourseKey.from_string(row.course_id)
    if mode != UploadMode.LINK:
        locked = mode == UploadMode.UPLOAD
        return {
            "asset_name": row.asset_name,
            "asset_url": _store_asset(backend, course_key, archive, row.file, locked),
        }
    result: dict[str, str] = {}
    asset_url = ""
    # The unit first: a usage key naming no unit fails the row before anything is written.
    unit_key = backend.resolve_unit(course_key, row.unit, user)
    if row.type not in (ContentType.HTML, ContentType.PROBLEM):
        asset_url = _store_asset(backend, course_key, archive, row.file, locked=False)
        result.update(asset_name=row.asset_name, asset_url=asset_url)
    spec = _component(row, archive, component_block_id(process_hex, row.line), asset_url)
    if row.transcript:  # through edxval, as Studio's transcript upload: not a course asset
        video_key = course_key.make_usage_key(spec.block_type, spec.block_id)
        spec.fields.update(backend.save_video_transcript(video_key, archive.read(row.transcript), user))
    usage_key = backend.create_component(unit_key, spec, user)
    backend.publish(unit_key, user)
    result["usage_key"] = str(usage_key)
    return result
