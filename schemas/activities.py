"""Inputs and results of the foundation's activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from schemas.human_task import Candidates, DecisionRequest, TaskSpec, TaskStatus


class OpenTaskInput(BaseModel):
    workflow_id: str
    run_id: str
    spec: TaskSpec
    due_at: datetime


class OpenTaskResult(BaseModel):
    task_id: int


class RemindTaskInput(BaseModel):
    task_id: int
    workflow_id: str
    level: int
    due_at: datetime


class EscalateTaskInput(BaseModel):
    task_id: int
    workflow_id: str
    new_level: int
    added_group: str | None
    due_at: datetime | None  # None: the chain is exhausted; the task stays overdue


class RecordDecisionInput(BaseModel):
    task_id: int
    workflow_id: str
    run_id: str
    seq: int
    request: DecisionRequest
    counted_for: str | None
    stage: int
    task_status: TaskStatus
    final_outcome: str | None
    next_stage: int | None = None
    next_candidates: Candidates | None = None


class RecordDecisionResult(BaseModel):
    decision_id: int
    signature_id: int | None
    decided_at: datetime


class CancelTaskInput(BaseModel):
    task_id: int | None  # None: cancelled before the task's id was known; found by workflow id
    workflow_id: str
    reason: str
    reason_wording: dict[str, Any] | None = None  # the reason's wording, None in older inputs


class RegisterProcessInput(BaseModel):
    process_id: str
    run_id: str
    kind: str
    title: str
    business_key: str
    initiator: str | None
    # the English title's template and values (workflows.wording.titled), None in older payloads;
    # stored in process.title_wording so the pages show the title in the reader's language
    title_template: str | None = None
    title_values: dict[str, str | int | float | dict[str, Any]] | None = None


class UpdateProcessInput(BaseModel):
    process_id: str
    step: str
    status: str = "running"
    outcome: str | None = None
    reason: str = ""
    # the reason's English template and values (workflows.wording.wording: {"template",
    # "values", "inner"?}), None in older payloads or for a person's own words; stored in the
    # audit row's after["reason_wording"] so a page shows the reason in the reader's language
    reason_wording: dict[str, Any] | None = None
