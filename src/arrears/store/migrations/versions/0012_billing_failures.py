"""billing failures: contracts that cannot be billed, with the reason

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 18:20:00.000000

A contract whose billing fails for a reason of its own (an amount that cannot be
computed or stored, a date out of range, a bug) was logged and retried, and nobody else
was told. `billing_failures` keeps one row per such contract, with the reason shown to
its seller, until an attempt bills it (docs/billing.md, "When a contract cannot be
billed").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import arrears.store.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_failures",
        sa.Column("contract_id", sa.String(length=24), nullable=False),
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("error", sa.String(length=200), nullable=False),
        sa.Column(
            "first_failed_at", arrears.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("failed_at", arrears.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_billing_failures_contract_id_contracts"),
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_billing_failures_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("contract_id", name=op.f("pk_billing_failures")),
    )
    with op.batch_alter_table("billing_failures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_failures_seller_id"), ["seller_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_failures_seller_id"))
    op.drop_table("billing_failures")
