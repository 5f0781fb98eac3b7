"""
The HTTP transport every API mixin shares: one session, the token, retries and error answers.

Idempotent requests are retried on connection errors, 429 and 5xx; a POST is sent once, since
a repeat could do the work twice. A 401 renews the token and sends the request once more.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from tutor_exportbulk.__about__ import __version__
from tutor_exportbulk.client.errors import OpenedxAPIError, error_of, json_or_none, no_answer
from tutor_exportbulk.client.tokens import TokenCache

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# The longest pause a server's Retry-After may impose on one retry.
MAX_RETRY_AFTER = 30.0


class Transport:
    """The base of ``OpenedxRESTAPIClient``: connection settings and the request loop."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        studio_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token_type: str = "jwt",
        timeout: float = 30.0,
        max_tries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        """
        Args:
            base_url: the LMS, with its scheme (``https://lms.example.com``); tokens come from it.
            client_id, client_secret: an OAuth2 application of the LMS (client credentials grant,
                or password grant when ``username`` and ``password`` are given).
            studio_url: Studio (the CMS), where the bulk export and upload APIs live. Defaults to
                ``base_url`` (the standalone server serves both).
            token_type: ``"jwt"`` (sent as ``Authorization: JWT ...``) or ``"bearer"``.
            timeout: seconds to wait for each answer.
            max_tries: attempts of an idempotent request that meets connection errors, 429 or 5xx.
            backoff: first pause between those attempts, doubled each time.
        """
        self.base_url = base_url.rstrip("/")
        self.studio_url = (studio_url or base_url).rstrip("/")
        self.timeout = timeout
        self.max_tries = max(1, max_tries)
        self.backoff = backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = (
            f"tutor-exportbulk/{__version__} {requests.utils.default_user_agent()}"
        )
        self.tokens = TokenCache(
            self.session,
            self.base_url,
            client_id,
            client_secret,
            username=username,
            password=password,
            token_type=token_type,
            timeout=timeout,
        )

    def access_token(self) -> str:
        """The access token (see ``TokenCache.get``)."""
        return self.tokens.get()

    def _send(
        self, method: str, url: str, *, body: Callable[[], Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        """
        Send one authenticated request: renew the token once on 401, and retry an idempotent
        request on connection errors, 429 and 5xx, ``max_tries`` times at most.

        ``body`` makes a fresh request body for each attempt (a stream cannot be sent twice).
        """
        retryable = method in IDEMPOTENT_METHODS
        headers = kwargs.pop("headers", {})
        renewed, failures = False, 0
        while True:
            if body is not None:
                kwargs["data"] = body()
                headers = {**headers, "Content-Type": kwargs["data"].content_type}
            try:
                response = self.session.request(
                    method,
                    url,
                    headers={**headers, "Authorization": self.tokens.authorization()},
                    timeout=self.timeout,
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failures += 1
                if retryable and failures < self.max_tries:
                    self._pause(failures, None)
                    continue
                raise OpenedxAPIError(None, url, no_answer(exc)) from exc
            if response.status_code == 401 and not renewed:
                renewed = True
                self.tokens.forget()
                continue
            transient = response.status_code == 429 or response.status_code >= 500
            if transient and retryable and failures + 1 < self.max_tries:
                failures += 1
                self._pause(failures, response.headers.get("Retry-After"))
                continue
            return response

    def _pause(self, failures: int, retry_after: str | None) -> None:
        delay = self.backoff * 2 ** (failures - 1)
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
        time.sleep(delay)

    def _decode(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise OpenedxAPIError(response.status_code, response.url, f"Expected JSON, got {kind}.") from None

    def _get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        return self._answer(self._send("GET", url, params=params))

    def _answer(self, response: requests.Response, ok: Iterable[int] = (200,)) -> Any:
        if response.status_code not in ok:
            raise error_of(response)
        return self._decode(response)

    def _result(self, response: requests.Response) -> dict[str, Any]:
        """The ``result`` of a status envelope; an error (``params.err``) raises."""
        body = json_or_none(response)
        params = body.get("params") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(params, dict) or params.get("err"):
            raise error_of(response)
        result: dict[str, Any] = body["result"]
        return result
