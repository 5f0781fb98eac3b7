"""The Celery application of the standalone project (in Open edX, the LMS/CMS has its own)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "plugin_app.standalone.settings")
app = Celery("exportbulk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["plugin_app"])
