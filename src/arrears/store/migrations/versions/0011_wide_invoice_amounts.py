"""invoice amounts and line quantities wide enough for everything accepted

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:00:00.000000

A line's quantity is a period's sum, and its amount prices that sum: with quantities
and prices below 10**12, both pass what NUMERIC(24, 6) (PostgreSQL) and integers scaled
by 10**6 (SQLite, below 9.2e12) can hold, and billing such a contract failed on every
run. Invoice amounts and every number of a line now hold 50 integer digits and 6 places
(`domain.limits.MAX_AMOUNT_DIGITS`, `store.types.WideDecimal`): NUMERIC(56, 6) on
PostgreSQL, which widens in place (same scale, no rewrite), and exact decimal text
(`12.500000`) on SQLite, whose tables are copied and their scaled integers rewritten as
that text. A downgrade fails on PostgreSQL, and is wrong on SQLite, if any invoice holds
an amount that the narrower columns cannot.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_WIDE = {
    "invoices": ("subtotal", "tax_amount", "total"),
    "invoice_lines": ("quantity", "free_quantity", "billable_quantity", "unit_price", "amount"),
}
_NULLABLE = {"unit_price"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in _WIDE.items():
            changes = ", ".join(f"ALTER COLUMN {c} TYPE NUMERIC(56, 6)" for c in columns)
            op.execute(f"ALTER TABLE {table} {changes}")
        return
    for table, columns in _WIDE.items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column,
                    type_=sa.Text(),
                    existing_type=sa.BigInteger(),
                    existing_nullable=column in _NULLABLE,
                )
        # The copy cast each scaled integer to its text ("12500000"): make it the
        # decimal it stands for ("12.500000"), sign, whole units, six places.
        op.execute(
            f"UPDATE {table} SET "  # noqa: S608 (constants only)
            + ", ".join(f"{c} = {_decimal_text(c)}" for c in columns)
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in _WIDE.items():
            changes = ", ".join(f"ALTER COLUMN {c} TYPE NUMERIC(24, 6)" for c in columns)
            op.execute(f"ALTER TABLE {table} {changes}")
        return
    for table, columns in _WIDE.items():
        # "12.500000" -> "12500000", which the integer column's affinity takes as 12500000.
        op.execute(
            f"UPDATE {table} SET "  # noqa: S608 (constants only)
            + ", ".join(f"{c} = replace({c}, '.', '')" for c in columns)
        )
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column,
                    type_=sa.BigInteger(),
                    existing_type=sa.Text(),
                    existing_nullable=column in _NULLABLE,
                )


def _decimal_text(column: str) -> str:
    scaled = f"CAST({column} AS INTEGER)"
    return (
        f"CASE WHEN {column} IS NULL THEN NULL ELSE "
        f"(CASE WHEN {scaled} < 0 THEN '-' ELSE '' END) || (abs({scaled}) / 1000000) || '.' "
        f"|| substr('00000' || (abs({scaled}) % 1000000), -6) END"
    )
