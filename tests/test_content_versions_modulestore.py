"""
Content versions and fingerprints of the modulestore backend: the real edxval (its models on the
test database, its own API making the videos), fakes only for edx-platform itself (the split
course index and structures, the contentstore, content tagging).
"""

from __future__ import annotations

import sys
import types
from datetime import datetime

import pytest
from bson import ObjectId
from django.core.files.base import ContentFile
from opaque_keys.edx.keys import CourseKey

from plugin_app.backends.base import CourseNotFound
from plugin_app.backends.modulestore import ModulestoreBackend

COURSE = CourseKey.from_string("course-v1:ExportBulk+Sample+2026")
OTHER = CourseKey.from_string("course-v1:ExportBulk+Other+2026")
SJSON = b'{"start": [0], "end": [1000], "text": ["Hello"]}'

pytestmark = pytest.mark.django_db


class Platform:
    """The edx-platform lookups the backend makes, holding courses whose tests change them."""

    def __init__(self) -> None:
        self.index: dict[str, list[str]] = {}  # course id -> [draft, published, library] structure ids
        self.structures: dict[str, dict[str, str]] = {}  # structure id -> {block id: edx_video_id}
        self.assets: dict[str, list[dict]] = {}
        self.tags: dict[str, dict] = {}

    def add_course(self, key: CourseKey, videos: dict[str, str]) -> None:
        draft, published = str(ObjectId()), str(ObjectId())
        self.index[str(key)] = [draft, published, None]
        self.structures[draft] = dict(videos)
        self.structures[published] = dict(videos)
        self.assets[str(key)] = [
            {"asset_key": f"asset-v1:{key.org}+{key.course}+{key.run}+type@asset+block@a.png", "length": 10,
             "uploadDate": datetime(2026, 1, 1), "locked": False},
        ]  # fmt: skip
        self.tags[str(key)] = {}

    def edit(self, key: CourseKey, *, publish: bool = False, videos: dict[str, str] | None = None) -> None:
        """A new draft structure (and a new published one with ``publish``), as split writes them."""
        versions = self.index[str(key)]
        new = str(ObjectId())
        self.structures[new] = dict(videos if videos is not None else self.structures[versions[0]])
        versions[0] = new
        if publish:
            versions[1] = new

    # The platform's calls ------------------------------------------------------------------------

    def index_rows(self, course_id__in):
        wanted = {str(key) for key in course_id__in}
        rows = [(CourseKey.from_string(c), *v) for c, v in self.index.items() if c in wanted]
        return types.SimpleNamespace(values_list=lambda *fields: rows)

    def find_structures(self, query, projection):
        """split's structures collection, with the projection applied as MongoDB applies it."""
        assert projection == {"blocks.block_type": 1, "blocks.fields.edx_video_id": 1}
        found = []
        for structure_id in query["_id"]["$in"]:
            videos = self.structures.get(str(structure_id))
            if videos is not None:
                blocks = [{"block_type": "video", "fields": {"edx_video_id": v}} for v in videos.values()]
                blocks.append({"block_type": "html", "fields": {}})  # no edx_video_id: projected away
                blocks.append({"block_type": "video"})  # a video without the field
                found.append({"_id": structure_id, "blocks": blocks})
        return found

    def all_content(self, key):
        assets = self.assets[str(key)]
        return list(assets), len(assets)

    def object_tags(self, key):
        tags = self.tags[str(key)]
        taxonomies = {1: types.SimpleNamespace(export_id="difficulty")}
        return {
            obj: {1: [types.SimpleNamespace(value=v) for v in values]} for obj, values in tags.items()
        }, taxonomies


