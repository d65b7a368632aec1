"""Storage for a SQLite database that a test can make full, and free again.

Where the test may mount a filesystem (root, with the capability to mount), the
database lives on a small tmpfs of its own: `fill()` writes a filler file over all but
a few pages of its free space, so SQLite's writes fail with ENOSPC, which SQLite
reports as SQLITE_FULL, exactly as on a full disk; `free()` deletes the filler.
Elsewhere SQLite's `max_page_count` is capped near the database's current size in every
process of the test (`tests/e2e/page_capped.py`): SQLite refuses every write that needs
a page beyond it with the same SQLITE_FULL; `free()` lifts the cap. `mechanism` says
which.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.served import Launch

__all__ = ["UNCAPPED", "FullableStorage", "fullable_storage"]

TMPFS_SIZE = "16m"
UNCAPPED = 2_147_483_646
"""SQLite's largest page count: no cap."""
FORCE_CAP = "ARREARS_TEST_FULL_BY_PAGE_CAP"
"""Set to 1, the page cap is used even where a tmpfs could be mounted."""


@dataclass(frozen=True)
class FullableStorage:
    folder: Path
    """Where the database goes."""
    mechanism: str
    launch: Launch
    """How the test's `arrears` processes must be started."""
    cap: Path | None
    """The page-cap file, when the storage is capped rather than a filesystem."""

    @property
    def database(self) -> Path:
        return self.folder / "arrears.db"

    def fill(self, claimable: int) -> None:
        """Make the storage full, but for room to claim a task whose body is `claimable`
        bytes long, not to apply it. (On SQLite a claim rewrites the task's row, body
        included: about twice the body in the write-ahead log, the body's size in new
        pages; applying the task takes about three times that.)"""
        # An empty write-ahead log first: SQLite reuses a log's space once it has been
        # checkpointed, and a full disk must refuse writes, not absorb them into it.
        with closing(sqlite3.connect(self.database)) as connection:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            (pages,) = connection.execute("PRAGMA page_count").fetchone()
            (page_size,) = connection.execute("PRAGMA page_size").fetchone()
        assert busy == 0, "a reader kept the write-ahead log from being emptied"
        if self.cap is not None:
            self.cap.write_text(str(pages + claimable // page_size + 16))
            return
        stat = os.statvfs(self.folder)
        left = stat.f_bavail * stat.f_frsize - (2 * claimable + 128 * 1024)
        with (self.folder / "filler").open("wb") as filler:
            while left > 0:
                left -= filler.write(b"\0" * min(left, 1 << 20))

    def free(self) -> None:
        """Give the space back."""
        if self.cap is not None:
            self.cap.write_text("")
        else:
            (self.folder / "filler").unlink()


@contextmanager
def fullable_storage(tmp_path: Path) -> Iterator[FullableStorage]:
    folder = Path(tempfile.mkdtemp(prefix="arrears-full-", dir=tmp_path))
    mounted = (
        os.environ.get(FORCE_CAP) != "1"
        and os.geteuid() == 0
        and _system(
            "mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(folder)
        )
    )
    try:
        if mounted:
            yield FullableStorage(folder, f"a full {TMPFS_SIZE} tmpfs", Launch(), None)
        else:
            cap = tmp_path / "page-cap"
            cap.write_text("")
            launch = Launch(module="tests.e2e.page_capped", env={"ARREARS_TEST_PAGE_CAP": str(cap)})
            yield FullableStorage(folder, "max_page_count", launch, cap)
    finally:
        if mounted:
            _system("umount", "--lazy", str(folder))


def _system(*command: str) -> bool:
    """Run a system command (mount, umount); whether it succeeded."""
    done = subprocess.run(command, capture_output=True, check=False)  # noqa: S603
    return done.returncode == 0
