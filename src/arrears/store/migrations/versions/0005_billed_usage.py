"""billed usage: links from usage entries to invoices in a table of their own

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 07:50:00.000000

Linking a usage entry to its invoice wrote `usage_entries.invoice_id`, which rewrote the
whole entry and its index entries; `billed_usage` takes one narrow row per billed entry
instead (see `BilledUsageRow`). Existing links move over.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billed_usage",
        sa.Column(
            "usage_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("invoice_id", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("usage_id", name=op.f("pk_billed_usage")),
    )
    op.execute(
        "INSERT INTO billed_usage (usage_id, invoice_id) "
        "SELECT id, invoice_id FROM usage_entries WHERE invoice_id IS NOT NULL"
    )
    with op.batch_alter_table("usage_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_entries_contract_id_invoice_id_due_date")
        batch_op.drop_column("invoice_id")
        batch_op.create_index(
            "ix_usage_entries_contract_id_due_date", ["contract_id", "due_date"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_entries_contract_id_due_date")
        batch_op.add_column(sa.Column("invoice_id", sa.String(length=24), nullable=True))
        batch_op.create_index(
            "ix_usage_entries_contract_id_invoice_id_due_date",
            ["contract_id", "invoice_id", "due_date"],
            unique=False,
        )
    op.execute(
        "UPDATE usage_entries SET invoice_id = "
        "(SELECT invoice_id FROM billed_usage WHERE usage_id = usage_entries.id)"
    )
    op.drop_table("billed_usage")
