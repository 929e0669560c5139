"""Recall (correction/removal) tables (21 CFR 7 subpart C, 21 CFR 806).

A recall works from a frozen scope: `recall_scope` keeps every version of the scope as a snapshot
with its SHA-256 hash (widening adds a version and the difference); `recall_lot` and
`recall_consignee` are the current version's rows the rest of the process works on. Each
consignee gets one notice (a child workflow), answers arrive as `recall_response` rows, returned
goods as `recall_return` rows.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from erp.models import TZ, Base

RECALL_NUMBER = "recall_seq"
CLASSES = ("I", "II", "III")
DEPTHS = ("consumer", "retail", "wholesale")
EFFECTIVENESS_LEVELS = ("A", "B", "C", "D", "E")
# the share of consignees an effectiveness check reaches, by level (21 CFR 7.42(b)(3))
EFFECTIVENESS_TARGETS = {"A": 100, "B": 50, "C": 10, "D": 2, "E": 0}


class Recall(Base):
    __tablename__ = "recall"
    __table_args__ = (
        CheckConstraint(
            "classification IS NULL OR classification IN ('I', 'II', 'III')", name="class"
        ),
        CheckConstraint(
            "depth IS NULL OR depth IN ('consumer', 'retail', 'wholesale')", name="depth"
        ),
        CheckConstraint(
            "effectiveness_level IS NULL OR effectiveness_level IN ('A', 'B', 'C', 'D', 'E')",
            name="effectiveness_level",
        ),
        Index("ix_recall_status", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # RCL-2026-0001 (DRL- in a drill)
    process_id: Mapped[str] = mapped_column(String(200), unique=True)
    drill: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(
        String(20)
    )  # ui | nc | capa | complaint | regulator | external
    source_reference: Mapped[str] = mapped_column(String(200), default="")  # e.g. the NC number
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(30), default="scoping")
    health_hazard: Mapped[str] = mapped_column(Text, default="")
    classification: Mapped[str | None] = mapped_column(String(3))
    depth: Mapped[str | None] = mapped_column(String(10))
    public_warning: Mapped[bool | None] = mapped_column()
    effectiveness_level: Mapped[str | None] = mapped_column(String(1))
    scope_version: Mapped[int] = mapped_column(default=0)
    scope_hash: Mapped[str] = mapped_column(String(64), default="")
    report_due_on: Mapped[date | None] = mapped_column(Date)  # 10 working days (Part 806)
    report_number: Mapped[str] = mapped_column(String(60), default="")
    report_submitted_at: Mapped[datetime | None] = mapped_column(TZ)
    initiated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    scoped_at: Mapped[datetime | None] = mapped_column(TZ)
    held_at: Mapped[datetime | None] = mapped_column(TZ)
    notified_at: Mapped[datetime | None] = mapped_column(TZ)  # every consignee notified
    strategy_approved_at: Mapped[datetime | None] = mapped_column(TZ)
    effectiveness_waived_by: Mapped[str | None] = mapped_column(String(64))
    terminated_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class RecallScope(Base):
    """One frozen version of the scope: the snapshot, its hash, and what changed from the last."""

    __tablename__ = "recall_scope"
    __table_args__ = (UniqueConstraint("recall_id", "version", name="uq_recall_scope_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    recall_id: Mapped[int] = mapped_column(ForeignKey("recall.id"), index=True)
    version: Mapped[int] = mapped_column()
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    snapshot_hash: Mapped[str] = mapped_column(String(64))
    difference: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class RecallLot(Base):
    __tablename__ = "recall_lot"
    __table_args__ = (
        UniqueConstraint("recall_id", "lot_id", name="uq_recall_lot_recall_lot"),
        CheckConstraint("role IN ('suspect', 'affected')", name="role"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    recall_id: Mapped[int] = mapped_column(ForeignKey("recall.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # suspect (named) | affected (by genealogy)
    scope_version: Mapped[int] = mapped_column()  # the version that added it
    status_before: Mapped[str] = mapped_column(String(20))
    held: Mapped[bool] = mapped_column(default=False)  # in-house stock put ON_HOLD
    note: Mapped[str] = mapped_column(Text, default="")


class RecallConsignee(Base):
    """A consignee of the recalled product: what it received, its notice and its answers."""

    __tablename__ = "recall_consignee"
    __table_args__ = (
        UniqueConstraint("recall_id", "customer_id", name="uq_recall_consignee_customer"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    recall_id: Mapped[int] = mapped_column(ForeignKey("recall.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    scope_version: Mapped[int] = mapped_column()
    shipped_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    shipped: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list
    )  # lots, serials, shipments
    status: Mapped[str] = mapped_column(String(20), default="pending")
    notice_process_id: Mapped[str | None] = mapped_column(String(200))
    notified_at: Mapped[datetime | None] = mapped_column(TZ)
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZ)
    quantity_on_hand: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    quantity_returned: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    quantity_corrected: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    quantity_received_back: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    reminders: Mapped[int] = mapped_column(default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(TZ)
    reconciled_at: Mapped[datetime | None] = mapped_column(TZ)
    checked: Mapped[bool] = mapped_column(default=False)  # sampled for an effectiveness check
    check_result: Mapped[str] = mapped_column(Text, default="")


class RecallResponse(Base):
    """A consignee's answer, as an external event or keyed in; one per event id."""

    __tablename__ = "recall_response"
    id: Mapped[int] = mapped_column(primary_key=True)
    recall_consignee_id: Mapped[int] = mapped_column(ForeignKey("recall_consignee.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(300), unique=True)
    acknowledged: Mapped[bool] = mapped_column(default=True)
    quantity_on_hand: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    quantity_returned: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    quantity_corrected: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class RecallReturn(Base):
    """Recalled goods received back at our dock from a consignee."""

    __tablename__ = "recall_return"
    id: Mapped[int] = mapped_column(primary_key=True)
    recall_consignee_id: Mapped[int] = mapped_column(ForeignKey("recall_consignee.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lot.id"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    event_id: Mapped[str] = mapped_column(String(300), unique=True)
    received_by: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
