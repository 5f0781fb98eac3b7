"""A small Django project that runs the app outside Open edX (see ``settings``)."""

# Load the Celery app with Django, so tasks sent from the web process use its broker.
from plugin_app.standalone.celery_app import app as celery_app

__all__ = ["celery_app"]
