"""
Content versions of courses in edx-platform: what the versions API answers and the backup
fingerprint is made of, read from the platform's indexes for a batch of courses at once.

The sources are what ``export_course_to_xml`` (xmodule/modulestore/xml_exporter.py) writes:

- the split course index (``SplitModulestoreCourseIndex``): the draft, published and library
  structure versions. Any edit or publish moves them; blocks, their settings and the asset
  metadata all live in the structures;
- the contentstore (``get_all_content_for_course``): every file's attributes. A new, replaced or
  re-locked file moves no structure;
- edxval: the transcripts, and the metadata ``<video_asset>`` carries (``client_video_id``,
  duration, encodings, the course video image), of every video the course's structures name by
  ``edx_video_id``. The ids are settings fields stored in the structure documents, so one query
  of them reads every video without a block walk, external videos included: those come from
  ``create_external_video`` (Studio's transcript upload, our bulk upload) and have no
  ``CourseVideo`` row, so the anchor's ``video__courses__course_id`` never finds them. The
  course's ``CourseVideo`` rows count too, as in the anchor;
- content tags (``tags.csv``): content_tagging's ``get_all_object_tags``, one query per course.

edx-platform is imported inside the functions only, so that this module imports anywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import LibraryLocator

from plugin_app.data import ContentVersions, StaticAssets, Transcripts


def modulestore_versions(course_keys: list[CourseKey]) -> dict[CourseKey, ContentVersions]:
    """The content versions of the courses that exist, by the keys given; a constant number of
    queries for the batch, plus one contentstore and one tag query per course."""
    from common.djangoapps.split_modulestore_django.models import SplitModulestoreCourseIndex

    rows = SplitModulestoreCourseIndex.objects.filter(course_id__in=course_keys).values_list(
        "course_id", "draft_version", "published_version", "library_version"
    )
    index = {str(row[0]): tuple(row[1:]) for row in rows}
    found = {key: index[str(key)] for key in course_keys if str(key) in index}
    if not found:
        return {}
    videos = _course_videos({str(key): versions for key, versions in found.items()})
    all_videos = set().union(*videos.values())
    transcripts = _by_video(_transcript_rows(all_videos))
    metadata = _by_video(_video_metadata_rows(all_videos))
    images = _course_video_images(list(videos), all_videos)
    result = {}
    for key, versions in found.items():
        course_id = str(key)
        ids = sorted(videos[course_id])
        course_transcripts = [row for video in ids for row in transcripts.get(video, [])]
        digests: dict[str, str] = {}
        assets = _static_assets(key, digests)
        digests.update(
            structures=_digest(versions),
            transcripts=_digest(course_transcripts),
            video_metadata=_digest(
                [[row for video in ids for row in metadata.get(video, [])], images.get(course_id, [])]
            ),
            tags=_tags_digest(key),
        )
        result[key] = ContentVersions(
            published_version=str(versions[1] or ""),
            static_assets=assets,
            transcripts=Transcripts(
                count=len(course_transcripts),
                latest_modified=max((_utc(row[4]) for row in course_transcripts), default=None),
            ),
            digests=digests,
        )
    return result


def _course_videos(versions: dict[str, tuple[Any, ...]]) -> dict[str, set[str]]:
    """The ``edx_video_id`` of every video block in each course's structures (draft, published,
    library: the export writes drafts too), and of its ``CourseVideo`` rows; two queries.

    The structures are read from split's structures collection (split_mongo/mongo_connection.py
    keeps each as one document, its blocks a list of ``{block_type, block_id, fields, ...}``),
    projected to the two fields needed: a course's structure runs to megabytes, its video ids to
    a few bytes each.
    """
    from bson import ObjectId
    from edxval.models import CourseVideo
    from xmodule.modulestore import ModuleStoreEnum
    from xmodule.modulestore.django import modulestore

    courses_of: dict[str, list[str]] = {}
    for course_id, structure_ids in versions.items():
        for structure_id in filter(None, structure_ids):
            courses_of.setdefault(str(structure_id), []).append(course_id)
    videos: dict[str, set[str]] = {course_id: set() for course_id in versions}
    split = modulestore()._get_modulestore_by_type(ModuleStoreEnum.Type.split)
    structures = split.db_connection.structures.find(
        {"_id": {"$in": [ObjectId(i) for i in courses_of]}},
        {"blocks.block_type": 1, "blocks.fields.edx_video_id": 1},
    )
    for structure in structures:
        named = {
            (block.get("fields") or {}).get("edx_video_id", "").strip()
            for block in structure.get("blocks", [])
            if block.get("block_type") == "video"
        }
        named.discard("")
        for course_id in courses_of.get(str(structure["_id"]), []):
            videos[course_id] |= named
    rows = CourseVideo.objects.filter(course_id__in=list(versions)).values_list(
        "course_id", "video__edx_video_id"
    )
    for course_id, edx_video_id in rows:
        videos[course_id].add(edx_video_id)
    return videos


def _transcript_rows(video_ids: set[str]) -> Iterable[tuple[Any, ...]]:
    """edxval's transcripts of the videos (``modified`` moves when one is replaced)."""
    from edxval.models import VideoTranscript

    rows: Iterable[tuple[Any, ...]] = (
        VideoTranscript.objects.filter(video__edx_video_id__in=video_ids)
        .order_by("video__edx_video_id", "language_code")
        .values_list(
            "video__edx_video_id", "language_code", "file_format", "provider", "modified", "transcript"
        )
    )
    return rows


