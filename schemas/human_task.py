"""The human task: what a workflow asks of people, and what they answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from schemas.wording import Said, said


class TaskKind(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    INSPECT = "inspect"
    DISPOSITION = "disposition"
    PERFORM = "perform"
    VERIFY = "verify"


class DecisionRule(StrEnum):
    ANY = "any"  # the first decision decides
    ALL = "all"  # every listed user and one member of every listed group
    K_OF_N = "k_of_n"  # k distinct people among the candidates
    SEQUENTIAL = "sequential"  # stage after stage, each stage deciding in turn


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class SignatureMeaning(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    REVIEWED = "reviewed"
    RELEASED = "released"
    VERIFIED = "verified"
    CLOSED = "closed"
    AUTHORED = "authored"


class FieldType(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"


def label_wording(text: Said) -> dict[str, Any]:
    """The wording of a label or context key a workflow composes with values (`said("Lot
    %(lot)s (%(what)s)", …)`): its English template and values, a `Said` value's own wording
    under "inner" (as `workflows.wording.wording`), so the task page shows it in the reader's
    language (`ui.label_text`)."""
    details: dict[str, Any] = {"template": text.template, "values": dict(text.values)}
    inner = {n: label_wording(v) for n, v in text.values.items() if isinstance(v, Said)}
    if inner:
        details["inner"] = inner
    return details


class FieldSpec(BaseModel):
    """A field the decision form shows; `required` applies to every outcome. A `label` that is a
    `Said` (`label=said("%(function)s assessment required", function=…)`) keeps its wording in
    `label_wording` (None for a constant label and in older payloads)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    label_wording: dict[str, Any] | None = None
    type: FieldType = FieldType.TEXT
    required: bool = False
    choices: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _worded_label(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("label"), Said):
            if data.get("label_wording") is None:
                return {**data, "label_wording": label_wording(data["label"])}
        return data


class OutcomeSpec(BaseModel):
    """An allowed outcome. A non-null signature meaning makes it a signing decision."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    signature_meaning: SignatureMeaning | None = None
    required_fields: list[str] = []


class Candidates(BaseModel):
    groups: list[str] = []
    users: list[str] = []


class TaskSpec(BaseModel):
    """Everything a process says about one human step."""

    step: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="unique within the process")
    kind: TaskKind
    title: str
    description: str = ""
    # the English template of the title/description and its values, so a page shows them in the
    # reader's language (workflows.wording.titled); None in payloads written before they existed
    title_template: str | None = None
    title_values: dict[str, str | int | float | dict[str, Any]] | None = None
    description_template: str | None = None
    description_values: dict[str, str | int | float | dict[str, Any]] | None = None
    process_kind: str
    process_id: str
    business_key: str
    initiator: str | None = None  # username; never allowed to decide (segregation of duties)
    excluded_users: list[str] = []  # more segregation of duties, e.g. the implementer
    candidates: Candidates = Candidates()
    rule: DecisionRule = DecisionRule.ANY
    k: int = 1
    stages: list[Candidates] = []  # for SEQUENTIAL; stage 1 replaces `candidates`
    outcomes: list[OutcomeSpec]
    consensus_outcome: str | None = None  # the outcome k/all/stages must reach; default: first
    fields: list[FieldSpec] = []
    sla: timedelta = timedelta(hours=48)
    reminder_before: timedelta | None = timedelta(hours=8)
    escalation_chain: list[str] = []  # groups added at each due time, in order
    context: dict[str, str] = {}  # what is being decided, shown on the task page
    # the wording of a context value that quotes a refusal ({"template", "values"}, by key:
    # workflows.wording.wording), so the page shows it in the reader's language; a key composed
    # with values (a `Said` key, `said("Action %(n)s", n=1)`) has its own wording under "key"
    context_wording: dict[str, dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _worded_keys(cls, data: Any) -> Any:
        """A context key that is a `Said` keeps its wording: `context_wording[key]["key"]`."""
        context = data.get("context") if isinstance(data, dict) else None
        keys = [k for k in context or {} if isinstance(k, Said)]
        if not keys:
            return data
        wordings = {str(k): dict(v) for k, v in (data.get("context_wording") or {}).items()}
        for key in keys:
            wordings[str(key)] = wordings.get(str(key), {}) | {"key": label_wording(key)}
        return {**data, "context_wording": wordings}

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        names = [o.name for o in self.outcomes]
        if not names:
            raise ValueError(said("a task needs at least one outcome"))
        if len(set(names)) != len(names):
            raise ValueError(said("outcome names must be unique"))
        if self.consensus_outcome is not None and self.consensus_outcome not in names:
            raise ValueError(said("consensus_outcome must be one of the outcomes"))
        field_names = {f.name for f in self.fields}
        for outcome in self.outcomes:
            missing = set(outcome.required_fields) - field_names
            if missing:
                raise ValueError(
                    said(
                        "outcome %(name)s requires undefined fields %(fields)s",
                        name=outcome.name,
                        fields=missing,
                    )
                )
        if self.rule is DecisionRule.SEQUENTIAL and not self.stages:
            raise ValueError(said("a sequential task needs stages"))
        if self.rule is DecisionRule.K_OF_N and self.k < 1:
            raise ValueError(said("k must be at least 1"))
        if self.rule is not DecisionRule.SEQUENTIAL and not (
            self.candidates.groups or self.candidates.users
        ):
            raise ValueError(said("a task needs candidate groups or users"))
        if self.sla <= timedelta(0):
            raise ValueError(said("sla must be positive"))
        return self

    @property
    def agreeing_outcome(self) -> str:
        return self.consensus_outcome or self.outcomes[0].name

    def outcome(self, name: str) -> OutcomeSpec | None:
        return next((o for o in self.outcomes if o.name == name), None)

    def stage_candidates(self, stage: int) -> Candidates:
        if self.rule is DecisionRule.SEQUENTIAL:
            return self.stages[stage - 1]
        return self.candidates


class SignatureIntent(BaseModel):
    """Sent by the API once it has re-verified the signer's password (Part 11 §11.200)."""

    meaning: SignatureMeaning
    signer: str
    printed_name: str
    authenticated_by: str = "password"


class DecisionRequest(BaseModel):
    """The update a person's decision arrives as, after the API checked who may decide."""

    task_id: int
    decider: str
    decider_name: str
    on_behalf_of: str | None = None  # the delegator, when deciding as a stand-in
    qualifying_groups: list[str] = []  # candidate groups the decider (or delegator) belongs to
    outcome: str
    fields: dict[str, str] = {}
    comment: str = ""
    signature: SignatureIntent | None = None


class DecisionRecord(BaseModel):
    seq: int
    decider: str
    on_behalf_of: str | None
    outcome: str
    counted_for: str | None  # the group or user slot this decision filled (ALL rule)
    stage: int
    decided_at: datetime


class DecisionResult(BaseModel):
    task_id: int
    outcome: str
    task_status: TaskStatus
    final_outcome: str | None
    decisions_so_far: int
    message: str
    message_template: str | None = None  # workflows.wording.answered; None in older answers
    message_values: dict[str, str | int | float] | None = None


class TaskResult(BaseModel):
    task_id: int
    status: TaskStatus
    outcome: str | None
    fields: dict[str, str] = {}
    decisions: list[DecisionRecord] = []
    escalation_level: int = 1


class TaskState(BaseModel):
    """What a query on the human task workflow returns."""

    task_id: int | None
    status: TaskStatus
    level: int
    stage: int
    due_at: datetime | None
    decisions: list[DecisionRecord]
