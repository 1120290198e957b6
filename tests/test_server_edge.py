"""The real server (gunicorn) at its edge: its own errors are problem+json, and slow
clients holding connections do not make /v1/health unreachable (issue 19)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.slow_clients import free_port, measure, start_server


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory, predictor_cache: Path) -> Iterator[int]:
    port, data = free_port(), tmp_path_factory.mktemp("edge")
    (data / "predictor").symlink_to(predictor_cache, target_is_directory=True)
    proc = start_server(port, data, "gevent", workers=1)
    yield port
    proc.kill()  # its gunicorn dies with it (probes.lifeline)
    proc.wait(30)


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        with contextlib.suppress(OSError):  # it may answer and close before all is sent
            s.sendall(data)
        out = b""
        while chunk := s.recv(65536):  # one response: up to its Content-Length
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if sep and length and len(body) >= int(length.group(1)):
                break
    return out


def _problem(raw: bytes, status: int, code: str) -> dict[str, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"content-type: application/problem+json" in head.lower(), head
    got: dict[str, object] = json.loads(body)
    assert got["status"] == status and got["code"] == code
    return got


def test_gunicorns_own_errors_are_problem_json(port: int) -> None:
    line = _exchange(port, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert "4094" in str(_problem(line, 414, "uri_too_long")["detail"])
    field = b"X-Big: " + b"b" * 9000 + b"\r\n"
    _problem(
        _exchange(port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n"),
        431,
        "headers_too_large",
    )
    _problem(
        _exchange(port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"),
        400,
        "bad_request",
    )


def test_a_chunked_body_over_the_limit_is_413(port: int) -> None:
    body = b'{"a":"' + b"x" * 3_000_000 + b'"}'
    step = 65536
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step])
        for i in range(0, len(body), step)
    )
    head = (
        b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    _problem(_exchange(port, head + chunks + b"0\r\n\r\n"), 413, "body_too_large")


def test_health_answers_while_slow_clients_hold_connections(port: int) -> None:
    """20 connections trickling a byte a second into one web process: every health
    check is answered (within urllib's 10 s timeout; wall time is not asserted)."""
    got = measure(port, clients=20, duration_s=4.0)
    assert got["health_requests"] >= 3 and got["health_failed"] == 0, got
