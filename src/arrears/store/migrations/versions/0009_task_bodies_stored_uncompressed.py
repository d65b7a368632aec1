"""task bodies stored uncompressed on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 11:30:00.000000

A bulk body is written once by the POST, read once by the worker that claims it, and
deleted when the task finishes. PostgreSQL compressed it on the way in (pglz, its
default for `bytea`) and decompressed it on the way out: about a tenth of a second each
for a 17 MB body of 100,000 records, on the path from POST to `Successful`, to save disk
space the body holds only for that long. `EXTERNAL` keeps it out of line, uncompressed.
SQLite never compresses.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE task_bodies ALTER COLUMN body SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE task_bodies ALTER COLUMN body SET STORAGE EXTENDED")
