"""
The OAuth2 access token: fetched from the LMS, kept in memory, renewed before it expires.

Kept apart from the transport so that the client secret and the password live in one small
object, sent nowhere but to the token endpoint.
"""

from __future__ import annotations

import time

import requests

from tutor_exportbulk.client.errors import (
    OpenedxAPIError,
    OpenedxAuthError,
    error_message,
    json_or_none,
    no_answer,
)

TOKEN_PATH = "/oauth2/access_token/"


class TokenCache:
    """
    One access token of a client-credentials (or password) grant, renewed on demand.

    ``refresh_margin``: a token with less than this many seconds left is renewed before use.
    """

    refresh_margin = 30.0

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        username: str | None,
        password: str | None,
        token_type: str,
        timeout: float,
    ) -> None:
        self.session = session
        self.url = base_url + TOKEN_PATH
        self.client_id = client_id
        self._client_secret = client_secret
        self.username = username
        self._password = password
        self.token_type = token_type.lower()
        self.timeout = timeout
        self._token: str | None = None
        self._renew_at = 0.0

    def get(self) -> str:
        """
        The access token, fetched when there is none yet or it is about to expire.

        Raises:
            OpenedxAuthError: the credentials were refused.
            OpenedxAPIError: the token endpoint failed otherwise.
        """
        if self._token is None or time.monotonic() >= self._renew_at:
            self._token = self._fetch()
        return self._token

    def forget(self) -> None:
        """Drop the token (the server said 401): the next ``get`` fetches a new one."""
        self._token = None

    def authorization(self) -> str:
        """The ``Authorization`` header value: ``JWT <token>`` or ``Bearer <token>``."""
        scheme = "JWT" if self.token_type == "jwt" else "Bearer"
        return f"{scheme} {self.get()}"

    def _fetch(self) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "token_type": self.token_type,
        }
        if self.username and self._password:
            form.update(grant_type="password", username=self.username, password=self._password)
        try:
            response = self.session.post(self.url, data=form, timeout=self.timeout)
        except requests.RequestException as exc:
            raise OpenedxAPIError(None, self.url, no_answer(exc)) from exc
        body = json_or_none(response)
        if response.status_code == 200 and body is None:
            kind = response.headers.get("Content-Type", "no content type")
            raise OpenedxAPIError(200, self.url, f"Expected JSON, got {kind}.")
        if response.status_code != 200:
            # 429: too many failed sign-ins from this address (the credentials are suspect).
            refused = response.status_code in (400, 401, 403, 429)
            error_class = OpenedxAuthError if refused else OpenedxAPIError
            retry_after = response.headers.get("Retry-After")
            raise error_class(response.status_code, self.url, error_message(response), body, retry_after)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise OpenedxAuthError(
                response.status_code, self.url, "The token endpoint answered no access_token."
            )
        lifetime = float(body.get("expires_in") or 0)
        self._renew_at = time.monotonic() + lifetime - self.refresh_margin
        return str(body["access_token"])
