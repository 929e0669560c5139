"""notifications: outbox delivery state, the mailbox, webhook subscriptions and deliveries

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:00:00

The outbox gains what its dispatcher (erp/notify.py) needs: when a row is next due
(`next_attempt_at`, also the lease of a row being sent), the last error, and an idempotency key
for messages written once per key (the daily digest: one per person per day). `mailbox_message`
holds the mail of the embedded default (no SMTP host); `webhook_subscription` and
`webhook_delivery` the systems that subscribe to events and each delivery's state.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_DUE = sa.text("status IN ('pending', 'sending')")


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.add_column(
        "outbox",
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
    )
    op.add_column("outbox", sa.Column("last_error", sa.Text(), server_default="", nullable=False))
    op.add_column("outbox", sa.Column("idempotency_key", sa.String(length=200), nullable=True))
    op.create_unique_constraint("uq_outbox_idempotency_key", "outbox", ["idempotency_key"])
    op.create_index("ix_outbox_due", "outbox", ["next_attempt_at"], postgresql_where=_DUE)

    op.create_table(
        "mailbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name="fk_mailbox_message_outbox_id_outbox"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name="fk_mailbox_message_user_id_app_user"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mailbox_message"),
        sa.UniqueConstraint("outbox_id", "address", name="uq_mailbox_message_outbox_address"),
    )
    op.create_index("ix_mailbox_message_user_id", "mailbox_message", ["user_id", "id"])

    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=300), server_default="", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_subscription"),
    )

    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscription.id"],
            name="fk_webhook_delivery_subscription_id_webhook_subscription",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name="fk_webhook_delivery_outbox_id_outbox"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_delivery"),
        sa.UniqueConstraint(
            "subscription_id", "event_id", name="uq_webhook_delivery_subscription_event"
        ),
    )
    op.create_index(
        "ix_webhook_delivery_due", "webhook_delivery", ["next_attempt_at"], postgresql_where=_DUE
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_due", table_name="webhook_delivery", postgresql_where=_DUE)
    op.drop_table("webhook_delivery")
    op.drop_table("webhook_subscription")
    op.drop_index("ix_mailbox_message_user_id", table_name="mailbox_message")
    op.drop_table("mailbox_message")
    op.drop_index("ix_outbox_due", table_name="outbox", postgresql_where=_DUE)
    op.drop_constraint("uq_outbox_idempotency_key", "outbox", type_="unique")
    op.drop_column("outbox", "idempotency_key")
    op.drop_column("outbox", "last_error")
    op.drop_column("outbox", "next_attempt_at")
