"""The unattended submitter: files dropped into `SPOOL/incoming` are submitted and moved
to `SPOOL/done` or `SPOOL/failed`.

Crash safety: a file is first moved (atomically) to `SPOOL/processing`; each chunk's
task URL is written to `SPOOL/journal/NAME.json` (atomically, fsynced) as soon as the
server accepted it. After a crash or restart, files in `processing` are resumed: chunks
with a journaled task are polled, the others are posted again with the same
content-derived `Idempotency-Key` (so a chunk accepted just before the crash names its
first task) and the same record keys (so nothing is stored twice in any case).
"""

from __future__ import annotations

import csv
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec

from arrears.client._errors import (
    ArrearsClientError,
    AuthenticationError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportFailure,
)
from arrears.client._files import (
    ERROR_COLUMN,
    SUFFIXES,
    FileError,
    errors_path,
    read_source,
)
from arrears.client._submission import submit_source
from arrears.client._sync import Client

__all__ = ["Agent", "Journal", "Spool"]


class Journal(msgspec.Struct):
    """What the agent knows of a file in `processing`."""

    chunk_size: int
    tasks: dict[str, str] = msgspec.field(default_factory=dict)


@dataclass(frozen=True)
class Spool:
    root: Path

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def processing(self) -> Path:
        return self.root / "processing"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    def create(self) -> None:
        for folder in (self.incoming, self.processing, self.done, self.failed, self.journal):
            folder.mkdir(parents=True, exist_ok=True)

    def journal_of(self, name: str) -> Path:
        return self.journal / f"{name}.json"


def _write_atomically(path: Path, content: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    partial.replace(path)
    _sync_directory(path.parent)


def _sync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/name.1`, `.2`, ... if that is taken."""
    target = folder / name
    number = 0
    while target.exists() or errors_path(target).exists():
        number += 1
        target = folder / f"{name}.{number}"
    return target


# Errors after which the file stays in `processing` to be tried again next round.
_TRANSIENT = (TransportFailure, ServerError, RateLimitedError)


@dataclass
class Agent:
    """Submits the files of a spool, one at a time, oldest name first."""

    client: Client
    spool: Spool
    chunk_size: int
    log: Callable[[str], None]
    mapping: dict[str, str] = field(default_factory=dict)
    stopping: bool = False

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def run(self, *, poll: float, once: bool) -> int:
        """Loop until stopped (SIGTERM, SIGINT) or, with `once`, until nothing is left
        to do; the number of files that failed."""
        self.spool.create()
        signal.signal(signal.SIGTERM, self._on_signal)
        failed = 0
        while not self.stopping:
            waiting = self._waiting()
            for path in waiting:
                if self.stopping:
                    break
                failed += self.process(path)
            if once and not self._waiting() and not self._incoming():
                break
            if not waiting:
                time.sleep(poll)
        return failed

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()

    def _incoming(self) -> list[Path]:
        return sorted(
            p
            for p in self.spool.incoming.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES
        )

    def _waiting(self) -> list[Path]:
        """Files in processing (resumed first), then the incoming ones, claimed."""
        for stale in self.spool.journal.glob("*.json"):
            if not (self.spool.processing / stale.name.removesuffix(".json")).exists():
                stale.unlink()  # the file was moved out before the journal was removed
        for path in self._incoming():
            target = _free_name(self.spool.processing, path.name)
            path.replace(target)
        _sync_directory(self.spool.processing)
        return sorted(
            p
            for p in self.spool.processing.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES
        )

    def process(self, path: Path) -> int:
        """Submit one file of `processing`; 1 if it ended in `failed`, else 0."""
        journal_path = self.spool.journal_of(path.name)
        if journal_path.exists():
            journal = msgspec.json.decode(journal_path.read_bytes(), type=Journal)
            self.log(f"{path.name}: resuming, {len(journal.tasks)} task(s) known")
        else:
            journal = Journal(chunk_size=self.chunk_size)
            _write_atomically(journal_path, msgspec.json.encode(journal))

        def remember(idempotency_key: str, location: str) -> None:
            journal.tasks[idempotency_key] = location
            _write_atomically(journal_path, msgspec.json.encode(journal))

        try:
            source = read_source(path, self.mapping)
            outcome = submit_source(
                self.client,
                source,
                chunk_size=journal.chunk_size,
                known_tasks=journal.tasks,
                on_task=remember,
            )
        except FileError as error:
            self._refuse(path, str(error))
            journal_path.unlink(missing_ok=True)
            return 1
        except NotFoundError as error:
            # A journaled task the server does not know (e.g. another database): submit
            # the file afresh next round; the record keys keep that safe.
            self.log(f"{path.name}: {error}; submitting it again")
            journal_path.unlink(missing_ok=True)
            return 0
        except (AuthenticationError, ForbiddenError) as error:
            self.log(f"{path.name}: {error}; check ARREARS_API_KEY and ARREARS_SELLER_ID")
            self.stopping = True
            return 0
        except _TRANSIENT as error:
            self.log(f"{path.name}: {error}; trying again later")
            return 0
        except ArrearsClientError as error:
            self._refuse(path, str(error))
            journal_path.unlink(missing_ok=True)
            return 1
        result = outcome.result
        summary = (
            f"{outcome.total} records: {result.saved} saved, {result.duplicates} duplicates, "
            f"{len(outcome.failures)} failed"
        )
        if outcome.ok:
            path.replace(_free_name(self.spool.done, path.name))
            self.log(f"{path.name}: done; {summary}")
        else:
            target = _free_name(self.spool.failed, path.name)
            errors_path(path).replace(errors_path(target))
            path.replace(target)
            self.log(f"{path.name}: failed; {summary}; see {errors_path(target)}")
        _sync_directory(path.parent)
        journal_path.unlink(missing_ok=True)
        return 0 if outcome.ok else 1

    def _refuse(self, path: Path, message: str) -> None:
        target = _free_name(self.spool.failed, path.name)
        with errors_path(target).open("w", newline="", encoding="utf-8") as stream:
            csv.writer(stream, lineterminator="\n").writerows([[ERROR_COLUMN], [message]])
        path.replace(target)
        self.log(f"{path.name}: failed; {message}")
