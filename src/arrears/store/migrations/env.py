"""Alembic environment: runs against the connection handed over by `arrears.store.schema`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from arrears.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic` command line, for developers writing a new revision
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///arrears.db")
    with engine.begin() as new_connection:
        _run(new_connection)
