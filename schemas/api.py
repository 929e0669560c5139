"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from schemas.human_task import DecisionRule


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class Me(BaseModel):
    username: str
    full_name: str
    groups: list[str]
    via: str
    stands_in_for: list[str] = []


class SignatureOut(BaseModel):
    id: int
    signer: str
    printed_name: str
    meaning: str
    signed_at: datetime
    record_hash: str


class DecisionOut(BaseModel):
    seq: int
    decided_by: str
    on_behalf_of: str | None
    outcome: str
    fields: dict[str, Any]
    comment: str
    stage: int
    decided_at: datetime
    signature: SignatureOut | None = None


class TaskOut(BaseModel):
    id: int
    title: str
    description: str
    # the English templates of title and description and their values (workflows.wording), for
    # a reader in another language; None for a task whose workflow did not give them
    title_template: str | None = None
    title_values: dict[str, Any] | None = None
    description_template: str | None = None
    description_values: dict[str, Any] | None = None
    kind: str
    process_id: str
    process_kind: str
    business_key: str
    step: str
    status: str
    outcome: str | None
    rule: str
    k: int
    stage: int
    stage_count: int
    level: int
    due_at: datetime | None
    overdue: bool
    candidate_groups: list[str]
    candidate_users: list[str]
    initiator: str | None
    claimed_by: str | None
    created_at: datetime
    closed_at: datetime | None
    outcomes: list[dict[str, Any]]
    fields: list[dict[str, Any]]
    context: dict[str, str]
    context_wording: dict[str, Any] = {}  # a quoted refusal's wording, by key (TaskSpec)


class TaskDetail(TaskOut):
    decisions: list[DecisionOut]
    history: list[AuditOut]


class TaskList(BaseModel):
    items: list[TaskOut]
    count: int


class DecisionIn(BaseModel):
    outcome: str = Field(min_length=1, max_length=40)
    fields: dict[str, str] = Field(default_factory=dict, max_length=50)
    comment: str = Field(default="", max_length=5000)
    password: str | None = Field(default=None, max_length=200, description="re-entered to sign")


class DecisionOutcome(BaseModel):
    task_id: int
    outcome: str
    task_status: str
    final_outcome: str | None
    message: str
    message_template: str | None = None  # workflows.wording.answered; None in older answers
    message_values: dict[str, str | int | float] | None = None
    signature: SignatureOut | None = None


class AuditOut(BaseModel):
    id: int
    recorded_at: datetime
    actor: str
    on_behalf_of: str | None
    action: str
    entity_type: str
    entity_id: str
    outcome: str
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    workflow_id: str | None
    activity: str | None
    source: str
    row_hash: str


class AuditList(BaseModel):
    items: list[AuditOut]
    next_before_id: int | None


class SignatureProblemOut(BaseModel):
    signature_id: int
    record_type: str
    record_id: str
    problem: str


class AuditVerifyOut(BaseModel):
    """`ok` when the chain and every signature check out; `problem` and `first_broken_id` are
    the chain's, `signature_problems` name each signature that no longer fits what it signed."""

    ok: bool
    rows_checked: int
    first_broken_id: int | None
    problem: str
    head_hash: str
    chain_ok: bool = True
    sealed_id: int | None = None
    keyed: bool = False  # False: LOTLINE_AUDIT_KEY is not set (the built-in development key)
    signatures_checked: int = 0
    signature_problems: list[SignatureProblemOut] = []


class ApprovalStart(BaseModel):
    """Start a general approval request."""

    external_id: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=5000)
    approver_groups: list[str] = Field(min_length=1, max_length=10)
    approver_users: list[str] = Field(default_factory=list, max_length=20)
    rule: DecisionRule = DecisionRule.ANY
    k: int = Field(default=1, ge=1, le=20)
    sla_hours: float = Field(default=48, gt=0, le=24 * 365)
    reminder_hours: float | None = Field(default=8, gt=0, le=24 * 365)
    escalation_chain: list[str] = Field(default_factory=list, max_length=5)
    signs: bool = True
    context: dict[str, str] = Field(default_factory=dict, max_length=20)


class ProcessOut(BaseModel):
    id: str
    kind: str
    title: str
    # the title's template and values ({"template", "values"}), None for older processes
    title_wording: dict[str, Any] | None = None
    business_key: str
    initiator: str | None
    status: str
    current_step: str
    outcome: str | None
    started_at: datetime | None
    closed_at: datetime | None


class ProcessDetail(ProcessOut):
    open_tasks: list[TaskOut]
    timeline: list[AuditOut]
    signatures: list[SignatureOut] = []


