"""Change requests, their kept revisions, their proposed actions and impact snapshots."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from erp.models import TZ, Base

CHANGE_NUMBER = "change_number_seq"  # its series in erp/numbering.py


class ChangeRequest(Base):
    __tablename__ = "change_request"
    __table_args__ = (Index("ix_change_request_status", "status"),)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # = the workflow id
    number: Mapped[str] = mapped_column(String(20), unique=True)  # CR-2026-0042
    change_type: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    risk: Mapped[str] = mapped_column(String(10))
    requester: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(30), default="triage")
    classification: Mapped[str | None] = mapped_column(String(10))  # minor | major
    required_assessments: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    implementer: Mapped[str | None] = mapped_column(String(64))
    requested_effective_on: Mapped[date] = mapped_column(Date)
    effective_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class ChangeRevision(Base):
    """Every revision of a request's content is kept, with why it was revised."""

    __tablename__ = "change_revision"
    __table_args__ = (UniqueConstraint("change_id", "revision", name="uq_change_revision"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[str] = mapped_column(ForeignKey("change_request.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    revised_by: Mapped[str] = mapped_column(String(64))
    why: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class ChangeAssessment(Base):
    __tablename__ = "change_assessment"
    __table_args__ = (
        UniqueConstraint("change_id", "revision", "function", name="uq_change_assessment"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[str] = mapped_column(ForeignKey("change_request.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    function: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(30))
    assessment: Mapped[str] = mapped_column(Text)
    assessed_by: Mapped[str] = mapped_column(String(64))
    impact: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the impact list they were shown
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
