"""WSGI entry point of the standalone project (served by gunicorn)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "plugin_app.standalone.settings")
application = get_wsgi_application()