class ProcessList(BaseModel):
    items: list[ProcessOut]
    count: int


class CancelIn(BaseModel):
    reason: str = Field(min_length=3, max_length=1000)


class DelegationIn(BaseModel):
    delegate: str = Field(min_length=1, max_length=64)
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(default="", max_length=300)
    delegator: str | None = Field(default=None, max_length=64, description="admins only")


class DelegationOut(BaseModel):
    id: int
    delegator: str
    delegate: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    revoked_at: datetime | None
    active: bool


TaskDetail.model_rebuild()


class ChangeStart(BaseModel):
    """Start a change request (the body of POST /api/v1/processes/change-control)."""

    external_id: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    change_type: str
    title: str
    reason: str
    risk: str
    affected_items: list[str] = Field(default_factory=list)
    affected_documents: list[str] = Field(default_factory=list)
    affected_suppliers: list[str] = Field(default_factory=list)
    actions: list[dict[str, Any]] = Field(default_factory=list)
    requested_effective_on: str


class ChangeOut(BaseModel):
    id: str
    number: str
    change_type: str
    title: str
    reason: str
    risk: str
    requester: str
    status: str
    classification: str | None
    required_assessments: list[str]
    revision: int
    implementer: str | None
    requested_effective_on: date
    effective_at: datetime | None
    created_at: datetime
    closed_at: datetime | None


class ChangeRevisionOut(BaseModel):
    revision: int
    content: dict[str, Any]
    revised_by: str
    why: str
    created_at: datetime


class ChangeAssessmentOut(BaseModel):
    revision: int
    function: str
    outcome: str
    assessment: str
    assessed_by: str
    created_at: datetime


class RevisionSideBySide(BaseModel):
    """An action's record before and after (the effective revision now vs the proposed one)."""

    action: str
    record: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ChangeDetail(ChangeOut):
    revisions: list[ChangeRevisionOut]
    assessments: list[ChangeAssessmentOut]
    impact: dict[str, Any]
    side_by_side: list[RevisionSideBySide]
    open_tasks: list[TaskOut]
    timeline: list[AuditOut]
    signatures: list[SignatureOut]


class ChangeList(BaseModel):
    items: list[ChangeOut]
    count: int


# ---------------------------------------------------------------- procure-to-deliver


class SupplyProcessOut(BaseModel):
    """A purchase, work order, shipment or customer order just started (or started before)."""

    id: str
    kind: str
    number: str | None  # PO-, WO-, SH- or CO-YYYY-NNNN once the process registered itself
    status: str  # running, completed, ... or "starting" while it registers
    current_step: str
    initiator: str | None
    started_at: datetime | None
    detail: str = ""


class LotOut(BaseModel):
    lot_number: str
    part_number: str
    revision: str
    description: str
    status: str
    quantity: Decimal  # on hand
    uom: str
    supplier_code: str | None
    supplier_lot: str | None
    manufactured_on: date | None
    expires_on: date | None
    hold_reason: str
    origin: str  # receipt | production | stock
    created_at: datetime


class LotList(BaseModel):
    items: list[LotOut]
    count: int


class LotStatusChangeOut(BaseModel):
    from_status: str | None
    to_status: str
    reason: str
    changed_by: str
    process_id: str | None
    changed_at: datetime


class MovementOut(BaseModel):
    kind: str
    quantity: Decimal
    reference: str
    process_id: str | None
    actor: str
    created_at: datetime


class ReceiptOut(BaseModel):
    purchase_order: str
    line_no: int
    quantity: Decimal
    received_by: str
    received_at: datetime
    on_time: bool
    asn_reference: str
    gs1: str
    process_id: str | None


class InspectionOut(BaseModel):
    kind: str
    sample_size: int
    accept_number: int
    defects: int
    results: dict[str, Any]
    outcome: str
    inspector: str
    inspected_at: datetime
    process_id: str | None


class LotDetail(LotOut):
    serial: str | None = None  # when the lot was looked up by a serial's UDI
    purchase_order: str | None
    work_order: str | None
    status_history: list[LotStatusChangeOut]
    movements: list[MovementOut]
    receipt: ReceiptOut | None
    inspections: list[InspectionOut]
    serials: int


class SupplierScorecardOut(BaseModel):
    receipts: int
    on_time_receipts: int
    on_time_pct: float | None  # None before the first receipt
    inspections: int
    accepted_inspections: int
    acceptance_pct: float | None
    scars: int
    updated_at: datetime | None


class SupplierOut(BaseModel):
    code: str
    name: str
    country: str
    status: str
    on_time_pct: float | None
    acceptance_pct: float | None


