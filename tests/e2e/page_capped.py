"""`python -m tests.e2e.page_capped ARGUMENTS`: the `arrears` command, with SQLite's
database size capped where the disk-full tests cannot mount a small filesystem.

At each checkout of a pooled connection, `PRAGMA max_page_count` is set from the file
that `ARREARS_TEST_PAGE_CAP` names: a number of pages (SQLite raises it to the current
size if it is smaller), or nothing for no cap. A write that needs a page beyond the cap
fails with SQLITE_FULL, "database or disk is full", exactly as on a full disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

from arrears.cli import app
from tests.e2e.full_storage import UNCAPPED


@event.listens_for(Pool, "checkout")
def _cap(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    cap = Path(os.environ["ARREARS_TEST_PAGE_CAP"]).read_text().strip()
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA max_page_count = {int(cap) if cap else UNCAPPED}")
    cursor.close()


if __name__ == "__main__":
    app()
