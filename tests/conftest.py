"""Test harness: every test that takes `database` runs once per selected database.

`--db=sqlite,postgresql` (the default; `make test DBS=sqlite` for SQLite only). Each
PostgreSQL test run creates its own fresh database and drops it at the end; each test
starts from empty tables.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arrears.api.app import create_app
from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store import schema
from arrears.store.database import Database
from arrears.store.tables import Base

hypothesis_settings.register_profile("ci", max_examples=100, deadline=None)
hypothesis_settings.register_profile("nightly", max_examples=2_000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ADMIN_TOKEN = "test-admin-token"
CLOCK_START = datetime(2026, 1, 1, tzinfo=UTC)
POSTGRES_SERVER = os.environ.get(
    "ARREARS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
KINDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default="sqlite,postgresql",
        help="Comma-separated databases to run database tests on: sqlite, postgresql.",
    )


def _selected(config: pytest.Config) -> list[str]:
    kinds = [kind.strip() for kind in config.getoption("--db").split(",") if kind.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise pytest.UsageError(f"--db: unknown database(s) {sorted(unknown)}")
    return kinds


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_kind" in metafunc.fixturenames:
        metafunc.parametrize("database_kind", _selected(metafunc.config), scope="session")


@pytest.fixture(scope="session")
def database_url(database_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database of the kind, made once per test run."""
    if database_kind == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "template.db"
        url = f"sqlite:///{path}"
        _migrate(url)
        yield url
        return
    name = f"arrears_test_{uuid.uuid4().hex[:12]}"
    server = make_url(POSTGRES_SERVER)
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.exit(
            f"PostgreSQL is not reachable at {POSTGRES_SERVER} ({error}). Start it, set "
            "ARREARS_TEST_POSTGRES_URL, or run `make test DBS=sqlite`.",
            returncode=3,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    _migrate(url)
    yield url
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    database = Database(url)
    try:
        schema.upgrade(database)
    finally:
        database.dispose()


@pytest.fixture
def database(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database for one test."""
    if database_url.startswith("sqlite"):
        template = Path(make_url(database_url).database or "")
        copy = tmp_path / "arrears.db"
        shutil.copyfile(template, copy)
        db = Database(f"sqlite:///{copy}")
    else:
        db = Database(database_url, pool_size=4)
        _empty(db)
    yield db
    db.dispose()


def _empty(db: Database) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with db.write() as session:
        session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def clock() -> TestClock:
    return TestClock(CLOCK_START)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        database_url="unused://",
        admin_token=ADMIN_TOKEN,
        test_clock=CLOCK_START.isoformat(),
        max_body_bytes=64 * 1024,
        # A key of its own, so that no test writes the key file into the working directory.
        webhooks_secrets_key="q0n4BzGRqUUAfnhMIUbT1BkO7i-1RzvGEhlWCv2SmwI=",
    )


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    app = create_app(settings, database=database, clock=clock)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def manual_client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    """An app without the embedded worker: tasks wait until a test runs a `Worker`."""
    app = create_app(
        settings.model_copy(update={"embedded_worker": False}), database=database, clock=clock
    )
    with TestClient(app) as test_client:
        yield test_client
