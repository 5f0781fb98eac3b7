"""
A restore whose worker is killed (SIGKILL) right before or right after its swap, then run again.

The kill happens in a real separate process at the exact step; the course is then the old version
or the new one, whole, and the next attempt of the same item ends with a clear outcome.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app import restores
from plugin_app.export import export_course
from tests.builders import SAMPLE_COURSE_ID
from tests.test_restore import tree_digest

pytestmark = pytest.mark.django_db

KILLED_RESTORE = textwrap.dedent("""
    import os, signal, sys, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    call_command("migrate", verbosity=0)  # its own database: the restore holds the course's backup record
    settings.EXPORTBULK_OLX_ROOT, settings.EXPORTBULK_LOCAL_ROOT = sys.argv[1], sys.argv[2]
    settings.EXPORTBULK_BUCKET = ""
    from plugin_app import restores
    from plugin_app.backends import olx_restore
    real_exchange = olx_restore.exchange

    def exchange(a, b):
        if sys.argv[3] == "after":
            real_exchange(a, b)
        os.kill(os.getpid(), signal.SIGKILL)

    olx_restore.exchange = exchange
    class Staff:
        is_active = is_staff = True
    restores.restore_one("p9-0", sys.argv[4], sys.argv[5], Staff(), {"overwrite": True})
""")


@pytest.mark.parametrize("moment", ["before", "after"])
def test_worker_killed_at_the_swap_leaves_old_or_new_and_the_retry_ends_clearly(
    moment, olx_root, local_storage, staff
):
    name = export_course(CourseKey.from_string(SAMPLE_COURSE_ID))
    course = olx_root / "sample"
    (course / "static" / "only-in-old.txt").write_text("the version before the restore")
    old = tree_digest(course)

    arguments = [str(olx_root), str(local_storage), moment, SAMPLE_COURSE_ID, name]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RESTORE, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    after_kill = tree_digest(course)
    new = {k: v for k, v in old.items() if k != "static/only-in-old.txt"}
    assert after_kill == (old if moment == "before" else new)

    outcome = restores.restore_one("p9-0", SAMPLE_COURSE_ID, name, staff, {"overwrite": True})

    assert (outcome.outcome, outcome.error) == (restores.RESTORED, "")
    assert tree_digest(course) == new
    assert not any((olx_root / ".exportbulk-restore").iterdir())
