"""invoice lines without a foreign key to invoices

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 08:30:00.000000

Lines are inserted with their invoice in one transaction and neither ever changes. The
foreign key cost a query per line, and on PostgreSQL that query's plan, cached per
connection, scanned the whole invoices table when it was planned while invoices was
empty (see `InvoiceLineRow`).
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_constraint("fk_invoice_lines_invoice_id_invoices", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_invoice_lines_invoice_id_invoices", "invoices", ["invoice_id"], ["id"]
        )
