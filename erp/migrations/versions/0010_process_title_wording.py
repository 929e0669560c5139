"""process title wording: the template and values of a process's title

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:30:00

`process.title` stays the English title (what the audit trail and old readers show);
`title_wording` ({"template": …, "values": {…}}, written by `register_process` from what the
workflow passes through `workflows.wording.titled`) lets the pages show it in the reader's
language. Nullable: a process registered before shows its English title.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("process", sa.Column("title_wording", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("process", "title_wording")
