"""task bodies in a table of their own

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 08:10:00.000000

Claiming, releasing and finishing a task update its row; SQLite rewrites a whole row on
every update, so a body kept in the task row was rewritten each time (17 MB for a
100,000-record task). Bodies of tasks still waiting move over.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_bodies",
        sa.Column("task_id", sa.String(length=24), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_bodies_task_id_tasks")
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_bodies")),
    )
    op.execute(
        "INSERT INTO task_bodies (task_id, body) SELECT id, body FROM tasks WHERE body IS NOT NULL"
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("body")


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
    op.execute("UPDATE tasks SET body = (SELECT body FROM task_bodies WHERE task_id = tasks.id)")
    op.drop_table("task_bodies")
