"""Activity payloads of the procure-to-deliver parent (a customer order)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from schemas.supply import ProcureToDeliverRequest, PurchaseLine
from schemas.wording import Said, said


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
    # the why's wording (`workflows.wording.wording`: the rules' `said(…)`s joined), None in
    # older plans
    why_wording: dict[str, Any] | None = None


class OrderPlan(BaseModel):
    """What a customer order needs now: finished stock, what to make, what to buy, and what
    cannot be bought (no approved supplier)."""

    finished_available: Decimal
    to_make: Decimal
    purchases: list[PlannedPurchase] = []
    unbuyable: list[Shortage] = []

    def summary(self) -> Said:
        """The plan in a line, a `said(…)` (the purchases, codes and quantities, as a value)."""
        buys = "; ".join(
            f"{p.supplier_code}: "
            + ", ".join(f"{line.quantity.normalize():f} {line.part_number}" for line in p.lines)
            for p in self.purchases
        )
        stock, make = f"{self.finished_available.normalize():f}", f"{self.to_make.normalize():f}"
        if buys:
            return said(
                "%(stock)s in stock, make %(make)s; buy %(buys)s", stock=stock, make=make, buys=buys
            )
        return said("%(stock)s in stock, make %(make)s; nothing to buy", stock=stock, make=make)


class SetOrderStatusInput(BaseModel):
    process_id: str
    seq: int
    status: str
    reason: str = ""
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)
    children: list[str] = []  # child process ids linked at this step
