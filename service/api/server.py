"""What the web server itself answers, before the app sees a request.

* Gunicorn writes its own errors (a request line over 4094 bytes: 414; headers too
  large: 431; a malformed request: 400) as text/html. ``write_problem`` writes them as
  problem+json, like every other error of the API; ``install_problem_errors`` puts it
  in place in each web process (``post_worker_init``).
* ``SlowClientWorker`` is gunicorn's gevent worker with a read timeout on every
  connection. Each connection is a greenlet, so clients that trickle their request hold
  no thread: ``/v1/health`` stays reachable while 50 slow clients hold connections
  (``benchmarks/slow_clients.py``). The headers of a request must arrive within
  gunicorn's ``keepalive`` seconds (its timeout around the header parse), and every
  later read (the body) within ``READ_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from typing import Any

import gevent  # type: ignore[import-untyped]
from gunicorn import util  # type: ignore[import-untyped]
from gunicorn.workers.base_async import AsyncWorker  # type: ignore[import-untyped]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

from service.api.problems import PROBLEMS

READ_TIMEOUT_S = 30.0

#: gunicorn's status -> problem code (service.api.problems)
_SERVER_PROBLEMS = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "bad_request",
    431: "headers_too_large",
    501: "not_implemented",
}


def problem_bytes(status: int, reason: str, detail: str) -> bytes:
    code = _SERVER_PROBLEMS.get(status, "bad_request" if status < 500 else "internal")
    body = json.dumps(
        {
            "type": f"/docs/problems#{code}",
            "title": PROBLEMS[code][1],
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    return head + body


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's signature, problem+json's body."""
    util.write_nonblock(sock, problem_bytes(status_int, reason, mesg))


def install_problem_errors(_worker: Any = None) -> None:
    """Make this process's gunicorn write its errors as problem+json (its workers call
    ``util.write_error`` at the moment of the error)."""
    util.write_error = write_problem


def quiet_teardown(_server: Any = None, _worker: Any = None) -> None:
    """A gevent worker's interpreter teardown runs logging's weakref callbacks after
    gevent's thread module is cleared, and printed a TypeError per handler at every
    shutdown. Nothing can be done about them then: do not print them."""
    sys.unraisablehook = lambda _unraisable: None


class SlowClientWorker(GeventWorker):  # type: ignore[misc]
    """gevent worker whose connections time out on a read that stalls."""

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        client.settimeout(READ_TIMEOUT_S)
        with contextlib.suppress(OSError):  # not on a unix socket
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        AsyncWorker.handle(self, listener, client, addr)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """One request, then a turn for the others: a keep-alive client whose next
        request is already buffered never blocks, so without the yield it kept the
        process to itself (p90 of predict-mode requests: 180-1200 ms at 4 connections)."""
        try:
            return bool(super().handle_request(listener_name, req, sock, addr))
        finally:
            gevent.sleep(0)
