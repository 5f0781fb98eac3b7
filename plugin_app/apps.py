"""App configuration: how the LMS and CMS plug this app in (edx-django-utils plugin contract)."""

from django.apps import AppConfig

# No production settings: the platform makes every key of its YAML config a setting before the
# plugins' settings run (``ENV_TOKENS`` is only kept for old plugins), so those values win already.
_SETTINGS = {
    "common": {"relative_path": "settings.common"},
    "test": {"relative_path": "settings.test"},
}


class ExportBulkConfig(AppConfig):
    """Bulk export and bulk upload APIs, mounted in Studio; the LMS gets the models and settings."""

    name = "plugin_app"
    label = "exportbulk"
    verbose_name = "Bulk export and upload"
    default_auto_field = "django.db.models.BigAutoField"

    plugin_app = {
        "url_config": {
            "cms.djangoapp": {
                "namespace": "exportbulk",
                "regex": r"^api/courses/v0/",
                "relative_path": "rest_api.v0.urls",
            },
        },
        "settings_config": {
            "cms.djangoapp": _SETTINGS,
            "lms.djangoapp": _SETTINGS,
        },
    }

    def ready(self) -> None:
        """Register the kinds of process, and give the lifecycle the task layer's way of sending work.

        Done here, not by import side effects, so that imports run one way: the kinds use the
        lifecycle, the lifecycle uses models and storage, and the tasks are a thin edge above both.
        """
        from plugin_app import backups, exports, kinds, library_restores, restores, sending, tasks, uploads

        for kind in (exports, backups, restores, uploads):
            kinds.register(kind.SPEC)
        restores.register_context(library_restores.CONTEXT)  # restore items whose target is a library
        sending.connect(tasks.SENDERS)
