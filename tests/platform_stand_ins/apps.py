"""The test project's app of stand-ins for edx-platform models that real packages point at."""

from django.apps import AppConfig


class PlatformStandInsConfig(AppConfig):
    name = "tests.platform_stand_ins"
    label = "platform_stand_ins"
    default_auto_field = "django.db.models.BigAutoField"
