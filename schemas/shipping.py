"""Shipment activities: what each takes and returns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from schemas.production import LotPick, Shortage, quantity_text
from schemas.supply import ShipmentLineRequest, ShipmentRequest
from schemas.wording import Said, said


def shortage_said(shortage: Shortage) -> Said:
    """`Shortage.describe`'s text with its template: "MT-0730 needs 5 ea, 2 available"."""
    return said(
        "%(part)s needs %(required)s %(uom)s, %(available)s available",
        part=shortage.part_number,
        required=quantity_text(shortage.required),
        uom=shortage.uom,
        available=quantity_text(shortage.available),
    )


def joined_said(parts: Sequence[str]) -> str:
    """Texts as one, `a; b; c` (`a；b；c` in Chinese), each keeping its template (as
    `api.errors.joined` does for the API's problems)."""
    if not parts:
        return ""
    text = parts[-1]
    for part in reversed(parts[:-1]):
        text = said("%(problem)s; %(more)s", problem=part, more=text)
    return text


def shortages_said(shortages: Sequence[Shortage]) -> str:
    """What is short, one part after another, translatable: the text `shortage_text` gives."""
    return joined_said([shortage_said(s) for s in shortages])


class RegisterShipmentInput(BaseModel):
    process_id: str
    run_id: str
    request: ShipmentRequest


class RegisterShipmentResult(BaseModel):
    number: str
    refusal: str = ""  # why nothing can be shipped (unknown customer or part, broken serials)
    # the refusal's wording (workflows.wording.wording), None in older results or without one
    refusal_wording: dict[str, Any] | None = None
    customer_code: str
    customer_name: str = ""
    min_shelf_life_days: int = 0


class PickShipmentInput(BaseModel):
    process_id: str
    attempt: int
    lines: list[ShipmentLineRequest]


class Picking(BaseModel):
    picks: list[LotPick] = []
    shortages: list[Shortage] = []

    def shortage_text(self) -> str:
        """What is short, as a `Said` (its English "; "-joined as before)."""
        return shortages_said(self.shortages)


class ShipGoodsInput(BaseModel):
    process_id: str
    attempt: int
    lines: list[ShipmentLineRequest]
    picks: list[LotPick]  # what the warehouse was told to pick: shipped first
    carrier: str = ""
    tracking: str = ""
    shipped_by: str
    expected_transit_days: int


class ShippedLine(BaseModel):
    part_number: str
    lot_number: str
    quantity: Decimal
    expires_on: date | None = None
    serials: list[str] = []

    def describe(self) -> str:
        serials = f" (serials {', '.join(self.serials)})" if self.serials else ""
        return (
            f"{self.part_number}: {quantity_text(self.quantity)} of lot {self.lot_number}{serials}"
        )


class ShipmentRecord(BaseModel):
    """What ship_goods wrote, or `problem`: why nothing was shipped (then the warehouse is asked
    again)."""

    problem: str = ""
    # the problem's wording (workflows.wording.wording), None in older records or without one
    problem_wording: dict[str, Any] | None = None
    lines: list[ShippedLine] = []
    shipped_at: datetime | None = None
    expected_delivery_on: date | None = None


def quantities_by_part(lines: list[ShipmentLineRequest]) -> dict[str, Decimal]:
    """The quantity asked of each part, lines of the same part added up, in the order asked."""
    wanted: dict[str, Decimal] = {}
    for line in lines:
        wanted[line.part_number] = wanted.get(line.part_number, Decimal(0)) + line.quantity
    return wanted


class RecordDeliveryInput(BaseModel):
    process_id: str
    event_id: str  # the external event's id, or task-<id> when a person confirmed it
    delivered_on: date
    received_by: str = ""
    note: str = ""
    recorded_by: str  # who sent the event or decided the task


class CancelShipmentInput(BaseModel):
    process_id: str
    reason: str
    reason_wording: dict[str, Any] | None = None  # the reason's wording, None in older inputs
