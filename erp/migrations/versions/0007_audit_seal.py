"""audit trail keyed: a MAC per row and a sealed head

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 18:00:00

The rows already written get their MAC here, under the LOTLINE_AUDIT_KEY of the environment the
migration runs in (`make run` sets it before migrating), and the seal is set on the current head.
Run `make verify-audit` before upgrading: the MACs vouch for the rows as they are now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from erp.audit import row_mac, seal_mac
from settings import audit_key

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.add_column("audit_entry", sa.Column("row_mac", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_seal",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_seal_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_seal")),
    )
    _mac_existing_rows()


def _mac_existing_rows() -> None:
    """The append-only trigger refuses UPDATE; it is lifted for this one backfill only."""
    bind = op.get_bind()
    key = audit_key()
    op.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_update_delete")
    last_id, head = 0, None
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, row_hash, recorded_at FROM audit_entry WHERE id > :after "
                "ORDER BY id LIMIT :n"
            ),
            {"after": last_id, "n": _BATCH},
        ).all()
        if not rows:
            break
        bind.execute(
            sa.text("UPDATE audit_entry SET row_mac = :mac WHERE id = :id"),
            [{"id": r.id, "mac": row_mac(r.row_hash, key)} for r in rows],
        )
        last_id, head = rows[-1].id, rows[-1]
    op.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_update_delete")
    if head is not None:
        bind.execute(
            sa.text(
                "INSERT INTO audit_seal (id, last_id, head_hash, mac, sealed_at) "
                "VALUES (1, :id, :hash, :mac, :at)"
            ),
            {
                "id": head.id,
                "hash": head.row_hash,
                "mac": seal_mac(head.id, head.row_hash, key),
                "at": head.recorded_at,
            },
        )


def downgrade() -> None:
    op.drop_table("audit_seal")
    op.drop_column("audit_entry", "row_mac")
