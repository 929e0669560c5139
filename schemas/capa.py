"""CAPA activities: what each takes and returns (the CAPA workflow's contract with the ERP).

The request and result of the process itself, and the action plan format, are in
schemas.quality; these are the payloads of the steps in between.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel

from schemas.quality import CapaRequest, PlannedAction
from schemas.wording import Said, said

CAPA_STATUSES = (
    "root_cause",
    "planning",
    "plan_approval",
    "actions",
    "effectiveness_wait",
    "effectiveness_check",
    "reopened",
    "closure",
    "closed",
    "cancelled",
)
RCA_METHODS = ("5_whys", "fishbone", "fault_tree", "8d", "other")
# a change request in one of these states will never carry the action
CHANGE_DONE = "closed"
CHANGE_ABANDONED = ("withdrawn", "cancelled")


def describe_action(action: PlannedAction) -> Said:
    """One action as a task or a timeline shows it, a `said(…)` (the person's description and
    the owner are values; the kind, a catalog text, and the due date read in the page's
    language)."""
    values = {
        "kind": action.kind.value,
        "description": action.description,
        "owner": action.owner,
        "due": action.due_on.isoformat(),
    }
    if action.change:
        return said(
            "%(kind)s: %(description)s — %(owner)s, due %(due)s (through a change request)",
            **values,
        )
    return said("%(kind)s: %(description)s — %(owner)s, due %(due)s", **values)


class RegisterCapaInput(BaseModel):
    process_id: str
    run_id: str
    request: CapaRequest


class RegisterCapaResult(BaseModel):
    number: str
    nc_number: str | None = None


class SetCapaStatusInput(BaseModel):
    process_id: str
    seq: int  # the n-th status change of this CAPA: the write's idempotency key
    status: str
    reason: str = ""
    reason_wording: dict[str, Any] | None = None  # the reason's wording (workflows.wording)
    actor: str = "system"
    plan_round: int | None = None
    effectiveness_due_on: date | None = None


class RecordRootCauseInput(BaseModel):
    process_id: str
    attempt: int
    method: str
    findings: str
    recorded_by: str


class RecordActionPlanInput(BaseModel):
    process_id: str
    plan_round: int
    attempt: int
    actions: list[PlannedAction]
    effectiveness_wait_days: int
    planned_by: str


class ActionPlanCheck(BaseModel):
    """What the ERP found wrong with a plan (then nothing was recorded); empty: recorded."""

    problems: list[str] = []


class ChangeLookupInput(BaseModel):
    reference: str  # a CR number (CR-2026-0042) or a change process id


class ChangeState(BaseModel):
    found: bool
    process_id: str = ""
    number: str = ""
    title: str = ""
    status: str = ""
    implementer: str = ""  # who implements the change (set at its triage)


class LinkActionChangeInput(BaseModel):
    process_id: str
    plan_round: int
    seq: int
    attempt: int
    change_process_id: str
    change_number: str
    named_by: str


class CompleteActionInput(BaseModel):
    process_id: str
    plan_round: int
    seq: int
    evidence: str
    completed_by: str


class RecordEffectivenessInput(BaseModel):
    process_id: str
    plan_round: int
    verifier: str
    outcome: str  # effective | not_effective
    evidence: str
    reason: str = ""
