"""Recall payloads: what starts a recall (or a drill), the per-consignee notice, the events a
recall accepts, and the results. Workflows, activities and the API all use these."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field


class RecallSource(StrEnum):
    UI = "ui"
    NONCONFORMANCE = "nc"
    CAPA = "capa"
    COMPLAINT = "complaint"
    REGULATOR = "regulator"
    EXTERNAL = "external"


class RecallRequest(BaseModel):
    """Initiate a recall, or a drill ("mock recall": the same workflow, nothing leaves the house
    and no stock is held — see docs/recall.md)."""

    process_id: str = ""  # set by the API (or the process that raises it) before the start
    requester: str = ""
    suspect_lots: Annotated[list[str], Field(min_length=1, max_length=200)]  # lot numbers
    reason: Annotated[str, Field(min_length=5, max_length=5000)]
    source: RecallSource = RecallSource.UI
    source_reference: Annotated[str, Field(max_length=200)] = ""  # e.g. NC-2026-0007
    drill: bool = False
    external_id: Annotated[str | None, Field(max_length=200)] = None


class RecallResult(BaseModel):
    process_id: str
    number: str
    status: str  # closed | cancelled (while running: the current step)
    drill: bool = False
    scope_version: int = 0
    scope_hash: str = ""
    consignees: int = 0
    # seconds from initiation, for drills and for the record
    time_to_scope: float | None = None
    time_to_hold: float | None = None
    time_to_notify: float | None = None


class RecallNoticeRequest(BaseModel):
    """One consignee's notice: sent through the outbox (suppressed in a drill), then reminders
    until the consignee answers, then a person."""

    process_id: str  # <recall id>.notice-<customer code>
    recall_process_id: str
    recall_number: str
    consignee_code: str
    drill: bool = False


class RecallNoticeResult(BaseModel):
    process_id: str
    consignee_code: str
    status: str  # responded | reconciled | escalated | cancelled
    reminders: int = 0
    notified_at: datetime | None = None
    responded_at: datetime | None = None


# ---------------------------------------------------------------- external events
# `POST /api/v1/processes/{recall id}/events/{event}` with the consignee's code in the data; the
# API delivers it as the update "event" (schemas.supply.ProcessEvent) to that consignee's notice
# workflow `<recall id>.notice-<customer code>`.


class ConsigneeResponse(BaseModel):
    """event `consignee-response`: the consignee acknowledged, and says what it holds."""

    consignee_code: Annotated[str, Field(min_length=1, max_length=20)]
    acknowledged: bool = True
    quantity_on_hand: Annotated[Decimal | None, Field(ge=0, max_digits=14, decimal_places=4)] = None
    quantity_returned: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)] = Decimal(0)
    quantity_corrected: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)] = Decimal(
        0
    )
    note: Annotated[str, Field(max_length=2000)] = ""


class RecallReturnReceived(BaseModel):
    """event `return-received`: recalled goods from a consignee arrived at our dock."""

    consignee_code: Annotated[str, Field(min_length=1, max_length=20)]
    lot_number: Annotated[str, Field(min_length=1, max_length=60)]
    quantity: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=4)]
    received_on: date | None = None


RECALL_EVENTS = {
    "consignee-response": ConsigneeResponse,
    "return-received": RecallReturnReceived,
}
RECALL_EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "consignee-response": ("ra", "qa", "qa-manager"),
    "return-received": ("warehouse",),
}


def notice_process_id(recall_process_id: str, consignee_code: str) -> str:
    return f"{recall_process_id}.notice-{consignee_code}"
