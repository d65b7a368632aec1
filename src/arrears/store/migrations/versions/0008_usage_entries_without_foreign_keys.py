"""usage entries without foreign keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 10:10:00.000000

Sellers, contracts and components are never deleted, and every insert of usage has
resolved its seller's contracts and components first, under the contracts' row locks
(`UsageRepository.contract_terms`, `terms_of`). The three foreign keys only repeated that
check per row: on PostgreSQL a query and a row lock each, about two thirds of a bulk
insert's time (see `UsageEntryRow`).
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_REFERENCES = (
    ("seller_id", "sellers"),
    ("contract_id", "contracts"),
    ("component_id", "components"),
)


def upgrade() -> None:
    with op.batch_alter_table("usage_entries", schema=None) as batch_op:
        for column, table in _REFERENCES:
            batch_op.drop_constraint(f"fk_usage_entries_{column}_{table}", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("usage_entries", schema=None) as batch_op:
        for column, table in _REFERENCES:
            batch_op.create_foreign_key(
                f"fk_usage_entries_{column}_{table}", table, [column], ["id"]
            )
