"""Real `arrears serve` and `arrears worker` processes for end-to-end fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["ADMIN_TOKEN", "Launch", "Served", "served", "working"]

ADMIN_TOKEN = "fault-admin-token"


@dataclass(frozen=True)
class Launch:
    """How the processes are started: `prefix` is a command that runs them (e.g. with
    fewer privileges), `module` the Python module run as the `arrears` command, `env`
    more environment variables."""

    prefix: Sequence[str] = ()
    module: str = "arrears"
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def served(
    database_url: str,
    log: Path,
    *,
    clock: str = "2026-01-01T00:00:00Z",
    launch: Launch = Launch(),
) -> Iterator[Served]:
    """`arrears serve` on a free port over `database_url`, with the test clock at
    `clock` and the admin token `ADMIN_TOKEN`; stopped (SIGTERM) at the end."""
    port = _free_port()
    process = _start(launch, database_url, clock, log, "serve", "--port", str(port))
    server = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_up(server)
        yield server
    finally:
        _stop(process)


@contextmanager
def working(
    database_url: str,
    log: Path,
    *,
    clock: str = "2026-01-01T00:00:00Z",
    launch: Launch = Launch(),
) -> Iterator[subprocess.Popen[bytes]]:
    """`arrears worker --poll 0.2` over `database_url`; stopped (SIGTERM) at the end."""
    process = _start(launch, database_url, clock, log, "worker", "--poll", "0.2")
    try:
        yield process
    finally:
        _stop(process)


def _start(
    launch: Launch, database_url: str, clock: str, log: Path, *arguments: str
) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "ARREARS_DATABASE_URL": database_url,
        "ARREARS_ADMIN_TOKEN": ADMIN_TOKEN,
        "ARREARS_TEST_CLOCK": clock,
        "ARREARS_LOG_FORMAT": "text",
        "ARREARS_LOG_LEVEL": "WARNING",
        **(launch.env or {}),
    }
    with log.open("ab") as stream:
        return subprocess.Popen(  # noqa: S603 (our own program, our arguments)
            [*launch.prefix, sys.executable, "-m", launch.module, *arguments],
            env=environment,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_up(server: Served) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert server.process.poll() is None, f"the server exited:\n{server.log_text()}"
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the server did not start:\n{server.log_text()}"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
