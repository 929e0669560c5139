"""inbox: partial indexes over open tasks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:00:00

"My tasks and my groups' tasks" reads open tasks only. The GIN indexes over every task's
candidates made each branch of that OR a bitmap over the whole table, closed tasks included, so
with a million tasks the planner scanned the table instead; the same indexes restricted to open
rows (and one on who claimed an open task) keep the bitmap to what the inbox can show
(bench/inbox.py). The whole-table indexes stay for lists of closed tasks and of any status.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_index(
        "ix_task_open_candidate_groups",
        "task",
        ["candidate_groups"],
        postgresql_using="gin",
        postgresql_where=_OPEN,
    )
    op.create_index(
        "ix_task_open_candidate_users",
        "task",
        ["candidate_users"],
        postgresql_using="gin",
        postgresql_where=_OPEN,
    )
    op.create_index("ix_task_open_claimed_by", "task", ["claimed_by"], postgresql_where=_OPEN)


def downgrade() -> None:
    op.drop_index("ix_task_open_claimed_by", table_name="task", postgresql_where=_OPEN)
    op.drop_index(
        "ix_task_open_candidate_users",
        table_name="task",
        postgresql_using="gin",
        postgresql_where=_OPEN,
    )
    op.drop_index(
        "ix_task_open_candidate_groups",
        table_name="task",
        postgresql_using="gin",
        postgresql_where=_OPEN,
    )
