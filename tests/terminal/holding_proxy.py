"""A loopback proxy between a register and the core that holds the first payment request it sees.

``hold="request"``: the payment is kept and never passed on (the core never sees it: a request lost on the
way); ``hold="answer"``: it is passed on and the core's answer kept, never given back (the core charged, the
register never heard). Either way ``held`` is set once the payment is in hand, so a test can kill the
register exactly then, and ``held_request`` keeps the request's bytes for a late copy (:func:`send_raw`).
Requests before it pass through, one per upstream connection; every request after it (the register's retry,
its query) is held too, unanswered, so however slow the machine the register is still waiting when killed.
Loopback only; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

WAIT_SECONDS = 30.0  # for any one read or hold
MAX_MESSAGE = 1 << 20


def read_message(sock: socket.socket) -> bytes | None:
    """One HTTP/1.1 message (head and ``Content-Length`` body) from ``sock``; None when it closes first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_MESSAGE:
            raise ValueError("message too large")
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def send_raw(base_url: str, message: bytes) -> bytes:
    """Send ``message`` as it is to the server at ``base_url`` and return its whole answer."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=WAIT_SECONDS) as sock:
        sock.sendall(message)
        answer = read_message(sock)
    if answer is None:
        raise ConnectionError("the server closed the connection without answering")
    return answer


def status_of(answer: bytes) -> int:
    """The status code of an HTTP answer's bytes."""
    return int(answer.split(b" ", 2)[1])


def json_of(answer: bytes) -> dict[str, Any]:
    """The JSON object an HTTP answer's bytes carry."""
    data = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert isinstance(data, dict)
    return data


class HoldingProxy:
    """See the module. Use as a context manager; ``url`` is where the register is pointed."""

    def __init__(self, core_url: str, hold: Literal["request", "answer"]) -> None:
        self._core_url = core_url
        self._hold = hold
        self.held = threading.Event()
        self.release = threading.Event()
        self.held_request = b""
        self.core_answer = b""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._claim = threading.Lock()

    def __enter__(self) -> HoldingProxy:
        accepting = threading.Thread(target=self._accept, daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    def __exit__(self, *_exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._stopping.set()
        self.release.set()
        for thread in list(self._threads):
            thread.join(WAIT_SECONDS)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            worker.start()
            self._threads.append(worker)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(WAIT_SECONDS)
        with conn, contextlib.suppress(OSError, ValueError):
            while not self._stopping.is_set():
                request = read_message(conn)
                if request is None:
                    return
                if request.startswith(b"POST /v1/payments ") and self._take_hold():
                    self.held_request = request
                    if self._hold == "answer":
                        self.core_answer = send_raw(self._core_url, request)
                    self.held.set()
                if self.held.is_set():  # the held payment, and whatever the register tries after it
                    self.release.wait(WAIT_SECONDS)
                    return  # closed without an answer
                conn.sendall(send_raw(self._core_url, request))

    def _take_hold(self) -> bool:
        """True for the first payment only."""
        with self._claim:
            if self.held_request:
                return False
            self.held_request = b"claimed"
            return True
