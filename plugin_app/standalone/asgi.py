"""
ASGI entry point of the standalone project, served by gunicorn's ``asgi`` worker (``serve``).

Why ASGI: a request's body is read on the worker's event loop and only then handed to a thread
for Django, so a client that sends its body one byte at a time holds a coroutine, not a worker
(with ``gthread``, 20 such clients held every thread). The body is still bounded before it is
read: a ``Content-Length`` over the limit of the endpoint it is sent to is refused at once, and
reading stops as soon as more bytes than that arrive (Django's ASGI handler would otherwise
spool any body to disk before a view could look at it).

Database connections: Django runs each request's sync code in a thread of its own (asgiref makes
one per request), and a connection belongs to its thread. Left open (``CONN_MAX_AGE``), each
request's connection outlived its thread until the garbage collector found it: 112 connections
after 20 concurrent calls. So a request closes its connection in its own thread as it ends
(``ClosingASGIHandler``), and at most ``SYNC_REQUESTS`` requests of a server process are in
Django at once (``SyncGate``), whose connections are all a server process holds.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from django.http import HttpRequest, HttpResponseBase

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


# Requests of one server process running in Django at once (each holds a thread and at most one
# database connection): a server process holds at most this many connections.
SYNC_REQUESTS = 8


class SyncGate:
    """Let at most ``limit`` requests of this process into Django's code at once.

    A request takes its place once its body has arrived: a slow client waits on the event loop
    holding nothing, and a burst of calls waits its turn instead of opening a thread and a
    database connection each.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self._places: asyncio.Semaphore | None = None  # made in the server's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._places is None:
            self._places = asyncio.Semaphore(self.limit)
        places, held = self._places, False

        async def gated_receive() -> Message:
            nonlocal held
            message = await receive()
            if not held and message["type"] == "http.request" and not message.get("more_body"):
                await places.acquire()  # the body is in: Django's sync code comes next
                held = True
            return message

        try:
            await self.app(scope, gated_receive, send)
        finally:
            if held:
                places.release()


class ClosingASGIHandler(ASGIHandler):
    """Django's ASGI handler; each request closes its database connections in its own thread."""

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        try:
            return await super().get_response_async(request)
        finally:
            # Thread-sensitive: runs in the thread the request's views ran in, whose connection
            # nothing else would ever use again.
            await sync_to_async(connections.close_all)()


django.setup(set_prefix=False)
django_application = ClosingASGIHandler()
application = BodyLimit(SyncGate(django_application, SYNC_REQUESTS), body_limit)
