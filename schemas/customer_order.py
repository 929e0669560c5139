"""Activity payloads of the procure-to-deliver parent (a customer order)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from schemas.supply import ProcureToDeliverRequest, PurchaseLine


class RegisterOrderInput(BaseModel):
    process_id: str
    run_id: str
    request: ProcureToDeliverRequest


class RegisterOrderResult(BaseModel):
    number: str


class PlanOrderInput(BaseModel):
    process_id: str
    attempt: int  # each planning round is recorded once
    on: date  # the workflow's date: shelf life and certificates are judged on it


class PlannedPurchase(BaseModel):
    supplier_code: str
    lines: list[PurchaseLine]


class Shortage(BaseModel):
    part_number: str
    needed: Decimal
    available: Decimal
    why: str  # e.g. "no approved supplier: SUP-0005 is disqualified"


class OrderPlan(BaseModel):
    """What a customer order needs now: finished stock, what to make, what to buy, and what
    cannot be bought (no approved supplier)."""

    finished_available: Decimal
    to_make: Decimal
    purchases: list[PlannedPurchase] = []
    unbuyable: list[Shortage] = []

    def summary(self) -> str:
        buys = "; ".join(
            f"{p.supplier_code}: "
            + ", ".join(f"{line.quantity.normalize():f} {line.part_number}" for line in p.lines)
            for p in self.purchases
        )
        return (
            f"{self.finished_available.normalize():f} in stock, make "
            f"{self.to_make.normalize():f}" + (f"; buy {buys}" if buys else "; nothing to buy")
        )


class SetOrderStatusInput(BaseModel):
    process_id: str
    seq: int
    status: str
    reason: str = ""
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)
    children: list[str] = []  # child process ids linked at this step
