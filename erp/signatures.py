"""Electronic signatures (Part 11 §11.70): the hash that links a signature to what it signed, and
the check that every signature still fits the record it signed.

A signature row keeps `signed_content`, the exact content signed, and `record_hash` over it. The
check recomputes the hash, compares the signature's own columns with that content, and compares
the content with the record as it is now (the decision and its task) and with the audit row that
recorded the decision. The audit row is keyed (erp/audit.py), so someone who edits a decision,
its signature and its hash together behind the system's back still does not get past it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.models import AuditEntry, ESignature, Task, TaskDecision

TASK_DECISION = "task_decision"


def signed_record_hash(content: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of what was signed (Part 11 §11.70 signature linking)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class SignatureProblem:
    signature_id: int
    record_type: str
    record_id: str
    problem: str

    def __str__(self) -> str:
        return (
            f"signature {self.signature_id} on {self.record_type} {self.record_id}: {self.problem}"
        )


@dataclass
class SignatureCheck:
    checked: int = 0
    problems: list[SignatureProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Signed:
    """A signature with what it points at: the decision, its task, the audit row of it."""

    signature: ESignature
    decision: TaskDecision | None
    task: Task | None
    audit: AuditEntry | None


async def verify_signatures(session: AsyncSession, *, batch: int = 1000) -> SignatureCheck:
    """Check every signature, in id order; each one that no longer fits is named once."""
    result = SignatureCheck()
    last_id = 0
    while True:
        signatures = (
            await session.scalars(
                select(ESignature)
                .where(ESignature.id > last_id)
                .order_by(ESignature.id)
                .limit(batch)
            )
        ).all()
        if not signatures:
            return result
        for signature in signatures:
            problem = _first(_problems(await _load(session, signature)))
            if problem:
                result.problems.append(
                    SignatureProblem(
                        signature.id, signature.record_type, signature.record_id, problem
                    )
                )
            result.checked += 1
            last_id = signature.id
        session.expunge_all()


async def signature_problem(session: AsyncSession, signature: ESignature) -> str:
    """What no longer fits for one signature (as verify_signatures names it), '' when it fits."""
    return _first(_problems(await _load(session, signature)))


def _first(problems: Iterator[str]) -> str:
    return next(problems, "")


async def _load(session: AsyncSession, signature: ESignature) -> _Signed:
    task_id, seq = _decision_key(signature.record_id)
    if signature.record_type != TASK_DECISION or task_id is None:
        return _Signed(signature, None, None, None)
    decision = await session.scalar(
        select(TaskDecision).where(TaskDecision.task_id == task_id, TaskDecision.seq == seq)
    )
    task = await session.get(Task, task_id)
    audit = None
    if signature.workflow_id:
        audit = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.idempotency_key == f"{signature.workflow_id}:decision:{seq}"
            )
        )
    return _Signed(signature, decision, task, audit)


def _decision_key(record_id: str) -> tuple[int | None, int]:
    """A decision's record id is '<task id>:<seq>'."""
    task, _, seq = record_id.partition(":")
    if not (task.isdigit() and seq.isdigit()):
        return None, 0
    return int(task), int(seq)


def _problems(signed: _Signed) -> Iterator[str]:
    """What no longer fits, most basic first: the hash, the signature's own columns, then the
    signed record, its task, and the audit trail's account of the decision."""
    s = signed.signature
    content = s.signed_content if isinstance(s.signed_content, dict) else {}
    if signed_record_hash(content) != s.record_hash:
        yield "its record_hash does not match its signed content (one of them was altered)"
    if s.record_type != TASK_DECISION or _decision_key(s.record_id)[0] is None:
        yield f"it signs a record the check does not know ({s.record_type} {s.record_id})"
        return
    yield from _own_columns(s, content)
    yield from _decision(signed.decision, s, content)
    yield from _task(signed.task, content)
    yield from _audit(signed.audit, s, content)


def _differs(what: str, now: object, signed: object, *, verb: str = "is now") -> str:
    return f"{what} {verb} {now!r}, but {signed!r} was signed"


def _own_columns(s: ESignature, content: dict[str, Any]) -> Iterator[str]:
    for column in ("signer", "printed_name", "meaning", "record_type", "workflow_id"):
        if getattr(s, column) != content.get(column):
            yield _differs(f"the signature's {column}", getattr(s, column), content.get(column))
    if not _same_time(s.signed_at, content.get("signed_at")):
        yield _differs("the signature's time", s.signed_at.isoformat(), content.get("signed_at"))
    if str(content.get("task_id")) != s.record_id.partition(":")[0]:
        yield _differs("the signed record", s.record_id, content.get("task_id"))


def _same_time(moment: datetime | None, text: object) -> bool:
    try:
        return moment is not None and moment == datetime.fromisoformat(str(text))
    except ValueError:
        return False


def _decision(
    decision: TaskDecision | None, s: ESignature, content: dict[str, Any]
) -> Iterator[str]:
    if decision is None:
        yield f"the signed decision ({s.record_id}) no longer exists"
        return
    if decision.signature_id != s.id:
        yield _differs("the decision's signature", decision.signature_id, s.id)
    for column in ("outcome", "fields", "comment"):
        if getattr(decision, column) != content.get(column):
            yield _differs(
                f"the decision's {column}", getattr(decision, column), content.get(column)
            )
    if decision.decided_by != content.get("signer"):
        yield _differs("the decision's decider", decision.decided_by, content.get("signer"))
    if not _same_time(decision.decided_at, content.get("signed_at")):
        yield _differs(
            "the decision's time", decision.decided_at.isoformat(), content.get("signed_at")
        )


def _task(task: Task | None, content: dict[str, Any]) -> Iterator[str]:
    if task is None:
        yield f"the signed task ({content.get('task_id')}) no longer exists"
        return
    for column in ("workflow_id", "process_id", "business_key", "title"):
        if getattr(task, column) != content.get(column):
            yield _differs(f"the task's {column}", getattr(task, column), content.get(column))
    if (task.spec or {}).get("context", {}) != content.get("context"):
        yield _differs(
            "the task's context", (task.spec or {}).get("context"), content.get("context")
        )


def _audit(audit: AuditEntry | None, s: ESignature, content: dict[str, Any]) -> Iterator[str]:
    if audit is None:
        yield "no audit row records the signed decision"
        return
    after = audit.after or {}
    recorded = {
        "signature": after.get("signature_id"),
        "outcome": after.get("decision_outcome"),
        "fields": after.get("fields"),
        "comment": audit.reason,
        "signer": audit.actor,
    }
    signed = {
        "signature": s.id,
        "outcome": content.get("outcome"),
        "fields": content.get("fields"),
        "comment": content.get("comment"),
        "signer": content.get("signer"),
    }
    for what, value in recorded.items():
        if value != signed[what]:
            where = f"the audit trail's {what} of the decision (row {audit.id})"
            yield _differs(where, value, signed[what], verb="is")
