"""Change control: the request, its proposed actions, the impact list, and activity payloads."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from schemas.wording import said


class ChangeType(StrEnum):
    DESIGN = "design"
    PROCESS = "process"
    SUPPLIER = "supplier"
    LABELING = "labeling"
    DOCUMENT = "document"
    SOFTWARE = "software"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ActionKind(StrEnum):
    ITEM_REVISION = "item_revision"  # a new revision of a part becomes effective
    DOCUMENT_VERSION = "document_version"  # a new version of a document becomes effective
    ASL_STATUS = "asl_status"  # a supplier × part entry changes status
    SUPPLIER_STATUS = "supplier_status"  # a supplier is disqualified or reinstated


ASL_STATUSES = ("approved", "conditional", "disqualified")
SUPPLIER_STATUSES = ("active", "disqualified")
FUNCTIONS = {  # assessment function → the group that assesses
    "engineering": "engineering",
    "qa": "qa",
    "ra": "ra",
    "production": "production",
    "supply_chain": "buyer",
}


class ProposedAction(BaseModel):
    """One thing the change does when it takes effect."""

    kind: ActionKind
    target: str = Field(
        min_length=1, max_length=40, description="part number, document number or supplier code"
    )
    part_number: str | None = Field(default=None, max_length=40, description="for asl_status")
    new_revision: str | None = Field(default=None, max_length=10, pattern=r"^[A-Z0-9.]+$")
    new_status: str | None = None
    changes: dict[str, str] = Field(default_factory=dict, max_length=10)
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _complete(self) -> ProposedAction:
        if self.kind in (ActionKind.ITEM_REVISION, ActionKind.DOCUMENT_VERSION):
            if not self.new_revision:
                raise ValueError(said("%(kind)s needs new_revision", kind=self.kind.value))
        elif self.kind is ActionKind.ASL_STATUS:
            if not self.part_number or self.new_status not in ASL_STATUSES:
                raise ValueError(
                    said(
                        "asl_status needs part_number and new_status in %(statuses)s",
                        statuses=ASL_STATUSES,
                    )
                )
        elif self.new_status not in SUPPLIER_STATUSES:
            raise ValueError(
                said("supplier_status needs new_status in %(statuses)s", statuses=SUPPLIER_STATUSES)
            )
        return self

    def describe(self) -> str:
        if self.kind is ActionKind.ITEM_REVISION:
            return f"part {self.target}: revision {self.new_revision} becomes effective"
        if self.kind is ActionKind.DOCUMENT_VERSION:
            return f"document {self.target}: version {self.new_revision} becomes effective"
        if self.kind is ActionKind.ASL_STATUS:
            return f"supplier {self.target} for part {self.part_number}: {self.new_status}"
        return f"supplier {self.target}: {self.new_status}"


class ChangeContent(BaseModel):
    """What a requester asks for; every revision of it is kept."""

    change_type: ChangeType
    title: str = Field(min_length=5, max_length=300)
    reason: str = Field(min_length=5, max_length=5000)
    risk: Risk
    affected_items: list[str] = Field(default_factory=list, max_length=50)
    affected_documents: list[str] = Field(default_factory=list, max_length=50)
    affected_suppliers: list[str] = Field(default_factory=list, max_length=50)
    actions: list[ProposedAction] = Field(min_length=1, max_length=30)
    requested_effective_on: date

    def part_numbers(self) -> list[str]:
        found = list(self.affected_items)
        for action in self.actions:
            if action.kind is ActionKind.ITEM_REVISION:
                found.append(action.target)
            if action.kind is ActionKind.ASL_STATUS and action.part_number:
                found.append(action.part_number)
        return sorted(set(found))

    def document_numbers(self) -> list[str]:
        docs = list(self.affected_documents)
        docs += [a.target for a in self.actions if a.kind is ActionKind.DOCUMENT_VERSION]
        return sorted(set(docs))

    def supplier_codes(self) -> list[str]:
        codes = list(self.affected_suppliers)
        codes += [
            a.target
            for a in self.actions
            if a.kind in (ActionKind.ASL_STATUS, ActionKind.SUPPLIER_STATUS)
        ]
        return sorted(set(codes))


class ChangeRequestInput(BaseModel):
    process_id: str
    requester: str
    content: ChangeContent


class WithdrawRequest(BaseModel):
    """The requester (or an administrator) withdraws a change before the CCB has approved it."""

    by: str
    reason: str


class ChangeRequestResult(BaseModel):
    process_id: str
    number: str
    status: str
    revisions: int


class RegisterChangeInput(BaseModel):
    process_id: str
    run_id: str
    requester: str
    content: ChangeContent


class RegisterChangeResult(BaseModel):
    number: str


class SetChangeStatusInput(BaseModel):
    process_id: str
    seq: int  # the workflow's count of status changes: the idempotency key of this one
    status: str
    reason: str = ""
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)


class RecordTriageInput(BaseModel):
    process_id: str
    attempt: int
    revision: int
    classification: str
    required_assessments: list[str]
    implementer: str
    triaged_by: str


class ImpactLine(BaseModel):
    category: str  # open_po, lot_in_stock, work_order, document, where_used, asl
    reference: str
    detail: str


class ImpactList(BaseModel):
    lines: list[ImpactLine]
    counts: dict[str, int]

    def summary(self) -> str:
        if not self.lines:
            return "nothing in the ERP references the affected items, documents or suppliers"
        return ", ".join(
            f"{n} {category.replace('_', ' ')}" for category, n in sorted(self.counts.items())
        )


class ComputeImpactInput(BaseModel):
    process_id: str
    revision: int


class RecordAssessmentInput(BaseModel):
    process_id: str
    revision: int
    function: str
    outcome: str
    assessment: str
    assessed_by: str
    impact: ImpactList


class ReviseChangeInput(BaseModel):
    process_id: str
    revision: int  # the new revision number
    content: ChangeContent
    revised_by: str
    why: str


class ApplyChangeInput(BaseModel):
    process_id: str
    revision: int


class ApplyChangeResult(BaseModel):
    applied: list[str]
