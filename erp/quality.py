"""Nonconformance and CAPA tables (21 CFR 820.90, 820.100; ISO 13485 §8.3, §8.5.2).

A nonconformance (NC) names the lots it affects (`nc_lot`, role `affected`, or `extended` when
containment was widened by genealogy); each lot gets one disposition from the material review
board. A return to supplier opens a supplier corrective action request (`scar`). A CAPA has one
or more plan rounds (a failed effectiveness check reopens it with a new round); each round's
actions are rows of `capa_action`, each a timed task for its owner.
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

NC_SOURCES = ("incoming", "in_process", "final", "complaint", "audit", "supplier", "other")
NC_SEVERITIES = ("minor", "major", "critical")
DISPOSITIONS = ("use_as_is", "rework", "return_to_supplier", "scrap")
NC_NUMBER = "nonconformance_seq"
CAPA_NUMBER = "capa_seq"
SCAR_NUMBER = "scar_seq"


class Nonconformance(Base):
    __tablename__ = "nonconformance"
    __table_args__ = (
        CheckConstraint(
            "source IN ('incoming', 'in_process', 'final', 'complaint', 'audit', 'supplier',"
            " 'other')",
            name="source",
        ),
        CheckConstraint("severity IN ('minor', 'major', 'critical')", name="severity"),
        Index("ix_nonconformance_status", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # NC-2026-0042
    process_id: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    part_number: Mapped[str | None] = mapped_column(String(40), index=True)
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    evidence: Mapped[str] = mapped_column(Text, default="")
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"), index=True)
    reported_by: Mapped[str] = mapped_column(String(64))
    origin_process_id: Mapped[str | None] = mapped_column(String(200))  # e.g. the purchase
    status: Mapped[str] = mapped_column(String(30), default="containment")
    investigation: Mapped[str] = mapped_column(Text, default="")
    capa_process_id: Mapped[str | None] = mapped_column(String(200))
    # what a recall needs, when the NC reached product already shipped (the recall issue uses it)
    recall_requested: Mapped[bool] = mapped_column(default=False)
    recall_scope: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    due_on: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class NcLot(Base):
    """A lot an NC affects, and what the material review board decided for it."""

    __tablename__ = "nc_lot"
    __table_args__ = (
        UniqueConstraint("nc_id", "lot_id", name="uq_nc_lot_nc_lot"),
        CheckConstraint("role IN ('affected', 'extended')", name="role"),
        CheckConstraint(
            "disposition IS NULL OR disposition IN ('use_as_is', 'rework',"
            " 'return_to_supplier', 'scrap')",
            name="disposition",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    nc_id: Mapped[int] = mapped_column(ForeignKey("nonconformance.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    role: Mapped[str] = mapped_column(String(10), default="affected")
    status_before: Mapped[str] = mapped_column(String(20))  # the lot's status when contained
    held: Mapped[bool] = mapped_column(default=False)  # False: could not be held (e.g. shipped)
    note: Mapped[str] = mapped_column(Text, default="")
    disposition: Mapped[str | None] = mapped_column(String(20))
    justification: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(200))
    applied_at: Mapped[datetime | None] = mapped_column(TZ)


class Scar(Base):
    """Supplier corrective action request, opened by a return to supplier."""

    __tablename__ = "scar"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # SCAR-2026-0007
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    nc_id: Mapped[int] = mapped_column(ForeignKey("nonconformance.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lot.id"))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    due_on: Mapped[date | None] = mapped_column(Date)
    opened_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class Capa(Base):
    __tablename__ = "capa"
    __table_args__ = (Index("ix_capa_status", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # CAPA-2026-0003
    process_id: Mapped[str] = mapped_column(String(200), unique=True)
    nc_id: Mapped[int | None] = mapped_column(ForeignKey("nonconformance.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    problem_statement: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20), default="nonconformance")
    owner: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(30), default="root_cause")
    rca_method: Mapped[str] = mapped_column(String(40), default="")
    rca_findings: Mapped[str] = mapped_column(Text, default="")
    plan_round: Mapped[int] = mapped_column(default=0)
    effectiveness_wait_days: Mapped[int] = mapped_column(default=90)
    effectiveness_due_on: Mapped[date | None] = mapped_column(Date)
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class CapaAction(Base):
    """One corrective or preventive action of a plan round, with its owner and due date."""

    __tablename__ = "capa_action"
    __table_args__ = (
        UniqueConstraint("capa_id", "plan_round", "seq", name="uq_capa_action_round_seq"),
        CheckConstraint("kind IN ('corrective', 'preventive')", name="kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    capa_id: Mapped[int] = mapped_column(ForeignKey("capa.id"), index=True)
    plan_round: Mapped[int] = mapped_column()
    seq: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(12))
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="planned")
    evidence: Mapped[str] = mapped_column(Text, default="")
    completed_by: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    change_process_id: Mapped[str | None] = mapped_column(String(200))  # a change it waits for


class CapaEffectivenessCheck(Base):
    __tablename__ = "capa_effectiveness_check"
    __table_args__ = (
        UniqueConstraint("capa_id", "plan_round", name="uq_capa_effectiveness_round"),
        CheckConstraint("outcome IN ('effective', 'not_effective')", name="outcome"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    capa_id: Mapped[int] = mapped_column(ForeignKey("capa.id"), index=True)
    plan_round: Mapped[int] = mapped_column()
    verifier: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")  # why not effective
    checked_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
