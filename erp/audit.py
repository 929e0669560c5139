"""The audit trail: append one hash-chained row, and verify the chain.

Rows are serialised by a transaction-level advisory lock so each row's `prev_hash` is the hash of
the row committed before it; the caller's business rows and the audit row commit together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from erp.db import database_now
from erp.models import AuditEntry

GENESIS_HASH = "0" * 64
_AUDIT_LOCK_KEY = 7_420_001  # any constant; one chain per database


def _json_safe(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str, sort_keys=True))


@dataclass
class AuditRecord:
    """What one audit row says: who did what to which record, why, and from where."""

    actor: str
    action: str
    entity_type: str
    entity_id: str
    source: str
    reason: str = ""
    outcome: str = "ok"
    on_behalf_of: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    workflow_id: str | None = None
    run_id: str | None = None
    activity: str | None = None
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def row_hash(
    *,
    prev_hash: str,
    recorded_at: datetime,
    actor: str,
    on_behalf_of: str | None,
    action: str,
    entity_type: str,
    entity_id: str,
    outcome: str,
    reason: str,
    before: Any,
    after: Any,
    workflow_id: str | None,
    run_id: str | None,
    activity: str | None,
    source: str,
    idempotency_key: str | None,
) -> str:
    canonical = json.dumps(
        {
            "prev_hash": prev_hash,
            "recorded_at": recorded_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "on_behalf_of": on_behalf_of,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "outcome": outcome,
            "reason": reason,
            "before": before,
            "after": after,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "activity": activity,
            "source": source,
            "idempotency_key": idempotency_key,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _hash_of(entry: AuditEntry) -> str:
    return row_hash(
        prev_hash=entry.prev_hash,
        recorded_at=entry.recorded_at,
        actor=entry.actor,
        on_behalf_of=entry.on_behalf_of,
        action=entry.action,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        outcome=entry.outcome,
        reason=entry.reason,
        before=entry.before,
        after=entry.after,
        workflow_id=entry.workflow_id,
        run_id=entry.run_id,
        activity=entry.activity,
        source=entry.source,
        idempotency_key=entry.idempotency_key,
    )


async def already_recorded(session: AsyncSession, idempotency_key: str) -> bool:
    """True when an audited write with this key has committed: the write is done, skip it."""
    found = await session.scalar(
        select(AuditEntry.id).where(AuditEntry.idempotency_key == idempotency_key)
    )
    return found is not None


async def append_audit(session: AsyncSession, record: AuditRecord) -> AuditEntry:
    """Add one chained audit row to the session's transaction (the caller commits)."""
    await session.flush()  # business rows first, so their ids are known and the lock is short
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AUDIT_LOCK_KEY})
    prev = await session.scalar(select(AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1))
    recorded_at = await database_now(session)
    entry = AuditEntry(
        recorded_at=recorded_at,
        actor=record.actor,
        on_behalf_of=record.on_behalf_of,
        action=record.action,
        entity_type=record.entity_type,
        entity_id=record.entity_id,
        outcome=record.outcome,
        reason=record.reason,
        before=_json_safe(record.before),
        after=_json_safe(record.after),
        workflow_id=record.workflow_id,
        run_id=record.run_id,
        activity=record.activity,
        source=record.source,
        idempotency_key=record.idempotency_key,
        prev_hash=prev or GENESIS_HASH,
        row_hash="",
    )
    entry.row_hash = _hash_of(entry)
    session.add(entry)
    await session.flush()
    return entry


@dataclass
class VerifyResult:
    ok: bool
    rows_checked: int
    first_broken_id: int | None = None
    problem: str = ""
    head_hash: str = GENESIS_HASH


async def verify_chain(session: AsyncSession, *, batch: int = 5000) -> VerifyResult:
    """Recompute every row's hash in id order and name the first row that does not fit."""
    expected_prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        rows = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.id > last_id)
                .order_by(AuditEntry.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            return VerifyResult(ok=True, rows_checked=checked, head_hash=expected_prev)
        for entry in rows:
            if entry.prev_hash != expected_prev:
                return VerifyResult(
                    ok=False,
                    rows_checked=checked,
                    first_broken_id=entry.id,
                    problem=(
                        f"row {entry.id} does not follow the row before it: a row was deleted "
                        "or inserted before it, or its link was altered"
                    ),
                )
            if _hash_of(entry) != entry.row_hash:
                return VerifyResult(
                    ok=False,
                    rows_checked=checked,
                    first_broken_id=entry.id,
                    problem=f"row {entry.id} was altered after it was written",
                )
            expected_prev = entry.row_hash
            checked += 1
            last_id = entry.id
        session.expunge_all()