@pytest.fixture
def platform(monkeypatch) -> Platform:
    state = Platform()
    structures = types.SimpleNamespace(find=state.find_structures)
    split = types.SimpleNamespace(db_connection=types.SimpleNamespace(structures=structures))
    store = types.SimpleNamespace(_get_modulestore_by_type=lambda kind: split if kind == "split" else None)
    modules = {
        "common.djangoapps.split_modulestore_django.models": types.SimpleNamespace(
            SplitModulestoreCourseIndex=types.SimpleNamespace(
                objects=types.SimpleNamespace(filter=state.index_rows)
            )
        ),
        "xmodule.modulestore": types.SimpleNamespace(
            ModuleStoreEnum=types.SimpleNamespace(Type=types.SimpleNamespace(split="split"))
        ),
        "xmodule.modulestore.django": types.SimpleNamespace(modulestore=lambda: store),
        "xmodule.contentstore.django": types.SimpleNamespace(
            contentstore=lambda: types.SimpleNamespace(get_all_content_for_course=state.all_content)
        ),
        "openedx.core.djangoapps.content_tagging.api": types.SimpleNamespace(
            get_all_object_tags=state.object_tags
        ),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return state


def external_video_with_transcript(text: bytes = SJSON) -> str:
    """A video as Studio's transcript upload (and our bulk upload) makes one: no CourseVideo row."""
    from edxval.api import create_external_video, create_or_update_video_transcript

    video_id = create_external_video(display_name="external video")
    metadata = {"provider": "Custom", "file_format": "sjson", "language_code": "en"}
    create_or_update_video_transcript(video_id, "en", metadata, ContentFile(text))
    return video_id


def course_video(course: CourseKey, video_id: str) -> str:
    """A video of the course's video uploads page: a VAL video with a CourseVideo row and an encoding
    (of the desktop_mp4 profile, which edxval's migrations make)."""
    from edxval.api import create_video

    return create_video(
        {
            "edx_video_id": video_id,
            "client_video_id": "lecture.mp4",
            "duration": 12.5,
            "status": "upload",
            "courses": [str(course)],
            "encoded_videos": [
                {"profile": "desktop_mp4", "url": "https://v/1.mp4", "file_size": 10, "bitrate": 5}
            ],
        }
    )


def test_versions_answer_the_anchors_fields_from_the_index_contentstore_and_edxval(platform):
    external = external_video_with_transcript()
    platform.add_course(COURSE, {"video1": external})
    versions = ModulestoreBackend().content_versions([COURSE, OTHER])
    assert list(versions) == [COURSE]  # OTHER has no index row
    found = versions[COURSE]
    assert found.published_version == platform.index[str(COURSE)][1]
    assert found.static_assets.count == 1 and found.static_assets.latest_asset.endswith("block@a.png")
    assert found.static_assets.latest_upload.isoformat() == "2026-01-01T00:00:00+00:00"
    # The external video's transcript counts, found through the structure, not a CourseVideo row.
    assert found.transcripts.count == 1 and found.transcripts.latest_modified is not None


def test_transcripts_of_the_courses_video_rows_count_as_in_the_anchor(platform):
    course_video(COURSE, "uploaded-1")
    from edxval.api import create_or_update_video_transcript

    create_or_update_video_transcript(
        "uploaded-1",
        "fr",
        {"provider": "Custom", "file_format": "sjson", "language_code": "fr"},
        ContentFile(SJSON),
    )
    platform.add_course(COURSE, {})
    assert ModulestoreBackend().content_versions([COURSE])[COURSE].transcripts.count == 1


def test_a_batch_of_courses_gets_each_its_own_videos(platform):
    mine, theirs = external_video_with_transcript(), external_video_with_transcript()
    platform.add_course(COURSE, {"v": mine})
    platform.add_course(OTHER, {"v": theirs, "w": external_video_with_transcript()})
    versions = ModulestoreBackend().content_versions([COURSE, OTHER])
    assert (versions[COURSE].transcripts.count, versions[OTHER].transcripts.count) == (1, 2)


CHANGES = [
    "draft_edit", "publish", "new_asset", "replaced_asset", "asset_locked", "external_transcript_replaced",
    "course_video_transcript_added", "encoding_changed", "duration_changed", "client_video_id_changed",
    "video_image_set", "video_added_to_structure", "tag_added", "tag_value_changed",
]  # fmt: skip


@pytest.mark.parametrize("change", CHANGES)
def test_each_change_an_export_would_carry_moves_the_fingerprint(platform, change):
    from edxval import api as val
    from edxval.models import EncodedVideo, Video

    external = external_video_with_transcript()
    uploaded = course_video(COURSE, "uploaded-1")
    platform.add_course(COURSE, {"v1": external, "v2": uploaded})
    platform.add_course(OTHER, {})
    backend = ModulestoreBackend()
    before, other_before = backend.fingerprint(COURSE), backend.fingerprint(OTHER)
    assert before.startswith("modulestore-v2:") and backend.fingerprint(COURSE) == before
    course_id = str(COURSE)
    if change == "draft_edit":
        platform.edit(COURSE)
    elif change == "publish":
        platform.edit(COURSE, publish=True)
    elif change == "new_asset":
        platform.assets[course_id].append({"asset_key": "asset-v1:x+y+z+type@asset+block@b.pdf", "length": 1})
    elif change == "replaced_asset":
        platform.assets[course_id][0] = {**platform.assets[course_id][0], "uploadDate": datetime(2026, 2, 1)}
    elif change == "asset_locked":
        platform.assets[course_id][0] = {**platform.assets[course_id][0], "locked": True}
    elif change == "external_transcript_replaced":
        metadata = {"provider": "Custom", "file_format": "sjson", "language_code": "en"}
        val.create_or_update_video_transcript(
            external, "en", metadata, ContentFile(SJSON.replace(b"Hello", b"Bye"))
        )
    elif change == "course_video_transcript_added":
        metadata = {"provider": "Custom", "file_format": "sjson", "language_code": "es"}
        val.create_or_update_video_transcript(uploaded, "es", metadata, ContentFile(SJSON))
    elif change == "encoding_changed":
        EncodedVideo.objects.filter(video__edx_video_id=uploaded).update(url="https://v/2.mp4")
    elif change == "duration_changed":
        Video.objects.filter(edx_video_id=uploaded).update(duration=99.0)
    elif change == "client_video_id_changed":
        Video.objects.filter(edx_video_id=uploaded).update(client_video_id="renamed.mp4")
    elif change == "video_image_set":
        val.update_video_image(uploaded, course_id, ContentFile(b"\x89PNG" + b"0" * 4096), "poster.png")
    elif change == "video_added_to_structure":
        platform.structures[platform.index[course_id][0]]["v3"] = external_video_with_transcript()
    elif change == "tag_added":
        platform.tags[course_id] = {
            course_id.replace("course-v1:", "block-v1:") + "+type@html+block@i": ["Hard"]
        }
    elif change == "tag_value_changed":
        platform.tags[course_id] = {course_id: ["Easy"]}
        before = backend.fingerprint(COURSE)
        platform.tags[course_id] = {course_id: ["Hard"]}
    assert backend.fingerprint(COURSE) != before
    # The other course is unchanged: none of these changes is its.
    assert backend.fingerprint(OTHER) == other_before


def test_unrelated_edxval_changes_do_not_move_the_fingerprint(platform):
    from edxval.api import create_or_update_video_transcript

    platform.add_course(COURSE, {"v1": external_video_with_transcript()})
    backend = ModulestoreBackend()
    before = backend.fingerprint(COURSE)
    elsewhere = external_video_with_transcript()  # another course's external video
    create_or_update_video_transcript(
        elsewhere,
        "de",
        {"provider": "Custom", "file_format": "sjson", "language_code": "de"},
        ContentFile(SJSON),
    )
    course_video(OTHER, "their-upload")
    assert backend.fingerprint(COURSE) == before


def test_fingerprint_of_a_course_without_an_index_is_course_not_found(platform):
    with pytest.raises(CourseNotFound):
        ModulestoreBackend().fingerprint(COURSE)
