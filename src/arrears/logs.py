"""Structured logging: one JSON object per line, each carrying the request id.

Cheap enough for one access line per request at thousands of requests a second: the
access line is formatted by hand (the general formatter inspects every attribute of the
record, several times the cost), and the lines the event loop logs are written out
together once per turn of the loop, one write for many lines instead of one each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

__all__ = ["ACCESS_LOGGER", "configure_logging", "request_id_var"]

ACCESS_LOGGER = "arrears.access"
"""The logger of the one line per request; its records carry `method`, `path`, `status`
and `duration_ms` (api/middleware.py)."""

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class _UTCTimes:
    """Log times in UTC, ISO 8601 with milliseconds and "Z", whatever the host's zone."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class _JsonFormatter(_UTCTimes, JsonFormatter):
    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == ACCESS_LOGGER and not record.exc_info and not record.stack_info:
            try:
                return self._access_line(record)
            except AttributeError:  # not the middleware's record: the general way
                pass
        return super().format(record)

    def _access_line(self, record: logging.LogRecord) -> str:
        # The same object, key order and spacing as the general formatter's line.
        return json.dumps(
            {
                "time": self._time(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
                "request_id": record.request_id,
                "method": record.method,
                "path": record.path,
                "status": record.status,
                "duration_ms": record.duration_ms,
            }
        )

    def _time(self, record: logging.LogRecord) -> str:
        # formatTime's text, with the strftime of the second kept while it lasts.
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._stamp, record.msecs)


class _TextFormatter(_UTCTimes, logging.Formatter):
    pass


class _LoopBatchedHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes the lines an event loop's thread logs at the end of
    the loop's turn, all at once; lines of other threads (and any line when the loop is
    not running) are written at once, after any still waiting, in the order logged.

    A line waits microseconds, never for more traffic: the loop's next turn writes it."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._waiting.append(self.format(record) + self.terminator)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not the loop's thread
                self._write()
                return
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._write_scheduled)
        except Exception:  # what logging.Handler.emit does: never fail the caller
            self.handleError(record)

    def _write_scheduled(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = False
            self._write()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _write(self) -> None:
        if self._waiting:
            text = "".join(self._waiting)
            self._waiting.clear()
            self.stream.write(text)
        self.stream.flush()


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (ours, uvicorn's, SQLAlchemy's) to stderr in one format."""
    handler = _LoopBatchedHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(
            _JsonFormatter(
                "{asctime}{levelname}{name}{message}{request_id}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(
            _TextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    # No line shows the caller's file, thread or process: skip finding them for each
    # record (the logging HOWTO's "Optimization").
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Our middleware logs each request with its id; uvicorn's access log would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
