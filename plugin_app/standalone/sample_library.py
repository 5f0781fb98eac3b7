"""
The sample v2 content library: a few components in Learning Core, seeded beside the sample course.

The first-time set-up (``provision``, ``serve``) creates it when the database holds no library,
whatever ``EXPORTBULK_OLX_ROOT`` is: libraries live in the database, not in the course folder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from plugin_app.backends import learning_core

SAMPLE_LIBRARY = "lib:ExportBulk:sample-library"
TITLE = "ExportBulk sample library"
DIAGRAM = b"""<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60">
<rect x="5" y="5" width="50" height="50" fill="#1b6ac9"/><circle cx="90" cy="30" r="25" fill="#d94f30"/>
</svg>
"""
# (block type, component code, title, files of its version: block.xml and static files)
COMPONENTS = [
    (
        "html",
        "welcome",
        "Welcome",
        {
            "block.xml": b'<html display_name="Welcome"><![CDATA[<p>Shared material for every course '
            b"of the sample organization, backed up beside them.</p>]]></html>\n",
        },
    ),
    (
        "html",
        "shapes",
        "Shapes",
        {
            "block.xml": b'<html display_name="Shapes"><![CDATA[<p>A square and a circle:</p>'
            b'<img src="/static/shapes.svg" alt="A blue square and a red circle"/>]]></html>\n',
            "static/shapes.svg": DIAGRAM,
        },
    ),
    (
        "problem",
        "square-sides",
        "How many sides?",
        {
            "block.xml": b"""<problem display_name="How many sides?">
<multiplechoiceresponse><p>How many sides has a square?</p>
<choicegroup type="MultipleChoice"><choice correct="false">Three</choice>
<choice correct="true">Four</choice><choice correct="false">Five</choice></choicegroup>
</multiplechoiceresponse>
</problem>
""",
        },
    ),
]


def seed_sample_library() -> bool:
    """Create the sample library, published, if the database holds no library; whether it did."""
    from openedx_content import api

    if learning_core.package_refs("lib:"):
        return False
    now = datetime.now(UTC)
    try:
        with transaction.atomic():
            package = api.create_learning_package(SAMPLE_LIBRARY, TITLE, "Components to back up and restore.")
            for block_type, code, title, files in COMPONENTS:
                component_type = api.get_or_create_component_type("xblock.v1", block_type)
                component, _version = api.create_component_and_version(
                    package.id, component_type, code, title, now
                )
                media: dict[str, Any] = dict(files)  # openedx-core 0.x and 1.x type these values apart
                api.create_next_component_version(component.pk, media, now, title)
            api.publish_all_drafts(package.id)
    except (IntegrityError, ValidationError):  # a process started beside this one seeded it first
        return False
    return True
