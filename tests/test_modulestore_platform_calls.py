"""
The modulestore backend's calls into edx-platform, against fakes of exactly the functions it
calls, and into edxval, which runs for real (its models migrated on the test database). Each fake
does what the platform's function does with the arguments that matter here (cited), so a call
made unlike Studio's fails as it would in the platform.
"""

from __future__ import annotations

import io
import types
from dataclasses import dataclass, field

import pytest
from edxval.api import create_external_video, get_video_transcript_data
from edxval.models import Video
from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import AssetLocator

from plugin_app.backends.modulestore import ModulestoreBackend
from plugin_app.data import AssetFile
from tests.builders import PNG, SRT
from tests.fake_platform import install

COURSE = CourseKey.from_string("course-v1:ExportBulk+Sample+2026")
VIDEO = COURSE.make_usage_key("video", "bulkabcr2")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'


class StaticContent:
    """xmodule/contentstore/content.py: the constructor and the two static methods used."""

    def __init__(self, loc, name, content_type, data, length=None, locked=False, **_):
        self.location, self.name, self.content_type, self.data = loc, name, content_type, data
        self.length, self.locked, self.thumbnail_location = length, locked, None

    @staticmethod
    def compute_location(course_key, path, revision=None, is_thumbnail=False):
        path = path.replace("/", "_")
        category = "thumbnail" if is_thumbnail else "asset"
        return course_key.make_asset_key(category, AssetLocator.clean_keeping_underscores(path)).for_branch(
            None
        )

    @staticmethod
    def serialize_asset_key_with_slash(asset_key):
        return "/" + str(asset_key)


@dataclass
class ContentStore:
    """``generate_thumbnail`` as the platform's: an SVG is stored as its own thumbnail, read from
    ``tempfile_path`` in text mode when one is given, else from ``content.data``; any exception is
    logged and the thumbnail is None."""

    saved: list = field(default_factory=list)

    def generate_thumbnail(self, content, tempfile_path=None, dimensions=None):
        location = StaticContent.compute_location(content.location.course_key, "thumb", is_thumbnail=True)
        try:
            if content.content_type == "image/svg+xml":
                if tempfile_path is None:
                    data = io.BytesIO(content.data)
                else:
                    with open(tempfile_path) as f:  # noqa: PTH123 (as the platform reads it)
                        data = io.BytesIO(f.read())
            elif tempfile_path is not None:
                with open(tempfile_path, "rb") as f:  # noqa: PTH123
                    data = io.BytesIO(f.read())
            else:
                data = io.BytesIO(content.data)
        except Exception:  # noqa: BLE001 (the platform logs and goes on)
            return None, location
        thumbnail = StaticContent(location, "thumb", content.content_type, data.getvalue())
        self.saved.append(thumbnail)
        return thumbnail, location

    def save(self, content):
        data = content.data if isinstance(content.data, bytes) else b"".join(content.data)
        stored = StaticContent(
            content.location, content.name, content.content_type, data, locked=content.locked
        )
        stored.thumbnail_location = content.thumbnail_location
        self.saved.append(stored)


@dataclass
class Platform:
    contentstore: ContentStore = field(default_factory=ContentStore)
    blocks: dict = field(default_factory=dict)


class TranscriptsGenerationException(Exception):
    pass


class Transcript:
    """openedx/core/djangoapps/video_config/transcripts_utils.py ``Transcript.convert`` (SRT to SJSON)."""

    SRT, SJSON = "srt", "sjson"

    @staticmethod
    def convert(content, input_format, output_format):
        if not isinstance(content, str) or (input_format, output_format) != ("srt", "sjson"):
            raise TranscriptsGenerationException("bad conversion")
        if "-->" not in content:
            raise TranscriptsGenerationException(
                "Something wrong with SubRip transcripts file during parsing."
            )
        return '{"start": [0], "end": [2000], "text": ["Hello"]}'


