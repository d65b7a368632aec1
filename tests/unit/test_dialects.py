"""What differs between SQLite and PostgreSQL is chosen once, by `Database`
(docs/architecture.md, "Two databases, one dialect chosen once"): no repository or
service tells the databases apart by name."""

from __future__ import annotations

import re
from pathlib import Path

from arrears.store.database import Database
from arrears.store.dialect import dialect_of
from arrears.store.postgresql import POSTGRESQL
from arrears.store.sqlite import SQLITE

SOURCE = Path(__file__).resolve().parents[2] / "src" / "arrears"
# SQLAlchemy hands the column types a dialect; the migrations speak to one database.
MAY_NAME_A_DATABASE = {"store/types.py", "store/database.py", "store/migrations"}
BRANCH_ON_A_NAME = re.compile(r"dialect(_name|\.name)?\s*[!=]=")


def test_no_repository_or_service_branches_on_the_name_of_its_database() -> None:
    branches = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in sorted(SOURCE.rglob("*.py"))
        if not any(str(path.relative_to(SOURCE)).startswith(m) for m in MAY_NAME_A_DATABASE)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if BRANCH_ON_A_NAME.search(line)
    ]
    assert branches == []


def test_a_sqlite_database_gives_every_session_the_sqlite_dialect(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'arrears.db'}")
    try:
        with database.write() as written, database.read() as read:
            assert dialect_of(written) is SQLITE
            assert dialect_of(read) is SQLITE
        with database.rehearsal() as rehearsed:
            assert dialect_of(rehearsed) is SQLITE
    finally:
        database.dispose()


def test_a_postgresql_database_is_given_the_postgresql_dialect() -> None:
    # Made without connecting: the engine connects only when a session first runs.
    database = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        assert database.dialect is POSTGRESQL
    finally:
        database.dispose()