class SupplierList(BaseModel):
    items: list[SupplierOut]
    count: int


class CertificateOut(BaseModel):
    kind: str
    number: str
    expires_on: date
    expired: bool


class AslEntryOut(BaseModel):
    part_number: str
    status: str
    since_on: date
    note: str


class SupplierDetail(SupplierOut):
    scorecard: SupplierScorecardOut
    certificates: list[CertificateOut]
    asl: list[AslEntryOut]


class CustomerOut(BaseModel):
    code: str
    name: str
    country: str
    email: str
    min_shelf_life_days: int


class CustomerList(BaseModel):
    items: list[CustomerOut]
    count: int


# ---------------------------------------------------------------- nonconformance and CAPA


class QualityProcessOut(SupplyProcessOut):
    """A nonconformance or CAPA just started (or started before): its NC- or CAPA-YYYY-NNNN
    number once the process registered itself, else status "starting"."""


class AgingBucketOut(BaseModel):
    key: str  # the `age` filter value: 0-7, 8-30, 31-90, over-90
    label: str
    count: int  # open nonconformances this old (days since reported)


class NonconformanceOut(BaseModel):
    id: str  # process id
    number: str  # NC-YYYY-NNNN
    title: str
    source: str
    severity: str
    status: str  # the NC's step: containment, investigation, ..., closed, cancelled
    open: bool
    part_number: str | None
    quantity: Decimal | None
    supplier_code: str | None
    supplier_name: str | None
    reported_by: str
    origin_process_id: str | None
    created_at: datetime
    due_on: date | None
    closed_at: datetime | None
    days_open: int  # to today, or to the day it closed
    aging: str | None  # the aging bucket of an open NC
    overdue: bool  # open and past due_on
    lot_count: int
    capa_process_id: str | None
    recall_requested: bool


class NonconformanceList(BaseModel):
    items: list[NonconformanceOut]
    count: int
    aging: list[AgingBucketOut]  # the open NCs the filters select, by days open


class NcLotOut(BaseModel):
    """A lot the NC affects (or that containment extended to by genealogy) and its disposition."""

    lot_number: str
    part_number: str
    role: str  # affected | extended
    status: str  # the lot's status now
    status_before: str  # when it was contained
    held: bool  # False: it could not be held (e.g. already shipped)
    hold_reason: str
    quantity: Decimal  # on hand now
    uom: str
    supplier_code: str | None
    note: str
    disposition: str | None  # use_as_is | rework | return_to_supplier | scrap
    justification: str
    decided_by: str | None
    applied_at: datetime | None


class ScarOut(BaseModel):
    number: str
    supplier_code: str
    supplier_name: str
    lot_number: str | None
    description: str
    status: str
    due_on: date | None
    opened_by: str
    created_at: datetime
    closed_at: datetime | None


class CapaLinkOut(BaseModel):
    id: str
    number: str | None
    title: str
    status: str


class NonconformanceDetail(NonconformanceOut):
    description: str
    evidence: str
    investigation: str
    lots: list[NcLotOut]
    scars: list[ScarOut]
    capa: CapaLinkOut | None
    recall_scope: dict[str, Any]  # what a recall needs: shipped lots, consignees (when requested)
    process_status: str
    current_step: str
    open_tasks: list[TaskOut]
    timeline: list[AuditOut]
    signatures: list[SignatureOut]


class CapaOut(BaseModel):
    id: str  # process id
    number: str  # CAPA-YYYY-NNNN
    title: str
    source: str
    owner: str
    status: str  # root_cause, ..., closed, cancelled
    open: bool
    nc_process_id: str | None
    nc_number: str | None
    plan_round: int
    effectiveness_wait_days: int
    effectiveness_due_on: date | None
    requested_by: str
    created_at: datetime
    closed_at: datetime | None
    days_open: int
    open_actions: int  # of the current plan round
    overdue_actions: int


class CapaList(BaseModel):
    items: list[CapaOut]
    count: int


class CapaActionOut(BaseModel):
    plan_round: int
    seq: int
    kind: str  # corrective | preventive
    description: str
    owner: str
    due_on: date
    status: str
    done: bool
    overdue: bool  # not done and past its due date
    evidence: str
    completed_by: str | None
    completed_at: datetime | None
    change_process_id: str | None  # the change request the action waits for
    capa_id: str | None = None  # on the action board: whose action it is
    capa_number: str | None = None
    capa_title: str | None = None


class CapaActionList(BaseModel):
    items: list[CapaActionOut]
    count: int


