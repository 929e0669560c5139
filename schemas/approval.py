"""The general approval request: one document or decision routed to approvers."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.human_task import DecisionRule, TaskResult


class ApprovalRequestInput(BaseModel):
    process_id: str
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=5000)
    initiator: str
    approver_groups: list[str] = Field(min_length=1)
    approver_users: list[str] = []
    rule: DecisionRule = DecisionRule.ANY
    k: int = Field(default=1, ge=1)
    sla_hours: float = Field(default=48, gt=0, le=24 * 365)
    reminder_hours: float | None = Field(default=8, gt=0)
    escalation_chain: list[str] = []
    signs: bool = True
    context: dict[str, str] = {}


class ApprovalRequestResult(BaseModel):
    process_id: str
    status: str
    outcome: str | None
    task: TaskResult | None = None
