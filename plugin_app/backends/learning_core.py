"""
Learning Core (openedx-core), where v2 content libraries live: the calls both library backends share.

A library's content is one learning package. Backups are Learning Core's own zip
(``create_zip_file``), restores its own loader (``load_learning_package``), so the format is
exactly what Studio's library backup writes and reads.

openedx-core 1.x renamed the learning package's ``key`` to ``package_ref`` (0.36 runs on Python
3.11, 1.15 on 3.12); everything here passes references positionally or through ``REF_FIELD``, so
one code path serves both.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Keys of learning packages this app creates for itself: never a library key (``lib:``), so that no
# restore target or archive can name one.
STAGING_PREFIX = "exportbulk-staged:"
REPLACED_PREFIX = "exportbulk-replaced:"
# Learning Core's error log can be long; an item's reason keeps its start.
_MAX_REASON = 2000


def _models() -> Any:
    """openedx_content's public models (re-exported by star imports, which mypy does not follow)."""
    return importlib.import_module("openedx_content.models_api")


def _packages() -> Any:
    """The learning packages' manager."""
    return _models().LearningPackage.objects


class LoadFailed(Exception):
    """Learning Core refused the archive; the message is its own account of why."""


def ref_field() -> str:
    """The learning package's reference field: ``package_ref`` (1.x) or ``key`` (0.x)."""
    names = {field.name for field in _models().LearningPackage._meta.get_fields()}
    return "package_ref" if "package_ref" in names else "key"


def package_id(ref: str) -> int | None:
    """The id of the learning package with that reference, or None."""
    found = _packages().filter(**{ref_field(): ref}).values_list("id", flat=True).first()
    return int(found) if found is not None else None


def package_refs(prefix: str) -> list[tuple[str, str]]:
    """(reference, title) of every learning package whose reference starts with ``prefix``."""
    field = ref_field()
    rows = _packages().filter(**{f"{field}__startswith": prefix}).order_by(field)
    return [(str(ref), str(title)) for ref, title in rows.values_list(field, "title")]


def fingerprint(learning_package_id: int) -> str:
    """A digest of the package's draft and published state, from three small queries (no dump).

    Version uuids are new for every version Learning Core writes, a load included: a restore that
    brings back the same version numbers with other content still moves the digest.
    """
    models = _models()
    package = models.LearningPackage.objects.filter(id=learning_package_id)
    state: dict[str, Any] = {
        "package": list(package.values_list("title", "description", "updated")),
        "entities": list(
            models.PublishableEntity.objects.filter(learning_package_id=learning_package_id)
            .order_by("id")
            .values_list("uuid", "can_stand_alone", "draft__version__uuid", "published__version__uuid")
        ),
        "collections": list(
            models.Collection.objects.filter(learning_package_id=learning_package_id)
            .order_by("id")
            .values_list("id", "title", "enabled", "modified")
        ),
    }
    encoded = json.dumps(state, default=str, sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def dump(ref: str, path: Path) -> None:
    """Write the package as Learning Core's zip, as Studio's library backup does."""
    from openedx_content.api import create_zip_file

    create_zip_file(ref, str(path), None, getattr(settings, "CMS_BASE", None))


def load(path: Path, ref: str, user: User) -> int:
    """Load the zip as a new learning package ``ref`` (atomic); its id. Raises LoadFailed."""
    from django.core.exceptions import ValidationError
    from openedx_content.api import load_learning_package

    try:
        result = load_learning_package(str(path), ref, user)
    except (ValidationError, ValueError, KeyError) as exc:
        raise LoadFailed(f"Learning Core refused the archive: {exc}"[:_MAX_REASON]) from None
    if result.get("status") != "success":
        log = result.get("log_file_error")
        detail = log.getvalue().strip() if log is not None else "no detail"
        raise LoadFailed(f"Learning Core refused the archive: {detail}"[:_MAX_REASON])
    loaded = package_id(ref)
    assert loaded is not None  # just created under that reference
    return loaded


def rename(learning_package_id: int, ref: str) -> None:
    from openedx_content.api import update_learning_package

    changes: dict[str, Any] = {ref_field(): ref}
    update_learning_package(learning_package_id, **changes)


def package_ref(learning_package_id: int) -> str:
    """The reference (key) of the learning package with that id."""
    return str(_packages().values_list(ref_field(), flat=True).get(id=learning_package_id))


def replace(old_id: int, new_id: int, ref: str, token: str, attach: Any = None) -> None:
    """In one transaction: the package ``new_id`` takes ``ref`` from ``old_id``, which is deleted.

    ``attach(new_id)`` (inside the transaction) points whatever refers to the old package at the
    new one. Any failure rolls everything back: the old package stays whole under its reference.
    """
    with transaction.atomic():
        rename(old_id, REPLACED_PREFIX + token)
        rename(new_id, ref)
        if attach is not None:
            attach(new_id)
        _packages().filter(id=old_id).delete()


def staging_ref(token: str) -> str:
    """Where restore attempt ``token`` loads its archive before the swap."""
    return STAGING_PREFIX + token
