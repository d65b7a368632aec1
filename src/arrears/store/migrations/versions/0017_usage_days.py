"""usage_days: the daily usage rollup, filled from the stored entries

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 01:40:00.000000

The console's overview charted usage per component and day by summing every entry of
the last 90 days (4.5 s on SQLite over a million entries). `usage_days` holds those
sums, kept by every write of usage entries in its own transaction
(`store/usage_days.py`); this migration fills it from the entries already stored, all
in shard 0. The quantity is summed in three 21-bit parts of its scaled value, exactly,
on both databases (see `UsageDayRow`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The expressions of `store.usage_days.rollup_statements`, frozen here as of this
# revision: a migration must not change when the code does.
_DAY = {
    "sqlite": "substr(due_date, 1, 10)",
    "postgresql": "to_char(due_date AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
_UNITS = {"sqlite": "quantity", "postgresql": "CAST(quantity * 1000000 AS BIGINT)"}
_BACKFILL = (
    "INSERT INTO usage_days (seller_id, day, component_id, shard, entries, "
    "quantity_high, quantity_middle, quantity_low) "
    "SELECT seller_id, {day} AS d, component_id, 0, COUNT(*), SUM({units} >> 42), "
    "SUM(({units} >> 21) & 2097151), SUM({units} & 2097151) FROM usage_entries "
    "GROUP BY seller_id, d, component_id"
)


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("component_id", sa.String(length=24), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("quantity_high", sa.BigInteger(), nullable=False),
        sa.Column("quantity_middle", sa.BigInteger(), nullable=False),
        sa.Column("quantity_low", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "seller_id", "day", "component_id", "shard", name=op.f("pk_usage_days")
        ),
    )
    name = op.get_bind().dialect.name
    op.execute(_BACKFILL.format(day=_DAY[name], units=_UNITS[name]))


def downgrade() -> None:
    op.drop_table("usage_days")
