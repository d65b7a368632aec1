"""usage entry ids drawn at random

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:45:00.000000

Usage entries were numbered by one autoincrement counter for every seller: a seller
whose entries were numbered 7 and then 14 learned that others had stored six entries
in between. Ids are now drawn by `arrears.domain.ids.UsageIds` (docs/api-conventions.md,
"Ids"). This renumbers the stored entries the same way, one run of random ids per
submission in the order of the old ids (so a submission's entries keep their order), and
carries the new ids into `billed_usage` and the invoice lines' `usage_ids`; on
PostgreSQL the column's sequence is dropped, so the database numbers nothing.

Every new id is at least 2**32 and every old one below it, so no renumbered row meets a
row not yet renumbered. An invoice line holds the ids it billed as they were when it was
issued; ids an entry no longer has (none: billed entries are never deleted) stay as they
are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import groupby, islice
from typing import Any

import sqlalchemy as sa
from alembic import op

from arrears.domain.ids import UsageIds

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_CHUNK = 2_000
_MAP = "usage_id_renumbering"


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _new_ids(connection: sa.Connection) -> Iterator[dict[str, int]]:
    """Old id -> new id, one random run per submission, in the order of the old ids."""
    rows = connection.execute(
        sa.text("SELECT submission_id, id FROM usage_entries ORDER BY submission_id, id")
    )
    for _, entries in groupby(rows, key=lambda row: row[0]):
        old = [row[1] for row in entries]
        for old_id, new_id in zip(old, UsageIds().take(len(old)), strict=True):
            yield {"old": old_id, "new": new_id}


def _renumbered_lines(connection: sa.Connection) -> list[dict[str, Any]]:
    lines = connection.execute(
        sa.text("SELECT invoice_id, position, usage_ids FROM invoice_lines WHERE usage_ids <> '[]'")
    ).all()
    changed = []
    for invoice_id, position, text in lines:
        old: Sequence[int] = json.loads(text)
        new: dict[int, int] = {}
        for chunk in _chunks(iter(old), _CHUNK):
            new.update(
                connection.execute(
                    sa.text(f"SELECT old, new FROM {_MAP} WHERE old IN :ids").bindparams(  # noqa: S608
                        sa.bindparam("ids", expanding=True)
                    ),
                    {"ids": chunk},
                ).all()
            )
        ids = json.dumps([new.get(id_, id_) for id_ in old], separators=(",", ":"))
        changed.append({"invoice_id": invoice_id, "position": position, "ids": ids})
    return changed


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_entries ALTER COLUMN id DROP DEFAULT")
        op.execute("DROP SEQUENCE IF EXISTS usage_entries_id_seq")
    op.execute(f"CREATE TABLE {_MAP} (old BIGINT PRIMARY KEY, new BIGINT NOT NULL)")
    insert = sa.text(f"INSERT INTO {_MAP} (old, new) VALUES (:old, :new)")  # noqa: S608
    for chunk in _chunks(_new_ids(connection), 10_000):
        connection.execute(insert, chunk)
    for table, column in (("usage_entries", "id"), ("billed_usage", "usage_id")):
        op.execute(
            f"UPDATE {table} SET {column} = m.new FROM {_MAP} AS m "  # noqa: S608
            f"WHERE m.old = {table}.{column}"
        )
    lines = _renumbered_lines(connection)
    if lines:
        connection.execute(
            sa.text(
                "UPDATE invoice_lines SET usage_ids = :ids "
                "WHERE invoice_id = :invoice_id AND position = :position"
            ),
            lines,
        )
    op.execute(f"DROP TABLE {_MAP}")


def downgrade() -> None:
    # The old numbers are gone; the database numbers new entries again, after the
    # highest id below 2**32 (the drawn ids all lie above it).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE usage_entries_id_seq OWNED BY usage_entries.id")
        op.execute(
            "SELECT setval('usage_entries_id_seq', "
            "COALESCE((SELECT max(id) FROM usage_entries WHERE id < 4294967296), 0) + 1, false)"
        )
        op.execute(
            "ALTER TABLE usage_entries ALTER COLUMN id SET DEFAULT nextval('usage_entries_id_seq')"
        )