def _video_metadata_rows(video_ids: set[str]) -> list[tuple[Any, ...]]:
    """What edxval's ``export_to_xml`` writes into ``<video_asset>`` of each video, but the
    transcripts and the course's image: its ids and duration, and every encoding."""
    from edxval.models import EncodedVideo, Video

    videos = Video.objects.filter(edx_video_id__in=video_ids).values_list(
        "edx_video_id", "client_video_id", "duration"
    )
    encodings = (
        EncodedVideo.objects.filter(video__edx_video_id__in=video_ids)
        .order_by("video__edx_video_id", "profile__profile_name")
        .values_list("video__edx_video_id", "profile__profile_name", "url", "file_size", "bitrate")
    )
    return sorted([*videos, *encodings], key=lambda row: json.dumps(row, default=str))


def _course_video_images(course_ids: list[str], video_ids: set[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Each course's video images (``<video_asset image=...>``: edxval keeps one per course and video)."""
    from edxval.models import VideoImage

    rows = (
        VideoImage.objects.filter(
            course_video__course_id__in=course_ids, course_video__video__edx_video_id__in=video_ids
        )
        .order_by("course_video__video__edx_video_id")
        .values_list("course_video__course_id", "course_video__video__edx_video_id", "image")
    )
    images: dict[str, list[tuple[Any, ...]]] = {}
    for course_id, *image in rows:
        images.setdefault(course_id, []).append(tuple(image))
    return images


def _by_video(rows: Iterable[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(tuple(row))
    return grouped


def _static_assets(course_key: CourseKey, digests: dict[str, str]) -> StaticAssets:
    """The course's files as the contentstore lists them (xmodule/contentstore/mongo.py
    ``get_all_content_for_course``); records the digest of every file's attributes in ``digests``."""
    from xmodule.contentstore.django import contentstore

    assets, count = contentstore().get_all_content_for_course(course_key)
    assets = sorted(assets, key=lambda a: str(a.get("asset_key") or a.get("_id")))
    digests["static_assets"] = _digest([json.dumps(a, sort_keys=True, default=str) for a in assets])
    dated = [a for a in assets if a.get("uploadDate")]
    newest = max(dated, key=lambda a: (_utc(a["uploadDate"]), str(a.get("asset_key")))) if dated else None
    return StaticAssets(
        count=count,
        latest_upload=_utc(newest["uploadDate"]) if newest else None,
        latest_asset=str(newest["asset_key"]) if newest else None,
    )


def _tags_digest(course_key: CourseKey) -> str:
    """The course's content tags as ``tags.csv`` holds them: each tagged object (the course and its
    blocks), each taxonomy's export id and its tag values. Empty where the platform has no tagging."""
    if isinstance(course_key, LibraryLocator):
        return ""
    try:
        from openedx.core.djangoapps.content_tagging.api import get_all_object_tags
    except ImportError:
        return ""
    object_tags, taxonomies = get_all_object_tags(course_key)
    rows = []
    for object_id, by_taxonomy in object_tags.items():
        for taxonomy_id, tags in by_taxonomy.items():
            taxonomy = taxonomies.get(taxonomy_id)
            # Object tags, or their values already (the dict's shape changed across releases).
            values = sorted(str(getattr(tag, "value", tag)) for tag in tags)
            rows.append([str(object_id), getattr(taxonomy, "export_id", None) or str(taxonomy_id), values])
    return _digest(sorted(rows))


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()


def _utc(value: datetime) -> datetime:
    """pymongo answers naive datetimes that are UTC; Django aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
