"""corrections and profiles: credit notes, payments, void, seller profiles, due dates

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-04 21:40:00.000000

SPEC §10 and §12. Credit notes with a number sequence of their own, payments (unique
per invoice and reference), the seller's profile, customers' VAT ids and payment terms.
Invoices gain their due date, the parties as issued, and what corrections changed
(payment status, amounts credited and paid, when voided). The one regular invoice per
contract period becomes one per period among invoices that are not voided: a partial
unique index, on both databases, instead of the unique constraint.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import arrears.store.types

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None

_WIDE = arrears.store.types.WideDecimal(precision=56, scale=6)
_UNVOIDED = sa.text("payment_status <> 'Voided'")


def _instant() -> arrears.store.types.UTCDateTime:
    return arrears.store.types.UTCDateTime(timezone=True)


def _tenant_columns(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f(f"fk_{table}_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "seller_profiles",
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("address", arrears.store.types.ExactJSON(), nullable=False),
        sa.Column("vat_id", sa.String(length=20), nullable=True),
        sa.Column("tax_number", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("bank_account", arrears.store.types.ExactJSON(), nullable=True),
        sa.Column("payment_terms_days", sa.Integer(), nullable=True),
        sa.Column("footer", sa.String(length=1000), nullable=True),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_seller_profiles_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("seller_id", name=op.f("pk_seller_profiles")),
    )
    op.create_table(
        "credit_note_sequences",
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_credit_note_sequences_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("seller_id", "year", name=op.f("pk_credit_note_sequences")),
    )
    op.create_table(
        "credit_notes",
        sa.Column("invoice_id", sa.String(length=24), nullable=False),
        sa.Column("contract_id", sa.String(length=24), nullable=False),
        sa.Column("customer_id", sa.String(length=24), nullable=False),
        sa.Column("credit_note_number", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("document_date", _instant(), nullable=False),
        sa.Column("lines", arrears.store.types.ExactJSON(), nullable=False),
        sa.Column("subtotal", _WIDE, nullable=False),
        sa.Column("tax_amount", _WIDE, nullable=False),
        sa.Column("total", _WIDE, nullable=False),
        *_tenant_columns("credit_notes"),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_credit_notes_invoice_id_invoices")
        ),
        sa.UniqueConstraint(
            "seller_id",
            "credit_note_number",
            name=op.f("uq_credit_notes_seller_id_credit_note_number"),
        ),
    )
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_notes_customer_id"), ["customer_id"])
        batch_op.create_index(batch_op.f("ix_credit_notes_invoice_id"), ["invoice_id"])
        batch_op.create_index(batch_op.f("ix_credit_notes_seller_id"), ["seller_id"])
        batch_op.create_index(
            "ix_credit_notes_seller_id_document_date", ["seller_id", "document_date"]
        )
    op.create_table(
        "payments",
        sa.Column("invoice_id", sa.String(length=24), nullable=False),
        sa.Column("amount", _WIDE, nullable=False),
        sa.Column("paid_at", _instant(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        *_tenant_columns("payments"),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_payments_invoice_id_invoices")
        ),
        sa.UniqueConstraint(
            "invoice_id", "reference", name=op.f("uq_payments_invoice_id_reference")
        ),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_seller_id"), ["seller_id"])

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vat_id", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("payment_terms_days", sa.Integer(), nullable=True))

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_date", _instant(), nullable=True))
        batch_op.add_column(sa.Column("seller", arrears.store.types.ExactJSON(), nullable=True))
        batch_op.add_column(sa.Column("customer", arrears.store.types.ExactJSON(), nullable=True))
        batch_op.add_column(
            sa.Column("payment_status", sa.String(length=8), server_default="Open", nullable=False)
        )
        batch_op.add_column(
            sa.Column("amount_credited", _WIDE, server_default="0.000000", nullable=False)
        )
        batch_op.add_column(
            sa.Column("amount_paid", _WIDE, server_default="0.000000", nullable=False)
        )
        batch_op.add_column(sa.Column("voided_at", _instant(), nullable=True))
        batch_op.drop_constraint("uq_invoices_contract_id_regular_period", type_="unique")
        batch_op.create_index(
            "uq_invoices_unvoided_period",
            ["contract_id", "regular_period"],
            unique=True,
            sqlite_where=_UNVOIDED,
            postgresql_where=_UNVOIDED,
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_seller_id"))
    op.drop_table("payments")
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_notes_seller_id_document_date")
        batch_op.drop_index(batch_op.f("ix_credit_notes_seller_id"))
        batch_op.drop_index(batch_op.f("ix_credit_notes_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_credit_notes_customer_id"))
    op.drop_table("credit_notes")
    op.drop_table("credit_note_sequences")
    op.drop_table("seller_profiles")
    # Back to one regular invoice per period, voided or not: fails, as it should, where
    # a voided period was billed again. (Nothing refers to invoices by a foreign key
    # now, so SQLite may copy the table.)
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("uq_invoices_unvoided_period")
        batch_op.create_unique_constraint(
            "uq_invoices_contract_id_regular_period", ["contract_id", "regular_period"]
        )
        for column in (
            "voided_at",
            "amount_paid",
            "amount_credited",
            "payment_status",
            "customer",
            "seller",
            "due_date",
        ):
            batch_op.drop_column(column)
    # Contracts and invoices refer to customers: their columns are dropped in place
    # (SQLite 3.35 and later), not by copying the table.
    op.drop_column("customers", "payment_terms_days")
    op.drop_column("customers", "vat_id")
