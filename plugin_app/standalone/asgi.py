"""
ASGI entry point of the standalone project, served by gunicorn's ``asgi`` worker (``serve``).

Why ASGI: a request's body is read on the worker's event loop and only then handed to a thread
for Django, so a client that sends its body one byte at a time holds a coroutine, not a worker
(with ``gthread``, 20 such clients held every thread). The body is still bounded before it is
read: a ``Content-Length`` over the limit of the endpoint it is sent to is refused at once, and
reading stops as soon as more bytes than that arrive (Django's ASGI handler would otherwise
spool any body to disk before a view could look at it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "plugin_app.standalone.settings")

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def body_limit(path: str, content_type: str) -> int:
    """The largest body of that type the endpoint at ``path`` reads: its view's own limit (the
    API's views say theirs: a restore takes gigabytes of tarballs as a form, JSON only as small as
    any), else Django's limit on bodies read into memory (token endpoint, admin)."""
    from django.conf import settings
    from django.urls import Resolver404, resolve

    try:
        view = getattr(resolve(path).func, "view_class", None)
    except Resolver404:
        view = None
    if view is not None and hasattr(view, "max_body_bytes"):
        return int(view().max_body_bytes(content_type))
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**63)


class BodyLimit:
    """Refuse a body over its endpoint's limit by its declared length; stop reading one that passes it."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = self.limit_for(scope["path"], headers.get(b"content-type", b"").decode("latin-1"))
        declared = headers.get(b"content-length", b"")
        if declared and not declared.isdigit():
            await self.answer(send, 400, "The Content-Length header is not a number.", "parse_error")
            return
        if declared and int(declared) > limit:
            await self.refuse(send, declared.decode("latin-1"), limit)
            return
        received, over, started = 0, False, False

        async def bounded_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True  # Django stops reading, as if the client had gone
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, bounded_receive, watched_send)
        if over and not started:
            await self.refuse(send, f"over {limit}", limit)

    async def refuse(self, send: Send, size: str, limit: int) -> None:
        message = f"The request body is {size} bytes; the limit is {limit}."
        await self.answer(send, 413, message, "request_too_large")

    @staticmethod
    async def answer(send: Send, status: int, message: str, code: str) -> None:
        """An error in the API's shape (``developer_message``, ``error_code``); the connection closes."""
        body = json.dumps({"developer_message": message, "error_code": code}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


django_application = get_asgi_application()
application = BodyLimit(django_application, body_limit)
