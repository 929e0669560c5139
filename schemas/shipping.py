"""Shipment activities: what each takes and returns."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel

from schemas.production import LotPick, Shortage, quantity_text
from schemas.supply import ShipmentLineRequest, ShipmentRequest


class RegisterShipmentInput(BaseModel):
    process_id: str
    run_id: str
    request: ShipmentRequest


class RegisterShipmentResult(BaseModel):
    number: str
    refusal: str = ""  # why nothing can be shipped (unknown customer or part, broken serials)
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
        return "; ".join(s.describe() for s in self.shortages)


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
