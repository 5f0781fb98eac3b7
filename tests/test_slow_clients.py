"""
Issue 16, items 5 and 9: the production server (``exportbulk-standalone serve``: gunicorn's ASGI
worker behind ``standalone.asgi.BodyLimit``) against slow and oversized bodies.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from plugin_app.standalone.asgi import BodyLimit, application, django_application

EXPORT_PATH = "/api/courses/v0/export/"
AT_1000 = BodyLimit(django_application, lambda path, content_type: 1000)


def _open_slow_body(port: int, length: int = 1000) -> socket.socket:
    """A POST whose headers promise ``length`` bytes, of which one is sent (the attack sent one per 10 s)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (
        f"POST {EXPORT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: JWT x\r\nContent-Length: {length}\r\n\r\n{{"
    )
    conn.sendall(head.encode())
    return conn


@pytest.mark.live
def test_slow_bodies_do_not_hold_the_servers_workers(live):
    client = live.client()
    client.process_list("export")  # a token, and the server warmed up
    port = int(live.base_url.rsplit(":", 1)[1])
    slow = [_open_slow_body(port) for _ in range(20)]
    try:
        time.sleep(1)
        for conn in slow[::5]:
            conn.sendall(b" ")  # still trickling
        started = time.monotonic()
        answer = client.process_list("export")
        elapsed = time.monotonic() - started
        assert "results" in answer or "processes" in answer or isinstance(answer, dict)
        # With gunicorn's gthread worker (16 threads) this call waited until the slow bodies ended.
        assert elapsed < 3, f"a status call took {elapsed:.1f} s behind 20 slow bodies"
    finally:
        for conn in slow:
            conn.close()


@pytest.mark.live
def test_oversized_content_length_is_refused_before_the_body_is_sent(live):
    port = int(live.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            f"POST {EXPORT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {3 * 1024**3}\r\n\r\n".encode()
        )
        answer = conn.recv(4096).decode("latin-1")  # no byte of the 3 GiB was sent
    assert answer.startswith("HTTP/1.1 413"), answer
    body = json.loads(answer.split("\r\n\r\n", 1)[1])
    assert body["error_code"] == "request_too_large"
    assert f"{3 * 1024**3} bytes" in body["developer_message"]


def _call(app, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[list[dict], int]:
    """Run one HTTP request through the real ASGI stack; what it sent back and how many chunks it read."""
    sent: list[dict] = []
    read = 0

    async def receive():
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        await asyncio.sleep(3600)  # a client that never finishes

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": EXPORT_PATH, "raw_path": EXPORT_PATH.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    return sent, read


@pytest.mark.django_db(transaction=True)
def test_a_body_without_length_stops_being_read_past_the_limit():
    """Chunked: no Content-Length to refuse by, so reading stops at the first chunk past the limit."""
    chunks = [b"x" * 400] * 100
    sent, read = _call(AT_1000, chunks, [(b"transfer-encoding", b"chunked")])
    assert read == 3  # 1,200 bytes: past the limit, nothing more is read
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error_code"] == "request_too_large"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("declared", "status"), [(b"1001", 413), (b"12abc", 400)])
def test_a_declared_length_over_the_limit_is_refused_unread(declared, status):
    sent, read = _call(AT_1000, [b"{}"], [(b"content-length", declared)])
    assert read == 0
    assert sent[0]["status"] == status
    assert json.loads(sent[1]["body"])["developer_message"].startswith(
        "The request body is 1001 bytes" if status == 413 else "The Content-Length header is not"
    )


@pytest.mark.django_db(transaction=True)
def test_each_endpoint_refuses_by_its_own_limit_before_reading(settings):
    """The export's JSON is held to Django's in-memory limit, not to the bulk upload's gigabytes."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    sent, read = _call(application, [b"{}"], [(b"content-length", b"10001")])
    assert read == 0
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["developer_message"].endswith("the limit is 10000.")
