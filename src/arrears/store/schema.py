"""Schema migrations, run in-process (`arrears db upgrade`, and at the start of `serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from arrears.store.database import Database
from arrears.store.tables import Base

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: it costs a few tenths of a second at start-up,
# and `arrears bill` or `arrears worker` never migrate.

__all__ = ["current_revision", "downgrade", "pending_differences", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Connection) -> Config:
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; running it again is a no-op."""
    from alembic import command  # noqa: PLC0415

    with database.engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def downgrade(database: Database, revision: str) -> None:
    """Take the schema back to `revision` (to roll a release back, and to test that a
    migration keeps the data it converts)."""
    from alembic import command  # noqa: PLC0415

    with database.engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def current_revision(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def pending_differences(database: Database) -> list[object]:
    """What the models have that the migrated schema lacks (empty when they agree)."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, Base.metadata))
