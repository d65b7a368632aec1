"""A throwaway PostgreSQL server of one test, which the test may stop and restart.

The machine's shared cluster serves every other test running at the same time, so
fault tests never touch it: they `initdb` a cluster of their own into a temporary
folder, on a free port, and remove it afterwards. `initdb` refuses to run as root, so
as root every server command runs as the `postgres` user (`runuser`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

__all__ = ["PrivatePostgres", "private_postgres"]

_BINARIES = (Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin")))


@dataclass(frozen=True)
class PrivatePostgres:
    bin: Path
    folder: Path
    port: int
    run_as: tuple[str, ...]
    """The command prefix that runs a server command as the cluster's owner."""

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of `database` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def start(self) -> None:
        self._pg_ctl("start", "-l", str(self.folder / "server.log"), "-o", self._options())

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session and shuts down cleanly; `immediate` ends the
        server at once, as a crash does (the next start recovers from the WAL)."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, the server starts again."""
        self._pg_ctl(
            "restart", "-m", "fast", "-l", str(self.folder / "server.log"), "-o", self._options()
        )

    def dump_into(self, source: str, target: str) -> None:
        """Copy database `source` into a new database `target` (`pg_dump | psql`),
        while other sessions keep using `source`."""
        self.create_database(target)
        dump = _run(str(self.bin / "pg_dump"), "--no-owner", "-d", self.conninfo(source))
        _run(
            str(self.bin / "psql"),
            *("-q", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo(target)),
            stdin=dump,
        )

    def _options(self) -> str:
        # fsync off: only PostgreSQL stops or crashes here, never the operating system,
        # so the WAL in the page cache is what a restart recovers from either way.
        return (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=60"
        )

    def _pg_ctl(self, *arguments: str) -> None:
        _run(*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *arguments)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running PostgreSQL server of one's own, removed at the end; the test is
    skipped, with the reason, where none can be made."""
    bin_dir = next((path for path in _BINARIES if (path / "initdb").exists()), None)
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb) under /usr/lib/postgresql")
    run_as: tuple[str, ...] = ()
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no `postgres` user to run initdb as")
        run_as = ("runuser", "-u", "postgres", "--")
    # Not under pytest's tmp_path: that folder is private to root, and the server runs
    # as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="arrears-pg-"))
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    server = PrivatePostgres(bin_dir, folder, _free_port(), run_as)
    try:
        _run(
            *run_as,
            str(bin_dir / "initdb"),
            *("-D", str(server.data), "-A", "trust", "-U", "postgres", "--no-sync"),
        )
        server.start()
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            _run(
                *run_as,
                *(str(bin_dir / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop"),
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


def _run(*command: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Run a PostgreSQL program; its output. A failure shows what the program said."""
    done = subprocess.run(  # noqa: S603 (PostgreSQL's own programs, our arguments)
        command, input=stdin, capture_output=True, timeout=120, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
        )
    return done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
