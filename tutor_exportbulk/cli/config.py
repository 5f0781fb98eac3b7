"""Where the two ways in find the platform and the credentials: Tutor's config, or options and files."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import click

from tutor_exportbulk.client import OpenedxRESTAPIClient

CLIENT_ID_SETTING = "EXPORTBULK_OAUTH2_CLIENT_ID"
CLIENT_SECRET_SETTING = "EXPORTBULK_OAUTH2_CLIENT_SECRET"
CONFIG_KEYS = ("lms_url", "studio_url", "client_id", "client_secret", "username", "password", "token_type")


def client_from_tutor(root: str) -> OpenedxRESTAPIClient:
    """A client of this Tutor project's LMS and Studio, with the plugin's OAuth2 application."""
    from tutor import config as tutor_config
    from tutor.exceptions import TutorError

    try:
        config = tutor_config.load(root)
    except TutorError as error:
        raise click.UsageError(str(error)) from error
    if not (config.get(CLIENT_ID_SETTING) and config.get(CLIENT_SECRET_SETTING)):
        raise click.UsageError(
            f"{CLIENT_ID_SETTING} and {CLIENT_SECRET_SETTING} are not set: "
            "run `tutor plugins enable exportbulk` and `tutor config save`."
        )
    scheme = "https" if config.get("ENABLE_HTTPS") else "http"
    return OpenedxRESTAPIClient(
        f"{scheme}://{config['LMS_HOST']}",
        str(config[CLIENT_ID_SETTING]),
        str(config[CLIENT_SECRET_SETTING]),
        studio_url=f"{scheme}://{config['CMS_HOST']}",
    )


def read_config_file(path: Path) -> dict[str, str]:
    """The settings of a JSON file, or of the ``[exportbulk]`` section of an INI file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise click.BadParameter(f"{path}: {error}", param_hint="--config") from error
    else:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=str(path))
        except configparser.Error as error:
            raise click.BadParameter(str(error), param_hint="--config") from error
        if not parser.has_section("exportbulk"):
            raise click.BadParameter(f"{path} has no [exportbulk] section.", param_hint="--config")
        values = dict(parser["exportbulk"])
    if not isinstance(values, dict):
        raise click.BadParameter(f"{path} holds no JSON object.", param_hint="--config")
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise click.BadParameter(
            f"{path}: unknown keys {', '.join(unknown)}; known: {', '.join(CONFIG_KEYS)}.",
            param_hint="--config",
        )
    return {key: str(value) for key, value in values.items() if value is not None}


def client_from_settings(settings: dict[str, str | None]) -> OpenedxRESTAPIClient:
    """A client of the platform these settings name; a usage error names what is missing."""
    missing = [
        f"--{key.replace('_', '-')}" for key in ("lms_url", "client_id", "client_secret") if not settings[key]
    ]
    if missing:
        raise click.UsageError(
            f"Missing {', '.join(missing)} (options, EXPORTBULK_* environment variables or --config)."
        )
    return OpenedxRESTAPIClient(
        str(settings["lms_url"]),
        str(settings["client_id"]),
        str(settings["client_secret"]),
        studio_url=settings["studio_url"],
        username=settings["username"],
        password=settings["password"],
        token_type=settings["token_type"] or "jwt",
    )
