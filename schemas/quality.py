"""Nonconformance and CAPA payloads: what starts each process and what it returns, and the action
plan format a CAPA's owner writes. Workflows, activities and the API all use these."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field


class NcSource(StrEnum):
    INCOMING = "incoming"
    IN_PROCESS = "in_process"
    FINAL = "final"
    COMPLAINT = "complaint"
    AUDIT = "audit"
    SUPPLIER = "supplier"
    OTHER = "other"


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Disposition(StrEnum):
    USE_AS_IS = "use_as_is"
    REWORK = "rework"
    RETURN_TO_SUPPLIER = "return_to_supplier"
    SCRAP = "scrap"


class NonconformanceRequest(BaseModel):
    """Report a nonconformance: from the UI, an external system (MES, LIMS) or another process."""

    process_id: str = ""  # set by the API (or the process that raises it) before the start
    reporter: str = ""
    source: NcSource
    severity: Severity
    title: Annotated[str, Field(min_length=5, max_length=300)]
    description: Annotated[str, Field(min_length=5, max_length=5000)]
    part_number: Annotated[str | None, Field(max_length=40)] = None
    lots: Annotated[list[str], Field(max_length=200)] = []  # lot numbers
    quantity: Annotated[Decimal | None, Field(gt=0, max_digits=14, decimal_places=4)] = None
    evidence: Annotated[str, Field(max_length=5000)] = ""
    supplier_code: Annotated[str | None, Field(max_length=20)] = None
    origin_process_id: Annotated[str | None, Field(max_length=200)] = None
    external_id: Annotated[str | None, Field(max_length=200)] = None


class NonconformanceResult(BaseModel):
    process_id: str
    number: str
    status: str  # closed | cancelled (while running: the current step)
    held_lots: list[str] = []
    dispositions: dict[str, str] = {}  # lot number → disposition
    scars: list[str] = []
    capa_process_id: str | None = None
    recall_requested: bool = False


class CapaRequest(BaseModel):
    """Start a CAPA, linked to an NC or alone (audit finding, complaint trend, ...)."""

    process_id: str = ""
    requester: str = ""
    title: Annotated[str, Field(min_length=5, max_length=300)]
    problem_statement: Annotated[str, Field(min_length=5, max_length=5000)]
    owner: Annotated[str, Field(min_length=1, max_length=64)]  # who writes RCA and plan
    source: Annotated[str, Field(max_length=20)] = "nonconformance"
    nc_process_id: Annotated[str | None, Field(max_length=200)] = None
    effectiveness_wait_days: Annotated[int, Field(ge=1, le=730)] = 90
    external_id: Annotated[str | None, Field(max_length=200)] = None


class CapaResult(BaseModel):
    process_id: str
    number: str
    status: str  # closed | cancelled (while running: the current step)
    plan_rounds: int = 0


class ActionKind(StrEnum):
    CORRECTIVE = "corrective"
    PREVENTIVE = "preventive"


class PlannedAction(BaseModel):
    kind: ActionKind
    description: Annotated[str, Field(min_length=3, max_length=2000)]
    owner: Annotated[str, Field(min_length=1, max_length=64)]
    due_on: date
    change: bool = False  # done through a change request the CAPA waits for


ACTION_PLAN_HELP = (
    "One action per line: kind | what is done | owner (username) | due date (YYYY-MM-DD), "
    "kind corrective or preventive; add '| change' when the action is a change request the "
    "CAPA waits for. Example: corrective | Replace mould insert 4 | alice | 2027-01-15"
)
_SEPARATOR = re.compile(r"\s*\|\s*")


def parse_action_plan(text: str, *, today: date) -> tuple[list[PlannedAction], list[str]]:
    """The actions a plan's text lists, and what is wrong with it (nothing when empty)."""
    actions: list[PlannedAction] = []
    problems: list[str] = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for n, line in enumerate(lines, start=1):
        parts = _SEPARATOR.split(line)
        if len(parts) not in (4, 5) or (len(parts) == 5 and parts[4].lower() != "change"):
            problems.append(f"line {n}: expected 'kind | what | owner | YYYY-MM-DD [| change]'")
            continue
        kind, description, owner, due = parts[:4]
        if kind.lower() not in ("corrective", "preventive"):
            problems.append(f"line {n}: kind must be corrective or preventive, not {kind!r}")
            continue
        try:
            due_on = date.fromisoformat(due)
        except ValueError:
            problems.append(f"line {n}: {due!r} is not a date (YYYY-MM-DD)")
            continue
        if due_on < today:
            problems.append(f"line {n}: the due date {due_on} is in the past")
            continue
        if len(description) < 3 or not owner:
            problems.append(f"line {n}: say what is done and who owns it")
            continue
        actions.append(
            PlannedAction(
                kind=ActionKind(kind.lower()),
                description=description,
                owner=owner,
                due_on=due_on,
                change=len(parts) == 5,
            )
        )
    if not lines:
        problems.append("the plan lists no action")
    if len(actions) > 30:
        problems.append("a plan has at most 30 actions")
    return actions, problems
