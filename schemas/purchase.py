"""Payloads of the purchase process's activities (workflows/purchase.py, activities/purchase.py).

The workflow's own input, result and external events are in schemas/supply.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, model_validator

from schemas.supply import AdvanceShipNotice, GoodsReceipt, PurchaseRequest, SupplierConfirmation


class RegisterPurchaseInput(BaseModel):
    process_id: str
    run_id: str
    request: PurchaseRequest


class OrderedLine(BaseModel):
    line_no: int
    part_number: str
    revision: str
    quantity: Decimal
    uom: str


class RegisteredPurchase(BaseModel):
    number: str
    amount: Decimal
    currency: str
    supplier_code: str
    lines: list[OrderedLine]


class ApprovalRouteInput(BaseModel):
    process_id: str
    amount: Decimal


class ApprovalRoute(BaseModel):
    """The approver groups a purchase of this amount needs, in order (DoA matrix)."""

    groups: list[str]
    levels: list[str] = []  # what each level allows, to show the approver


class SetPurchaseStatusInput(BaseModel):
    process_id: str
    status: str  # approved | rejected | closed | cancelled
    actor: str = "system"
    reason: str = ""
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)
    approvers: list[str] = []


class SupplierCheckInput(BaseModel):
    process_id: str
    attempt: int
    on: date  # the workflow's date: rules are checked as of that day


class SupplierCheck(BaseModel):
    supplier_code: str
    refusal: str = ""  # the rule(s) that failed, or "" when the supplier may get this order
    # the refusal's wording (erp/supply_rules.py's `said(…)`s joined), None in older results
    refusal_wording: dict[str, Any] | None = None


class ChangeSupplierInput(BaseModel):
    process_id: str
    attempt: int
    supplier_code: str
    changed_by: str
    note: str = ""


class SupplierChange(BaseModel):
    """What `change_purchase_supplier` answers: why the order could not go to that supplier
    ('' when it did) and that problem's wording (None for a plain text). An older answer, in the
    histories, is the problem alone (a `str`): it reads as a `SupplierChange` without wording."""

    problem: str = ""
    problem_wording: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_answer(cls, data: Any) -> Any:
        return {"problem": data} if isinstance(data, str) else data


class IssuePurchaseOrderInput(BaseModel):
    process_id: str


class ConfirmPurchaseInput(BaseModel):
    process_id: str
    event_id: str
    sent_by: str
    confirmation: SupplierConfirmation


class RecordAsnInput(BaseModel):
    process_id: str
    event_id: str
    sent_by: str
    notice: AdvanceShipNotice


class ReceiveGoodsInput(BaseModel):
    process_id: str
    event_id: str
    sent_by: str
    receipt: GoodsReceipt
    received_on: date  # the workflow's date: on time is judged against it


class SamplingPlan(BaseModel):
    """ANSI/ASQ Z1.4 single sampling, normal inspection, general level II, AQL 1.0."""

    lot_size: int
    code_letter: str
    sample_size: int
    accept_number: int
    reject_number: int
    hundred_percent: bool = False
    basis: str

    def describe(self) -> str:
        return (
            f"inspect {self.sample_size} of {self.lot_size}; accept with at most "
            f"{self.accept_number} defective, reject with {self.reject_number} or more"
        )


class ReceivedLot(BaseModel):
    receipt_no: int = 0  # set by the workflow: the n-th receipt of this purchase
    lot_number: str
    part_number: str
    quantity: Decimal
    uom: str
    supplier_code: str
    supplier_lot: str
    expires_on: date | None
    on_time: bool
    po_status: str
    plan: SamplingPlan


class RecordInspectionInput(BaseModel):
    process_id: str
    lot_number: str
    inspector: str
    chosen_outcome: str  # pass | fail, as the inspector chose
    sample_size: int
    defects: int
    measurements: str = ""
    reason: str = ""
    plan: SamplingPlan


class InspectionVerdict(BaseModel):
    outcome: str  # pass | fail (a fail whenever the defects exceed the accept number)
    reason: str = ""
    # the reason's wording when it is one of ours (the sample problem; workflows.wording),
    # which the workflow takes back with said_again; None for the inspector's own words
    reason_wording: dict[str, Any] | None = None


class SetLotStatusInput(BaseModel):
    process_id: str
    lot_number: str
    status: str  # RELEASED | ON_HOLD
    reason: str
    actor: str
    step: str  # names the write: one status change per step
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)
