"""Schema migrations, run in-process (`arrears db upgrade`, and at the start of `serve`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from arrears.store.database import Database
from arrears.store.tables import Base

__all__ = ["current_revision", "pending_differences", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; running it again is a no-op."""
    with database.engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def pending_differences(database: Database) -> list[object]:
    """What the models have that the migrated schema lacks (empty when they agree)."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, Base.metadata))
