"""plans as sellers sell them: the SPEC §11 catalog fields, plan phases, quantities held,
discounts and coupons

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 22:10:00.000000

Components get their `Kind` (older ones are `Metered`); plan variants their
`MinimumCommitment` and `NoticePeriod`, metered components their `MaximumAmount`, and
`quantity_components` prices quantity components. A contract's plan phases, the
quantities it holds and its discounts get tables of their own, as do discounts and
coupons; invoice lines keep the phase that rated them and the discount they grant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import arrears.store.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _decimal() -> arrears.store.types.ExactDecimal:
    return arrears.store.types.ExactDecimal(precision=24, scale=6)


def _instant() -> arrears.store.types.UTCDateTime:
    return arrears.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    _catalog_columns()
    _discount_tables()
    _contract_tables()


def _catalog_columns() -> None:
    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=8), server_default="Metered", nullable=False)
        )
    # Added in place: SQLite cannot copy a table other tables refer to.
    op.add_column(
        "contracts",
        sa.Column("sold_terms", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    with op.batch_alter_table("plan_variants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("minimum_commitment", _decimal(), nullable=True))
        batch_op.add_column(sa.Column("notice_unit", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("notice_quantity", sa.Integer(), nullable=True))
    with op.batch_alter_table("metered_components", schema=None) as batch_op:
        batch_op.add_column(sa.Column("maximum_amount", _decimal(), nullable=True))
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phase_from", _instant(), nullable=True))
        batch_op.add_column(sa.Column("discount_id", sa.String(length=24), nullable=True))
    op.create_table(
        "quantity_components",
        sa.Column("plan_variant_id", sa.String(length=24), nullable=False),
        sa.Column("component_id", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("price_per_unit", _decimal(), nullable=False),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["components.id"],
            name=op.f("fk_quantity_components_component_id_components"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_variant_id"],
            ["plan_variants.id"],
            name=op.f("fk_quantity_components_plan_variant_id_plan_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "plan_variant_id", "component_id", name=op.f("pk_quantity_components")
        ),
    )
    op.create_index(
        "ix_quantity_components_component_id",
        "quantity_components",
        ["component_id"],
        unique=False,
    )


def _discount_tables() -> None:
    op.create_table(
        "discounts",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("applies_to", sa.String(length=12), nullable=False),
        sa.Column("percentage", _decimal(), nullable=True),
        sa.Column("amount", _decimal(), nullable=True),
        sa.Column("periods", sa.Integer(), nullable=True),
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_discounts_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discounts")),
    )
    op.create_index(op.f("ix_discounts_seller_id"), "discounts", ["seller_id"], unique=False)
    op.create_table(
        "coupons",
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("discount_id", sa.String(length=24), nullable=False),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("valid_until", _instant(), nullable=True),
        sa.Column("redemptions", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.ForeignKeyConstraint(
            ["discount_id"], ["discounts.id"], name=op.f("fk_coupons_discount_id_discounts")
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_coupons_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("seller_id", "code", name=op.f("uq_coupons_seller_id_code")),
    )
    op.create_index(op.f("ix_coupons_discount_id"), "coupons", ["discount_id"], unique=False)
    op.create_index(op.f("ix_coupons_seller_id"), "coupons", ["seller_id"], unique=False)


def _contract_tables() -> None:
    op.create_table(
        "contract_phases",
        sa.Column("contract_id", sa.String(length=24), nullable=False),
        sa.Column("starts", _instant(), nullable=False),
        sa.Column("plan_variant_id", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_contract_phases_contract_id_contracts")
        ),
        sa.ForeignKeyConstraint(
            ["plan_variant_id"],
            ["plan_variants.id"],
            name=op.f("fk_contract_phases_plan_variant_id_plan_variants"),
        ),
        sa.PrimaryKeyConstraint("contract_id", "starts", name=op.f("pk_contract_phases")),
    )
    op.create_index(
        op.f("ix_contract_phases_plan_variant_id"),
        "contract_phases",
        ["plan_variant_id"],
        unique=False,
    )
    op.create_table(
        "component_subscriptions",
        sa.Column("contract_id", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("component_id", sa.String(length=24), nullable=False),
        sa.Column("quantity", _decimal(), nullable=False),
        sa.Column("starts", _instant(), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["components.id"],
            name=op.f("fk_component_subscriptions_component_id_components"),
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_component_subscriptions_contract_id_contracts"),
        ),
        sa.PrimaryKeyConstraint("contract_id", "position", name=op.f("pk_component_subscriptions")),
    )
    op.create_table(
        "contract_discounts",
        sa.Column("contract_id", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("discount_id", sa.String(length=24), nullable=False),
        sa.Column("first_period", sa.Integer(), nullable=False),
        sa.Column("coupon_code", sa.String(length=200), nullable=True),
        sa.Column("created_at", _instant(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_contract_discounts_contract_id_contracts"),
        ),
        sa.ForeignKeyConstraint(
            ["discount_id"],
            ["discounts.id"],
            name=op.f("fk_contract_discounts_discount_id_discounts"),
        ),
        sa.PrimaryKeyConstraint("contract_id", "position", name=op.f("pk_contract_discounts")),
    )
    op.create_index(
        op.f("ix_contract_discounts_discount_id"),
        "contract_discounts",
        ["discount_id"],
        unique=False,
    )


def downgrade() -> None:
    for table in (
        "contract_discounts",
        "component_subscriptions",
        "contract_phases",
        "coupons",
        "discounts",
        "quantity_components",
    ):
        op.drop_table(table)
    # Contracts, metered components and quantity components refer to plan variants and
    # components: columns are dropped in place (SQLite 3.35 and later), not by copying
    # the tables, which SQLite's foreign keys would refuse.
    for table, column in (
        ("invoice_lines", "discount_id"),
        ("invoice_lines", "phase_from"),
        ("metered_components", "maximum_amount"),
        ("plan_variants", "notice_quantity"),
        ("plan_variants", "notice_unit"),
        ("plan_variants", "minimum_commitment"),
        ("components", "kind"),
        ("contracts", "sold_terms"),
    ):
        op.drop_column(table, column)
