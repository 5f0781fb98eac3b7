"""The one exception family of the client, and how a server's answer becomes its message."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests


class OpenedxAPIError(Exception):
    """
    A request that did not get the answer it asked for.

    ``status_code`` is None when no answer came at all. ``url`` has no query string and no
    user info, so it can be printed or logged. ``body`` is the decoded JSON answer, if any
    (the bulk upload puts every row error in it). ``retry_after`` is the server's Retry-After
    (seconds), when it gave one: a 429 says when new work will be taken.
    """

    def __init__(
        self,
        status_code: int | None,
        url: str,
        message: str,
        body: Any = None,
        retry_after: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.url = public_url(url)
        self.message = message
        self.body = body
        self.retry_after = retry_after
        super().__init__(f"{status_code or 'No answer'} from {self.url}: {message}")


class OpenedxAuthError(OpenedxAPIError):
    """The token endpoint refused the credentials (wrong client, secret, grant or password)."""


def public_url(url: str) -> str:
    """The URL without query string, fragment or user info: what may show in errors and logs."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def error_message(response: requests.Response) -> str:
    """The server's own explanation, in whichever shape this API gives it."""
    body = json_or_none(response)
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if body is None:
        text = response.text.strip()
        if not text:
            return status
        if "html" in response.headers.get("Content-Type", "").lower() or text.startswith("<"):
            # An error page (the server's, or a proxy's before it): never printed raw.
            return f"{status}: the server answered an HTML page, not the API's JSON; its logs say why."
        return text[:500]
    return _message_of(body) or status


def _message_of(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return " ".join(_message_of(item) for item in body)
    if not isinstance(body, dict):
        return str(body)
    params = body.get("params")
    if isinstance(params, dict) and params.get("errmsg"):  # the status envelope
        return str(params["errmsg"])
    for key in ("developer_message", "error_description", "detail", "message", "error"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    # DRF serializer errors: {"field": ["problem", ...], ...}
    return "; ".join(f"{key}: {_message_of(value)}" for key, value in body.items())


def error_of(response: requests.Response) -> OpenedxAPIError:
    """The error a refused answer raises, with the server's message and JSON body."""
    return OpenedxAPIError(
        response.status_code,
        response.url,
        error_message(response),
        json_or_none(response),
        response.headers.get("Retry-After"),
    )


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def no_answer(exc: Exception) -> str:
    """Why no answer came, in words that hold no URL query or credential."""
    return "timed out" if isinstance(exc, requests.Timeout) else f"could not connect ({type(exc).__name__})"
