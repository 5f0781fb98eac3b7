"""Settings of the in-process tests: the standalone project, in a throw-away state folder."""

import os
import tempfile
from pathlib import Path

import openedx_authz

os.environ.setdefault("EXPORTBULK_HOME", tempfile.mkdtemp(prefix="exportbulk-tests-"))
# In-process tests run tasks eagerly; tests that need a real worker start the server and one.
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.pop("EXPORTBULK_DATABASE_URL", None)

from plugin_app.standalone.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The platform's own packages, run for real wherever the app calls them (README, "Platform
# packages in the tests"): edxval with the waffle flags it reads, and openedx-authz with its Casbin
# adapter and the edx-organizations app it reads. openedx-authz's scope models point at the
# platform's CourseOverview and ContentLibrary: stand-ins take their place (tests/platform_stand_ins).
INSTALLED_APPS = [
    *INSTALLED_APPS,  # noqa: F405
    "waffle",
    "edxval",
    "simple_history",
    "organizations",
    "openedx_authz.engine.apps.CasbinAdapterConfig",
    "openedx_authz.apps.OpenedxAuthzConfig",
    "tests.platform_stand_ins.apps.PlatformStandInsConfig",
]
VIDEO_TRANSCRIPTS_SETTINGS = {"DIRECTORY_PREFIX": "video-transcripts/", "STORAGE_KWARGS": {}}
VIDEO_IMAGE_SETTINGS = {"DIRECTORY_PREFIX": "video-images/", "STORAGE_KWARGS": {}}
TRANSCRIPT_LANG_CACHE_TIMEOUT = 0
CASBIN_MODEL = str(Path(openedx_authz.ROOT_DIRECTORY) / "engine" / "config" / "model.conf")
CASBIN_AUTO_LOAD_POLICY_INTERVAL = 0
CASBIN_AUTO_SAVE_POLICY = True
CASBIN_LOG_LEVEL = "WARNING"
OPENEDX_AUTHZ_CONTENT_LIBRARY_MODEL = "platform_stand_ins.ContentLibrary"
OPENEDX_AUTHZ_COURSE_OVERVIEW_MODEL = "platform_stand_ins.CourseOverview"