class EffectivenessCheckOut(BaseModel):
    plan_round: int
    verifier: str
    outcome: str  # effective | not_effective
    evidence: str
    reason: str = ""  # why a round was not effective
    checked_at: datetime


class CapaPlanRoundOut(BaseModel):
    plan_round: int
    current: bool
    actions: list[CapaActionOut]
    effectiveness: EffectivenessCheckOut | None


class CapaDetail(CapaOut):
    problem_statement: str
    rca_method: str
    rca_findings: str
    rounds: list[CapaPlanRoundOut]
    effectiveness_checks: list[EffectivenessCheckOut]
    process_status: str
    current_step: str
    open_tasks: list[TaskOut]
    timeline: list[AuditOut]
    signatures: list[SignatureOut]


# ---------------------------------------------------------------- recall


class RecallProcessOut(SupplyProcessOut):
    """A recall (or a drill) just started, or started before with the same key."""


class RecallOut(BaseModel):
    id: str  # process id
    number: str  # RCL-YYYY-NNNN, DRL-YYYY-NNNN for a drill
    drill: bool
    status: str
    open: bool
    reason: str
    source: str
    source_reference: str
    requested_by: str
    classification: str | None
    depth: str | None
    public_warning: bool | None
    effectiveness_level: str | None
    scope_version: int
    consignees: int
    initiated_at: datetime
    report_due_on: date | None
    report_submitted_at: datetime | None
    closed_at: datetime | None


class RecallList(BaseModel):
    items: list[RecallOut]
    count: int


class RecallLotOut(BaseModel):
    lot_number: str
    part_number: str
    role: str  # suspect | affected
    scope_version: int
    status: str  # now
    status_before: str
    held: bool
    quantity: Decimal
    uom: str
    note: str


class RecallResponseOut(BaseModel):
    acknowledged: bool
    quantity_on_hand: Decimal | None
    quantity_returned: Decimal
    quantity_corrected: Decimal
    note: str
    recorded_by: str
    received_at: datetime


class RecallReturnOut(BaseModel):
    lot_number: str | None
    quantity: Decimal
    received_by: str
    received_at: datetime


class RecallConsigneeOut(BaseModel):
    code: str
    name: str
    scope_version: int
    shipped_quantity: Decimal
    shipped: list[dict[str, Any]]  # lots, serials, shipments, as the scope froze them
    status: str  # the notice: pending, notified, responded, reconciled, escalated, …
    notice_process_id: str | None
    notified_at: datetime | None
    acknowledged_at: datetime | None
    answered: bool
    silent_days: int | None  # days since the notice without an answer
    quantity_on_hand: Decimal | None
    quantity_returned: Decimal
    quantity_corrected: Decimal
    quantity_received_back: Decimal
    reminders: int
    escalated_at: datetime | None
    reconciled_at: datetime | None
    reconciled: bool
    checked: bool
    check_result: str
    responses: list[RecallResponseOut] = []
    returns: list[RecallReturnOut] = []


class RecallScopeVersionOut(BaseModel):
    version: int
    hash: str
    reason: str
    created_by: str
    created_at: datetime
    difference: dict[str, Any]
    lots: int
    consignees: int


class RecallScopeOut(BaseModel):
    version: int
    hash: str
    frozen_at: datetime | None
    lots: list[RecallLotOut]
    versions: list[RecallScopeVersionOut]


class RecallClockOut(BaseModel):
    """The Part 806 report: due 10 working days after initiation."""

    initiated_at: datetime
    report_due_on: date | None
    working_days_left: int | None  # negative once overdue
    overdue: bool
    submitted: bool
    report_submitted_at: datetime | None
    report_number: str


class RecallEffectivenessOut(BaseModel):
    level: str | None
    target_percent: int | None
    consignees: int
    responded: int
    responded_percent: float
    reconciled: int
    reconciled_percent: float
    met: bool
    waived_by: str | None


class RecallDrillTimesOut(BaseModel):
    """Seconds from initiation (what a drill is judged by)."""

    time_to_scope: float | None
    time_to_hold: float | None
    time_to_notify: float | None


class RecallDetail(RecallOut):
    health_hazard: str
    scope: RecallScopeOut
    consignee_board: list[RecallConsigneeOut]
    clock: RecallClockOut
    effectiveness: RecallEffectivenessOut
    drill_times: RecallDrillTimesOut
    strategy_approved_at: datetime | None
    terminated_at: datetime | None
    process_status: str
    current_step: str
    open_tasks: list[TaskOut]
    timeline: list[AuditOut]
    signatures: list[SignatureOut]


class RecallScopeVersionList(BaseModel):
    items: list[RecallScopeVersionOut]
    count: int
