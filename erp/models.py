"""Typed SQLAlchemy 2 models of the foundation tables (migration 0001)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


TZ = DateTime(timezone=True)


class AppUser(Base):
    """A person or a system account. `username` never changes; it is what the audit trail names."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(300))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_system: Mapped[bool] = mapped_column(default=False)
    locale: Mapped[str] = mapped_column(String(16), default="en")
    failed_login_count: Mapped[int] = mapped_column(default=0)
    login_locked_until: Mapped[datetime | None] = mapped_column(TZ)
    failed_signature_count: Mapped[int] = mapped_column(default=0)
    signature_locked_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class AppGroup(Base):
    """A group is also a role: candidate groups of tasks and permissions both name groups."""

    __tablename__ = "app_group"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(300), default="")


class GroupMembership(Base):
    __tablename__ = "group_membership"
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("app_group.id"), primary_key=True)


class Delegation(Base):
    """Out of office: `delegate` may act for `delegator` between `starts_at` and `ends_at`."""

    __tablename__ = "delegation"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="period"),
        CheckConstraint("delegator_id <> delegate_id", name="not_self"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    delegator_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    delegate_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(TZ)
    ends_at: Mapped[datetime] = mapped_column(TZ)
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class UserSession(Base):
    """A UI session (cookie) or an API bearer token; only the token's SHA-256 is stored."""

    __tablename__ = "user_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ui | bearer
    csrf_token: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class ApiKey(Base):
    """A system's key: scoped, acting as a system user; only the key's SHA-256 is stored."""

    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class Process(Base):
    """The read model of a running process; the workflow (same id) is the source of truth."""

    __tablename__ = "process"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(String(300))
    # the title's English template and values ({"template", "values"}; migration 0010), None for
    # a process registered before: the pages show the title in the reader's language from it
    title_wording: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    business_key: Mapped[str] = mapped_column(String(200), index=True)
    initiator: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="running")
    current_step: Mapped[str] = mapped_column(String(100), default="")
    outcome: Mapped[str | None] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class Task(Base):
    """The inbox's read model of a human step; the HumanTask workflow is the source of truth."""

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_open_due", "status", "due_at"),
        Index("ix_task_candidate_groups", "candidate_groups", postgresql_using="gin"),
        Index("ix_task_candidate_users", "candidate_users", postgresql_using="gin"),
        # the inbox of open tasks: each branch of "mine or my groups'" is a small bitmap over open
        # rows only, instead of the whole table's (migration 0008)
        Index(
            "ix_task_open_candidate_groups",
            "candidate_groups",
            postgresql_using="gin",
            postgresql_where=text("status = 'open'"),
        ),
        Index(
            "ix_task_open_candidate_users",
            "candidate_users",
            postgresql_using="gin",
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_task_open_claimed_by", "claimed_by", postgresql_where=text("status = 'open'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(300), unique=True)
    run_id: Mapped[str] = mapped_column(String(64))
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    process_kind: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    business_key: Mapped[str] = mapped_column(String(200), index=True)
    initiator: Mapped[str | None] = mapped_column(String(64))
    excluded_users: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    candidate_groups: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    candidate_users: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    rule: Mapped[str] = mapped_column(String(20))
    k: Mapped[int] = mapped_column(default=1)
    stage: Mapped[int] = mapped_column(default=1)
    stage_count: Mapped[int] = mapped_column(default=1)
    # json, not jsonb: jsonb reorders keys, and a task's context is shown in the order written
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="open")
    outcome: Mapped[str | None] = mapped_column(String(40))
    level: Mapped[int] = mapped_column(default=1)
    due_at: Mapped[datetime | None] = mapped_column(TZ)
    reminded_at: Mapped[datetime | None] = mapped_column(TZ)
    escalated_at: Mapped[datetime | None] = mapped_column(TZ)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class TaskDecision(Base):
    __tablename__ = "task_decision"
    __table_args__ = (UniqueConstraint("task_id", "seq", name="uq_task_decision_task_seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    decided_by: Mapped[str] = mapped_column(String(64))
    on_behalf_of: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(40))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    comment: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[int] = mapped_column(default=1)
    counted_for: Mapped[str | None] = mapped_column(String(64))
    signature_id: Mapped[int | None] = mapped_column(ForeignKey("e_signature.id"))
    decided_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class ESignature(Base):
    """A Part 11 electronic signature: who, when, what it means, and the hash of what was signed."""

    __tablename__ = "e_signature"
    __table_args__ = (Index("ix_e_signature_record", "record_type", "record_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    signer: Mapped[str] = mapped_column(String(64))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(40))
    signed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(200))
    record_hash: Mapped[str] = mapped_column(String(64))
    signed_content: Mapped[dict[str, Any]] = mapped_column(JSONB)  # what the hash was taken over
    authenticated_by: Mapped[str] = mapped_column(String(40), default="password")
    workflow_id: Mapped[str | None] = mapped_column(String(300))


class Outbox(Base):
    """Messages for people and systems, written in the same transaction as what caused them."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "status", "created_at"),
        # what the dispatcher claims next (erp/notify.py, migration 0009)
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))  # email | webhook
    recipient: Mapped[str] = mapped_column(String(200))  # user:<name> | group:<name> | url
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(TZ)
    # pending | sending (leased until next_attempt_at) | sent | failed (migration 0009)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class AuditEntry(Base):
    """Append-only, hash-chained. The database refuses UPDATE, DELETE and TRUNCATE on it."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_entity", "entity_type", "entity_id"),
        Index("ix_audit_entry_workflow", "workflow_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(TZ)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    on_behalf_of: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20), default="ok")  # ok | refused
    reason: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    workflow_id: Mapped[str | None] = mapped_column(String(300))
    run_id: Mapped[str | None] = mapped_column(String(64))
    activity: Mapped[str | None] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(20))  # api | ui | worker | cli
    idempotency_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))
    # HMAC-SHA256 of row_hash under LOTLINE_AUDIT_KEY: without the key, no rewritten row fits
    row_mac: Mapped[str | None] = mapped_column(String(64))


class AuditSeal(Base):
    """The chain's head (last row id and hash) under a keyed MAC, rewritten in the transaction
    of every append: rows removed from the end no longer reach it (migration 0007)."""

    __tablename__ = "audit_seal"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(TZ)


# --- notifications (migration 0009; erp/notify.py delivers) ------------------------------------


class MailboxMessage(Base):
    """A mail of the embedded default (no SMTP host): what /mailbox shows, one row per address."""

    __tablename__ = "mailbox_message"
    __table_args__ = (
        UniqueConstraint("outbox_id", "address", name="uq_mailbox_message_outbox_address"),
        Index("ix_mailbox_message_user_id", "user_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    address: Mapped[str] = mapped_column(String(200))  # the e-mail, or e.g. supplier:ACME
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class WebhookSubscription(Base):
    """A system that wants events as signed JSON POSTs; deleting one only marks it deleted."""

    __tablename__ = "webhook_subscription"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))  # "*" is every event
    secret: Mapped[str] = mapped_column(String(200))  # the HMAC-SHA256 key of the signature
    description: Mapped[str] = mapped_column(String(300), default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(TZ)


class WebhookDelivery(Base):
    """One event to one subscription: pending | sending | delivered | failed."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint(
            "subscription_id", "event_id", name="uq_webhook_delivery_subscription_event"
        ),
        Index(
            "ix_webhook_delivery_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscription.id"))
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    event_id: Mapped[str] = mapped_column(String(80))
    event_type: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(TZ)
