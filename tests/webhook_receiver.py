"""A seller's receiving HTTP server, on loopback in a thread of the test: it records
every request it gets and answers the statuses it is told to (200 once they run out),
and can be taken down (connections refused) and brought up again on the same port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


class _Server(ThreadingHTTPServer):
    # Workers send many attempts at once: a listen backlog of 5 would refuse some.
    request_queue_size = 256


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> Any:
        """The body as a receiver reads it once `standardwebhooks` has verified it
        against `secret` (raises `WebhookVerificationError` if it does not verify)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with `statuses`, in order; 200 after them."""
        with self._lock:
            self.statuses = list(statuses)

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(Received(dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                reply = b"ok" if status < 300 else b"x" * 5000  # more than is kept
                self.send_response(status)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Refuse connections until `up()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if b'"type":"' + event_type.encode() in r.body]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.down()
