"""Learning Core libraries for tests: built through openedx-core's own authoring API, and compared."""

from __future__ import annotations

import io
import tomllib
import zipfile
from datetime import UTC, datetime

from plugin_app.backends import learning_core

# The sample library's layout, smaller: (block type, code, title, files).
COMPONENTS = [
    ("html", "intro", "Intro", {"block.xml": b'<html display_name="Intro"><![CDATA[<p>Hello</p>]]></html>'}),
    (
        "html",
        "figure",
        "Figure",
        {"block.xml": b'<html display_name="Figure"><![CDATA[<img src="/static/f.txt"/>]]></html>',
         "static/f.txt": b"a static file"},
    ),
    ("problem", "quiz", "Quiz", {"block.xml": b'<problem display_name="Quiz"><p>2+2?</p></problem>'}),
]  # fmt: skip
# Values that differ between two dumps of equal content: when things were written (and the
# package's own key, removed from package.toml).
_VOLATILE = {"created", "created_at", "updated"}


def make_library(ref: str, components=COMPONENTS, title: str = "A library") -> int:
    """A published library ``ref`` with the components; its learning package id."""
    from openedx_content import api

    now = datetime.now(UTC)
    package = api.create_learning_package(ref, title)
    for block_type, code, name, files in components:
        component_type = api.get_or_create_component_type("xblock.v1", block_type)
        component, _version = api.create_component_and_version(package.id, component_type, code, name, now)
        api.create_next_component_version(component.pk, files, now, name)
    api.publish_all_drafts(package.id)
    return package.id


def change_component(ref: str, code: str, block_xml: bytes, publish: bool = True) -> None:
    """A new version of the library's component ``code`` with another block.xml."""
    from openedx_content import api
    from openedx_content.models_api import Component

    package_id = learning_core.package_id(ref)
    code_field = "component_code" if hasattr(Component, "component_code") else "local_key"  # 1.x, 0.x
    component = Component.objects.get(learning_package_id=package_id, **{code_field: code})
    api.create_next_component_version(component.pk, {"block.xml": block_xml}, datetime.now(UTC), code)
    if publish:
        api.publish_all_drafts(package_id)


def dump_bytes(ref: str, tmp_path) -> bytes:
    path = tmp_path / f"{ref.replace(':', '_')}.zip"
    learning_core.dump(ref, path)
    return path.read_bytes()


def comparable(zip_bytes: bytes) -> dict[str, object]:
    """A library zip's members: TOML parsed without its volatile values, other files as bytes.

    Two libraries with the same entities, versions and static files compare equal.
    """
    members: dict[str, object] = {}
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        for name in archive.namelist():
            if name.endswith("/"):
                continue
            data = archive.read(name)
            if name.endswith(".toml"):
                document = tomllib.loads(data.decode())
                if name == "package.toml":
                    document["learning_package"].pop("key")
                members[name] = _stable(document)
            else:
                members[name] = data
    return members


def _stable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def zip_of(members: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> bytes:
    """A ZIP with these members (deflated); ``symlinks`` are stored as symbolic links."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.external_attr = 0o120777 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def members_of(zip_bytes: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
