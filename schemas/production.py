"""Work order activities: what each takes and returns (the workflow's contract with the ERP)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from schemas.supply import WorkOrderRequest


def quantity_text(quantity: Decimal) -> str:
    """A quantity as people write it: 1.55, 10, 0.5 (no exponent, no trailing zeros)."""
    return f"{quantity.normalize():f}"


class LotPick(BaseModel):
    """So much of a lot, given out to a work order or a shipment (first expiry first out)."""

    part_number: str
    lot_id: int
    lot_number: str
    quantity: Decimal
    uom: str = "ea"
    expires_on: date | None = None

    def describe(self) -> str:
        expiry = f", expires {self.expires_on.isoformat()}" if self.expires_on else ""
        return f"{quantity_text(self.quantity)} {self.uom} of lot {self.lot_number}{expiry}"


class Shortage(BaseModel):
    part_number: str
    required: Decimal
    available: Decimal
    uom: str = "ea"

    def describe(self) -> str:
        return (
            f"{self.part_number} needs {quantity_text(self.required)} {self.uom}, "
            f"{quantity_text(self.available)} available"
        )


class RegisterWorkOrderInput(BaseModel):
    process_id: str
    run_id: str
    request: WorkOrderRequest


class RegisterWorkOrderResult(BaseModel):
    number: str
    refusal: str = ""  # why no work order can be made (no effective revision, no BOM...)
    # the refusal's wording (workflows.wording.wording), None in older results or without one
    refusal_wording: dict[str, Any] | None = None
    part_number: str
    revision: str = ""
    description: str = ""
    serial_controlled: bool = False


class AllocateMaterialsInput(BaseModel):
    process_id: str
    attempt: int


class Allocation(BaseModel):
    picks: list[LotPick] = []
    shortages: list[Shortage] = []

    def shortage_text(self) -> str:
        return "; ".join(s.describe() for s in self.shortages)


class RecordProductionInput(BaseModel):
    process_id: str
    attempt: int
    produced_quantity: Decimal
    scrap_quantity: Decimal = Decimal(0)
    notes: str = ""
    produced_by: str
    allocation: list[LotPick]  # the lots production was given: issued first


class ProductionRecord(BaseModel):
    """What record_production wrote, or `problem`: why nothing was written (then the workflow
    asks production again)."""

    problem: str = ""
    # the problem's wording (workflows.wording.wording), None in older records or without one
    problem_wording: dict[str, Any] | None = None
    lot_number: str = ""
    quantity: Decimal = Decimal(0)
    scrap_quantity: Decimal = Decimal(0)
    issued: list[LotPick] = []
    serial_count: int = 0
    serial_first: str | None = None
    serial_last: str | None = None


class RecordInspectionInput(BaseModel):
    process_id: str
    lot_number: str
    outcome: str  # pass | fail
    inspector: str
    sample_size: int = 0
    defects: int = 0
    results: str = ""
    reason: str = ""


class DeviceHistoryInput(BaseModel):
    process_id: str


class ComponentUse(BaseModel):
    part_number: str
    lot_number: str
    quantity: Decimal
    uom: str
    supplier_lot: str | None = None
    expires_on: date | None = None


class InspectionSummary(BaseModel):
    kind: str
    outcome: str
    inspector: str
    sample_size: int
    defects: int
    note: str = ""


class DeviceHistoryRecord(BaseModel):
    """The device history record of one work order (21 CFR 820.184): what was made, from what,
    how, checked by whom, and which serials."""

    work_order: str
    part_number: str
    revision: str
    lot_number: str
    quantity: Decimal
    scrap_quantity: Decimal
    manufactured_on: date | None
    expires_on: date | None
    components: list[ComponentUse]
    inspections: list[InspectionSummary]
    routing: list[str]
    serial_count: int = 0
    serial_first: str | None = None
    serial_last: str | None = None

    def context(self) -> dict[str, str]:
        """The record as the review task shows it."""
        shown: dict[str, str] = {
            "Work order": self.work_order,
            "Device": f"{self.part_number} revision {self.revision}",
            "Lot": self.lot_number,
            "Produced": f"{quantity_text(self.quantity)} (scrap {quantity_text(self.scrap_quantity)})",
            "Manufactured": self.manufactured_on.isoformat() if self.manufactured_on else "",
            "Expires": self.expires_on.isoformat() if self.expires_on else "no expiry",
        }
        if self.serial_count:
            shown["Serials"] = f"{self.serial_first} … {self.serial_last} ({self.serial_count})"
        for n, c in enumerate(self.components, start=1):
            supplier = f", supplier lot {c.supplier_lot}" if c.supplier_lot else ""
            shown[f"Component {n}"] = (
                f"{c.part_number}: {quantity_text(c.quantity)} {c.uom} of lot {c.lot_number}"
                f"{supplier}"
            )
        for n, i in enumerate(self.inspections, start=1):
            shown[f"Inspection {n}"] = (
                f"{i.kind} {i.outcome} by {i.inspector}, {i.defects} defect(s) in "
                f"{i.sample_size}" + (f": {i.note}" if i.note else "")
            )
        for n, step in enumerate(self.routing, start=1):
            shown[f"Routing {n}"] = step
        return shown


class FinishLotInput(BaseModel):
    """Release the finished lot, or hold it as nonconforming; either way the WO is completed."""

    process_id: str
    lot_number: str
    decided_by: str
    reason: str
    source: str = ""  # the step that decided: final-inspection, dhr-review, qa-release
    # the NC raised for a nonconforming lot: it holds the lot, the work order only completes
    nonconformance: str | None = None
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)


class CancelWorkOrderInput(BaseModel):
    process_id: str
    reason: str
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)
