"""A fault-injecting HTTP proxy on loopback, in front of moto's S3 server."""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Fault:
    """What the proxy does to one request instead of forwarding it as is."""

    drop: bool = False  # close the connection without an answer
    status: int = 0  # answer this S3 error instead of forwarding (500, 503 SlowDown...)
    code: str = "InternalError"
    delay: float = 0.0  # seconds to wait before forwarding


DROP = Fault(drop=True)
SERVER_ERROR = Fault(status=500, code="InternalError")
THROTTLED = Fault(status=503, code="SlowDown")

# Picks the fault of a request from its method and query (None: forward untouched).
FaultRule = Callable[[str, dict], Fault | None]


def once_per_key(rule: FaultRule) -> FaultRule:
    """The rule's fault, at most once per (method, query) so that a retry goes through."""
    seen: set = set()
    lock = threading.Lock()

    def pick(method: str, query: dict) -> Fault | None:
        fault = rule(method, query)
        key = (method, tuple(sorted((k, tuple(v)) for k, v in query.items())))
        with lock:
            if fault is None or key in seen:
                return None
            seen.add(key)
        return fault

    return pick


def is_upload_part(method: str, query: dict) -> bool:
    return method == "PUT" and "partNumber" in query


class FaultProxy:
    """Forwards every request to ``upstream``, applying the fault ``rule`` picks (swappable live)."""

    def __init__(self, upstream: str, rule: FaultRule | None = None):
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                rule = proxy.rule
                fault = rule(self.command, parse_qs(urlsplit(self.path).query)) if rule else None
                if fault:
                    proxy.count(fault)
                    if fault.drop:
                        self.close_connection = True
                        self.connection.close()
                        return
                    if fault.status:
                        self._answer(fault.status, [("Content-Type", "application/xml")], _s3_error(fault))
                        return
                    time.sleep(fault.delay)
                upstream_conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = target.netloc
                upstream_conn.request(self.command, self.path, body=body, headers=headers)
                answer = upstream_conn.getresponse()
                data = answer.read()
                upstream_conn.close()
                self._answer(answer.status, answer.getheaders(), data)

            def _answer(self, status: int, headers: list, data: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    with contextlib.suppress(ConnectionError):  # the client gave up waiting (slow faults)
                        self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.rule = rule
        self.faults: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self, fault: Fault) -> None:
        kind = "drop" if fault.drop else fault.code if fault.status else "delay"
        with self._lock:
            self.faults[kind] = self.faults.get(kind, 0) + 1

    @property
    def dropped(self) -> int:
        return self.faults.get("drop", 0)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _s3_error(fault: Fault) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
        f"<Message>Injected by the test proxy</Message></Error>"
    ).encode()