@pytest.fixture
def platform(monkeypatch) -> Platform:
    state = Platform()

    class Store:
        def has_item(self, key):
            return key in state.blocks

        def get_item(self, key):
            return state.blocks[key]

    install(
        monkeypatch,
        {
            "openedx.core.djangoapps.contentserver.caching": {"del_cached_content": lambda key: None},
            "xmodule.contentstore.content": {"StaticContent": StaticContent},
            "xmodule.contentstore.django": {"contentstore": lambda: state.contentstore},
            "xmodule.modulestore.django": {"modulestore": Store},
            "openedx.core.djangoapps.video_config.transcripts_utils": {
                "Transcript": Transcript,
                "TranscriptsGenerationException": TranscriptsGenerationException,
                "clean_video_id": lambda video_id: video_id and video_id.strip(),
            },
            "cms.djangoapps.contentstore.video_storage_handlers": {
                "TranscriptProvider": types.SimpleNamespace(CUSTOM="Custom")
            },
        },
    )
    return state


def test_svg_keeps_its_thumbnail(platform):
    url = ModulestoreBackend().save_asset(
        COURSE, AssetFile("Diagram 1.svg", "image/svg+xml", io.BytesIO(SVG), False)
    )
    assert url == "/asset-v1:ExportBulk+Sample+2026+type@asset+block@Diagram_1.svg"
    thumbnail, asset = platform.contentstore.saved
    assert thumbnail.data == SVG
    assert asset.thumbnail_location is not None and asset.data == SVG and asset.name == "Diagram 1.svg"


def test_png_is_still_read_by_path_in_chunks(platform):
    ModulestoreBackend().save_asset(COURSE, AssetFile("logo.png", "image/png", io.BytesIO(PNG), True))
    thumbnail, asset = platform.contentstore.saved
    assert thumbnail.data == PNG and asset.data == PNG
    assert asset.locked is True and asset.thumbnail_location == thumbnail.location


@pytest.mark.django_db
def test_english_transcript_goes_to_edxval_as_studio_uploads_it(platform):
    fields = ModulestoreBackend().save_video_transcript(VIDEO, SRT, user=None)

    edx_video_id = fields["edx_video_id"]
    assert fields == {"edx_video_id": edx_video_id, "transcripts": {"en": f"{edx_video_id}-en.srt"}}
    video = Video.objects.get(edx_video_id=edx_video_id)  # a new external video, as Studio makes one
    assert (video.status, video.client_video_id) == ("external", "external video")
    (transcript,) = video.video_transcripts.all()
    assert (transcript.language_code, transcript.provider, transcript.file_format) == (
        "en",
        "Custom",
        "sjson",
    )
    data = get_video_transcript_data(edx_video_id, "en")
    assert data["content"] == b'{"start": [0], "end": [2000], "text": ["Hello"]}'
    assert platform.contentstore.saved == []  # no contentstore asset of the .srt


@pytest.mark.django_db
def test_a_video_that_has_an_edxval_id_keeps_it(platform):
    kept = create_external_video(display_name="kept")
    platform.blocks[VIDEO] = types.SimpleNamespace(edx_video_id=f" {kept} ")
    fields = ModulestoreBackend().save_video_transcript(VIDEO, SRT, user=None)
    assert fields["edx_video_id"] == kept and Video.objects.count() == 1
    assert get_video_transcript_data(kept, "en") is not None


@pytest.mark.django_db
def test_a_video_id_that_edxval_does_not_know_is_a_row_error(platform):
    platform.blocks[VIDEO] = types.SimpleNamespace(edx_video_id="not-in-val")
    with pytest.raises(ValueError, match="edxval has no video not-in-val"):
        ModulestoreBackend().save_video_transcript(VIDEO, SRT, user=None)


@pytest.mark.django_db
@pytest.mark.parametrize("srt", [b"\xff\xfe not utf-8", b"no timings here"])
def test_an_unreadable_transcript_is_a_row_error(platform, srt):
    with pytest.raises(ValueError, match="problem with this transcript"):
        ModulestoreBackend().save_video_transcript(VIDEO, srt, user=None)
    assert not Video.objects.exists()  # checked before edxval is asked for a video
