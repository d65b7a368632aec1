"""Migrations: `arrears db upgrade` on an empty database, twice, matches the models."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from arrears.store import schema
from arrears.store.database import Database
from tests.conftest import POSTGRES_SERVER


@pytest.fixture
def empty_database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    if database_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = make_url(POSTGRES_SERVER)
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"arrears_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _arrears(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own console script)
        [sys.executable, "-m", "arrears", *args],
        env={**os.environ, "ARREARS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_upgrade_on_an_empty_database_then_again_is_idempotent(
    empty_database_url: str,
) -> None:
    first = _arrears("db", "upgrade", url=empty_database_url)
    assert first.returncode == 0, first.stderr
    second = _arrears("db", "upgrade", url=empty_database_url)
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout
    check = _arrears("db", "check", url=empty_database_url)
    assert check.returncode == 0, check.stdout + check.stderr


def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        schema.upgrade(database)
        assert schema.pending_differences(database) == []
        assert schema.current_revision(database) is not None
    finally:
        database.dispose()
