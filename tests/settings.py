"""Settings of the in-process tests: the standalone project, in a throw-away state folder."""

import os
import tempfile

os.environ.setdefault("EXPORTBULK_HOME", tempfile.mkdtemp(prefix="exportbulk-tests-"))
# In-process tests run tasks eagerly; tests that need a real worker start the server and one.
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.pop("EXPORTBULK_DATABASE_URL", None)

from plugin_app.standalone.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
