"""Payloads of the nonconformance activities: registration, containment, extension by genealogy,
investigation, the MRB's dispositions and their application, the recall scope and the CAPA link.

What starts an NC and what it returns (NonconformanceRequest, NonconformanceResult) live in
schemas/quality.py; these are what the workflow and its activities pass each other.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from schemas.production import quantity_text
from schemas.quality import Disposition, NonconformanceRequest

# lot statuses containment can hold; ON_HOLD stays as it is; any other cannot be held
HOLDABLE = ("QUARANTINE", "RELEASED")


class LotSummary(BaseModel):
    """A lot as an NC shows it to people: what it is, how much is on hand, its status."""

    lot_number: str
    part_number: str
    quantity: Decimal  # on hand now
    uom: str
    status: str
    supplier_code: str | None = None  # None: made in house (or stock of unknown origin)
    origin: str = "stock"  # receipt | production | stock

    def describe(self) -> str:
        """'TB-0150, 400 m, ON_HOLD' as a task shows it."""
        return f"{self.part_number}, {quantity_text(self.quantity)} {self.uom}, {self.status}"


class NcLotState(LotSummary):
    """A lot of the NC: its role, its status when contained, whether it is held and why not."""

    role: str  # affected | extended
    status_before: str
    held: bool
    note: str = ""


class RegisterNcInput(BaseModel):
    process_id: str
    run_id: str
    request: NonconformanceRequest


class RegisteredNc(BaseModel):
    number: str
    supplier_code: str | None
    due_on: date


class ContainLotsInput(BaseModel):
    """Hold these lots for the NC, in one transaction; `step` keys the write (contain, extend)."""

    process_id: str
    step: str
    lot_numbers: list[str]
    role: str  # affected | extended
    actor: str


class Containment(BaseModel):
    lots: list[NcLotState]


class NcInput(BaseModel):
    process_id: str


class ExtensionCandidates(BaseModel):
    """Lots made from the same component lots as the affected lots, not yet in the NC."""

    lots: list[LotSummary]
    component_lots: list[str]  # the affected lots' component lots the search started from


class SetNcStatusInput(BaseModel):
    process_id: str
    seq: int  # the n-th status change of this NC (keys the write)
    status: str
    actor: str = "system"
    reason: str = ""
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)


class RecordInvestigationInput(BaseModel):
    process_id: str
    findings: str
    root_cause_summary: str
    investigated_by: str


class RecordDispositionsInput(BaseModel):
    """The MRB's accepted dispositions (after the use-as-is signatures, when any were needed)."""

    process_id: str
    round: int
    dispositions: dict[str, Disposition]  # lot number → disposition
    justification: str
    decided_by: str  # the MRB member who signed
    approved_by: list[str] = []  # QA and engineering, for a use-as-is


class DispositionAction(StrEnum):
    """What apply_disposition does to one lot."""

    USE_AS_IS = "use_as_is"
    SCRAP = "scrap"
    RETURN_TO_SUPPLIER = "return_to_supplier"
    REWORK = "rework"  # ON_HOLD → QUARANTINE for the rework
    RELEASE_AFTER_REWORK = "release_after_rework"  # QUARANTINE → RELEASED, QA signed


class ApplyDispositionInput(BaseModel):
    process_id: str
    lot_number: str
    action: DispositionAction
    actor: str
    reason: str = ""


class AppliedDisposition(BaseModel):
    lot_number: str
    status: str  # the lot's status afterwards
    moved: Decimal = Decimal(0)  # scrapped or returned
    scar_number: str | None = None
    note: str = ""


class RecordReinspectionInput(BaseModel):
    process_id: str
    lot_number: str
    outcome: str  # pass | fail
    inspector: str
    rework: str  # what production did
    reworked_by: str
    reason: str = ""
    results: str = ""


class ScopeLot(BaseModel):
    lot_number: str
    part_number: str
    status: str
    quantity: Decimal  # on hand now


class ScopeShipment(BaseModel):
    shipment: str
    lot_number: str
    part_number: str
    quantity: Decimal
    consignee_code: str
    consignee_name: str
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    serials: list[str] = []


class ScopeConsignee(BaseModel):
    code: str
    name: str
    quantity: Decimal
    shipments: list[str]


class RecallScope(BaseModel):
    """What a recall starts from when an NC reached product already shipped: the suspect lots,
    every lot made from them (forward through the genealogy), where those went and how much."""

    source: str = "nonconformance"
    nc_number: str
    nc_process_id: str
    reason: str
    suspect_lots: list[str]
    lots: list[ScopeLot]
    shipments: list[ScopeShipment]
    consignees: list[ScopeConsignee]

    @property
    def shipped_quantity(self) -> Decimal:
        return sum((s.quantity for s in self.shipments), Decimal(0))

    @property
    def serial_count(self) -> int:
        return sum(len(s.serials) for s in self.shipments)


class RecordRecallDecisionInput(BaseModel):
    process_id: str
    escalate: bool
    scope: RecallScope
    decided_by: str
    reason: str = ""


class RecordCapaDecisionInput(BaseModel):
    process_id: str
    attempt: int
    capa_needed: bool
    decided_by: str
    owner: str = ""
    problem: str = ""
    reason: str = ""


class LinkCapaInput(BaseModel):
    process_id: str
    capa_process_id: str
    linked_by: str
