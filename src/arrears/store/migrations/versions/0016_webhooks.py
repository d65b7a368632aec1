"""webhooks: endpoints, the outbox of events, and their deliveries

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 21:50:00.000000

SPEC §13 (docs/webhooks.md). `webhook_events` is the outbox: an event is written in
the transaction of the change it reports, with one Pending row in
`webhook_deliveries` per endpoint that subscribes to it; workers send what is due and
record each attempt there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import arrears.store.types

revision = "0016"
# Numbered after the migrations that reached main before it; 0013 was never used.
down_revision = "0015"
branch_labels = None
depends_on = None

_INSTANT = arrears.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("events", sa.String(length=500), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=1000), nullable=True),
        sa.Column("disabled_at", _INSTANT, nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret_expires_at", _INSTANT, nullable=True),
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_webhook_endpoints_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_endpoints_seller_id"), ["seller_id"], unique=False
        )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_webhook_events_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("seller_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=24), nullable=False),
        sa.Column("event_id", sa.String(length=24), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("due_at", _INSTANT, nullable=False),
        sa.Column("schedule_from", _INSTANT, nullable=True),
        sa.Column("attempted_at", _INSTANT, nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("response_body", sa.String(length=1024), nullable=True),
        sa.Column("next_attempt_at", _INSTANT, nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", _INSTANT, nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_webhook_events"),
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_webhook_deliveries_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_due", ["status", "due_at"], unique=False)
        batch_op.create_index(
            "ix_webhook_deliveries_endpoint", ["endpoint_id", "due_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_event_id"), ["event_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_event_id"))
        batch_op.drop_index("ix_webhook_deliveries_endpoint")
        batch_op.drop_index("ix_webhook_deliveries_due")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_seller_id"))
    op.drop_table("webhook_endpoints")
