"""Gapless business numbers: a counter row per series, taken in the transaction of the record.

A PostgreSQL sequence hands out a number even to a transaction that then rolls back, so a worker
killed before an activity's commit left a hole (NC-2026-0013 missing between 0012 and 0014),
which an inspector reads as a deleted record. A counter row updated in the record's own
transaction gives back its number when the transaction rolls back. Each counter keeps the name
of the sequence it replaces and continues where that sequence stood.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SERIES = (
    "change_number_seq",
    "customer_order_seq",
    "purchase_order_seq",
    "work_order_seq",
    "shipment_seq",
    "lot_number_seq",
    "nonconformance_seq",
    "capa_seq",
    "scar_seq",
    "recall_seq",
)


def upgrade() -> None:
    op.create_table(
        "number_counter",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_number_counter")),
    )
    for name in SERIES:
        # the last number handed out: last_value once called, one below the start before that
        op.execute(
            f"INSERT INTO number_counter (name, last_value) SELECT '{name}', "
            f"CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {name}"
        )
        op.execute(f"DROP SEQUENCE {name}")


def downgrade() -> None:
    for name in SERIES:
        op.execute(f"CREATE SEQUENCE {name}")
        op.execute(
            f"SELECT setval('{name}', last_value + 1, false) FROM number_counter "
            f"WHERE name = '{name}'"
        )
    op.drop_table("number_counter")
