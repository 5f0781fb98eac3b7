"""Where the two ways in find the platform and the credentials: Tutor's config, or options and files."""

from __future__ import annotations

import configparser
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tutor_exportbulk.client import OpenedxRESTAPIClient

CLIENT_ID_SETTING = "EXPORTBULK_OAUTH2_CLIENT_ID"
CLIENT_SECRET_SETTING = "EXPORTBULK_OAUTH2_CLIENT_SECRET"
CONFIG_KEYS = ("lms_url", "studio_url", "client_id", "client_secret", "username", "password", "token_type")

F = TypeVar("F", bound=Callable[..., Any])

# The global options of `exportbulk`: (declaration, environment variable, other click arguments).
_OPTIONS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (
        ("--config", "config_file"),
        "EXPORTBULK_CONFIG",
        {
            "type": click.Path(exists=True, dir_okay=False, path_type=Path),
            "help": "A JSON file, or an INI file with an [exportbulk] section, of the settings below.",
        },
    ),
    (("--lms-url",), "EXPORTBULK_LMS_URL", {"help": "The LMS, e.g. https://lms.example.com."}),
    (("--studio-url",), "EXPORTBULK_STUDIO_URL", {"help": "Studio (default: the LMS URL)."}),
    (("--client-id",), "EXPORTBULK_CLIENT_ID", {"help": "OAuth2 client id."}),
    (
        ("--client-secret",),
        "EXPORTBULK_CLIENT_SECRET",
        {"help": "OAuth2 client secret (prefer the variable)."},
    ),
    (("--username",), "EXPORTBULK_USERNAME", {"help": "For the password grant."}),
    (("--password",), "EXPORTBULK_PASSWORD", {"help": "For the password grant (prefer the variable)."}),
    (("--token-type",), "EXPORTBULK_TOKEN_TYPE", {"type": click.Choice(["jwt", "bearer"])}),
]
CONNECTION_KEYS = ("config_file", *CONFIG_KEYS)


def group_options(function: F) -> F:
    """The connection options of the ``exportbulk`` group, each with its environment variable."""
    for declaration, envvar, extra in reversed(_OPTIONS):
        function = click.option(*declaration, envvar=envvar, **extra)(function)
    return function


def command_options(store: Callable[[click.Context, str, Any], None]) -> Callable[[F], F]:
    """The same options on each command, so that they may follow it (``exportbulk courses
    --lms-url ...``); ``store`` records a value given there, which wins over the group's."""

    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None and param.name:
            store(ctx, param.name, value)

    def decorate(function: F) -> F:
        for declaration, _envvar, extra in reversed(_OPTIONS):
            option = click.option(*declaration, expose_value=False, callback=remember, hidden=True, **extra)
            function = option(function)
        return function

    return decorate


def client_from_options(options: dict[str, Any]) -> OpenedxRESTAPIClient:
    """``exportbulk``'s client: each setting from its option, else its variable, else --config."""
    config_file = options.get("config_file")
    from_file = read_config_file(config_file) if config_file else {}
    return client_from_settings({key: options.get(key) or from_file.get(key) for key in CONFIG_KEYS})


def client_from_tutor(root: str, options: dict[str, Any]) -> OpenedxRESTAPIClient:
    """A client of this Tutor project's LMS and Studio, with the plugin's OAuth2 application."""
    from tutor import config as tutor_config
    from tutor.exceptions import TutorError

    given = [f"--{key.replace('_', '-')}" for key in CONNECTION_KEYS if options.get(key)]
    if given:
        raise click.UsageError(
            f"{', '.join(given)}: `tutor exportbulk` takes hosts and credentials from the Tutor "
            "configuration; these options are for `exportbulk`."
        )
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
