"""What the Recall workflow and its activities pass each other (activities/recall.py), and the
updates a recall accepts from people (widen the scope, ask for termination)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field

from schemas.recall import RecallRequest
from schemas.wording import Said, said

# the groups that may widen a recall's scope or ask for its termination
WIDEN_GROUPS = ("qa-manager", "ra")
TERMINATION_GROUPS = ("ra", "qa-manager", "quality-director")


class RecallInput(BaseModel):
    process_id: str


class RegisterRecallInput(BaseModel):
    process_id: str
    run_id: str
    request: RecallRequest


class RegisteredRecall(BaseModel):
    number: str  # RCL-YYYY-NNNN, DRL-YYYY-NNNN in a drill
    drill: bool
    initiated_at: datetime  # database time
    suspect_lots: list[str]


class ScopeRecallInput(BaseModel):
    """Freeze a scope version: version 1 from the suspect lots registered, a later version
    (widening) from those and the lots named here."""

    process_id: str
    version: int
    lot_numbers: list[str] = []
    reason: str = ""
    actor: str = "system"


class ScopeVersion(BaseModel):
    version: int
    snapshot_hash: str
    lots: int
    finished_lots: int
    serials: int
    shipped_quantity: Decimal
    consignees: list[str]  # customer codes, the whole scope
    lots_added: list[str] = []  # against the version before (widening)
    consignees_added: list[str] = []
    consignees_changed: list[str] = []  # received more affected product than the last version said
    scoped_at: datetime


class HoldRecallLotsInput(BaseModel):
    process_id: str
    version: int  # the lots this scope version added


class RecallHold(BaseModel):
    """In-house stock held for the recall (in a drill: what would have been held)."""

    held: list[str]  # put ON_HOLD now
    already_held: list[str]  # were ON_HOLD, stay held (the reason names the recall too)
    would_hold: list[str] = []  # a drill holds nothing
    not_in_house: list[str]  # shipped, consumed, rejected, expired, recalled, or no stock
    held_at: datetime


class RecordHazardInput(BaseModel):
    process_id: str
    hazard: str
    actor: str


class RecordClassificationInput(BaseModel):
    process_id: str
    round: int
    classification: str  # I | II | III
    depth: str  # consumer | retail | wholesale
    public_warning: bool
    effectiveness_level: str  # A-E
    actor: str


class RecordStrategyInput(BaseModel):
    process_id: str
    round: int
    approved: bool
    actor: str
    reason: str = ""


class ReportClock(BaseModel):
    """Part 806: the report is due 10 working days after initiation, by the end of that day."""

    report_due_on: date
    due_at: datetime  # the end of the due day (midnight UTC after it)
    country: str


class RecordReportInput(BaseModel):
    process_id: str
    report_number: str
    actor: str


EFFECTIVENESS = (
    "responded %(responded)s/%(consignees)s (%(responded_percent)s %%), "
    "reconciled %(reconciled)s/%(consignees)s (%(reconciled_percent)s %%), "
    "target %(target)s %% (level %(level)s); checks %(done)s/%(checks)s done"
)


class Effectiveness(BaseModel):
    level: str | None
    target_percent: int
    consignees: int
    notified: int
    responded: int
    reconciled: int
    responded_percent: float
    reconciled_percent: float
    checks: int  # sampled consignees
    checks_open: int
    checks_failed: int
    met: bool

    def describe(self) -> Said:
        """The measured effectiveness in a line, a `said(…)` with its numbers as values."""
        measured = {
            "responded": self.responded,
            "reconciled": self.reconciled,
            "consignees": self.consignees,
            "responded_percent": f"{self.responded_percent:.0f}",
            "reconciled_percent": f"{self.reconciled_percent:.0f}",
            "target": self.target_percent,
            "level": self.level or "-",
            "done": self.checks - self.checks_open,
            "checks": self.checks,
        }
        if self.checks_failed:
            return said(
                EFFECTIVENESS + ", %(failed)s failed", failed=self.checks_failed, **measured
            )
        return said(EFFECTIVENESS, **measured)


class SampledChecks(BaseModel):
    consignees: list[str]  # codes sampled for an effectiveness check


class RecordCheckInput(BaseModel):
    process_id: str
    consignee_code: str
    round: int
    verified: bool
    note: str
    actor: str


class StatusReportInput(BaseModel):
    process_id: str
    seq: int


class RecordTerminationInput(BaseModel):
    process_id: str
    round: int
    requested_by: str
    decided_by: str
    outcome: str  # approved | waived | refused | rejected
    reason: str = ""


class SetRecallStatusInput(BaseModel):
    process_id: str
    seq: int
    status: str
    actor: str = "system"
    reason: str = ""
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)


class RecallTimes(BaseModel):
    """Seconds from initiation to the scope frozen, the stock held, every consignee notified."""

    time_to_scope: float | None = None
    time_to_hold: float | None = None
    time_to_notify: float | None = None


# ---------------------------------------------------------------- updates from people


class WidenScopeRequest(BaseModel):
    """update `widen-scope`: more suspect lots, and why (a person in qa-manager or ra; the API
    passes the groups it checked)."""

    lot_numbers: Annotated[list[str], Field(min_length=1, max_length=200)]
    reason: Annotated[str, Field(min_length=5, max_length=5000)]
    requested_by: str
    groups: list[str] = []


class WidenScopeResult(BaseModel):
    version: int
    snapshot_hash: str
    lots_added: list[str]
    consignees_added: list[str]
    held: list[str]
    message: str
    message_template: str | None = None  # workflows.wording.answered; None in older answers
    message_values: dict[str, str | int | float] | None = None


class TerminationRequest(BaseModel):
    """update `request-termination`: a person asks to end the recall (approval follows)."""

    requested_by: str
    reason: Annotated[str, Field(max_length=5000)] = ""
    groups: list[str] = []


class TerminationRequested(BaseModel):
    message: str
    message_template: str | None = None  # workflows.wording.answered; None in older answers
    message_values: dict[str, str | int | float] | None = None
