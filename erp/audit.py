"""The audit trail: append one hash-chained row, and verify the chain.

Rows are serialised by a transaction-level advisory lock so each row's `prev_hash` is the hash of
the row committed before it; the caller's business rows and the audit row commit together.

The chain alone is unkeyed: someone who can write the table could recompute every hash after a
row they change, or cut rows off the end. So each row also carries `row_mac`, an HMAC of its hash
under LOTLINE_AUDIT_KEY (which the database does not hold), and the one-row `audit_seal` holds
the head (last id and hash) under the same key, rewritten with every append: a rewritten tail
has no valid MACs, and a cut-off tail no longer reaches the sealed head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from erp.db import database_now
from erp.models import AuditEntry, AuditSeal
from settings import audit_key, audit_key_is_set

log = logging.getLogger("lotline.audit")
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


def row_mac(row_hash_: str, key: bytes) -> str:
    """The keyed MAC of one row; since a row's hash covers the hash before it, the MAC of a row
    vouches for the whole chain up to it."""
    return hmac.new(key, f"row:{row_hash_}".encode(), hashlib.sha256).hexdigest()


def seal_mac(last_id: int, head_hash: str, key: bytes) -> str:
    return hmac.new(key, f"head:{last_id}:{head_hash}".encode(), hashlib.sha256).hexdigest()


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
    head = (
        await session.execute(
            select(AuditEntry.id, AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1)
        )
    ).first()
    prev = head.row_hash if head else None
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
    key = audit_key()
    entry.row_hash = _hash_of(entry)
    entry.row_mac = row_mac(entry.row_hash, key)
    session.add(entry)
    await session.flush()
    await _seal(session, entry, key, head=(head.id, head.row_hash) if head else None)
    return entry


async def _seal(
    session: AsyncSession, entry: AuditEntry, key: bytes, *, head: tuple[int, str] | None
) -> None:
    """Move the sealed head to `entry` (under the chain lock, in the caller's transaction) — but
    only from a seal that is genuine and still sits on the row before `entry`. Otherwise rows were
    cut off or rewritten behind the system's back: the seal stays where it was (or missing), so
    the verifier keeps naming the damage instead of the next append hiding it."""
    seal = await session.get(AuditSeal, 1, populate_existing=True)
    moved = {
        "last_id": entry.id,
        "head_hash": entry.row_hash,
        "mac": seal_mac(entry.id, entry.row_hash, key),
        "sealed_at": entry.recorded_at,
    }
    if seal is None and head is None:
        session.add(AuditSeal(id=1, **moved))
    elif seal is not None and head is not None and _seals(seal, head, key):
        for name, value in moved.items():
            setattr(seal, name, value)
    else:
        log.warning(
            "the audit seal does not fit the head of the chain (row %s): the trail was changed "
            "outside Lotline, or LOTLINE_AUDIT_KEY changed; run `make verify-audit`",
            head[0] if head else None,
        )
        return
    await session.flush()


def _seals(seal: AuditSeal, head: tuple[int, str], key: bytes) -> bool:
    genuine = hmac.compare_digest(seal.mac, seal_mac(seal.last_id, seal.head_hash, key))
    return genuine and (seal.last_id, seal.head_hash) == head


@dataclass
class VerifyResult:
    ok: bool
    rows_checked: int
    first_broken_id: int | None = None
    problem: str = ""
    head_hash: str = GENESIS_HASH
    sealed_id: int | None = None  # the last row id the seal vouches for
    keyed: bool = False  # False: the MACs use the built-in development key (not secret)


def _broken(entry_id: int | None, problem: str, checked: int) -> VerifyResult:
    return VerifyResult(
        ok=False,
        rows_checked=checked,
        first_broken_id=entry_id,
        problem=problem,
        keyed=audit_key_is_set(),
    )


def _row_problem(entry: AuditEntry, expected_prev: str, key: bytes) -> str:
    """Why one row does not fit the chain, or '' when it does."""
    if entry.prev_hash != expected_prev:
        return (
            f"row {entry.id} does not follow the row before it: a row was deleted "
            "or inserted before it, or its link was altered"
        )
    if _hash_of(entry) != entry.row_hash:
        return f"row {entry.id} was altered after it was written"
    if not hmac.compare_digest(entry.row_mac or "", row_mac(entry.row_hash, key)):
        return (
            f"row {entry.id} does not carry the audit key's MAC: it was written or rewritten "
            "by someone without LOTLINE_AUDIT_KEY (or the key is not the one the trail was "
            "written with)"
        )
    return ""


def _seal_problem(seal: AuditSeal | None, key: bytes, *, rows: int) -> str:
    if seal is None:
        return "" if rows == 0 else "the seal of the chain's head (audit_seal) was deleted"
    if not hmac.compare_digest(seal.mac, seal_mac(seal.last_id, seal.head_hash, key)):
        return (
            f"the seal of the chain's head (row {seal.last_id}) was altered, or "
            "LOTLINE_AUDIT_KEY is not the key the trail was written with"
        )
    return ""


async def verify_chain(session: AsyncSession, *, batch: int = 5000) -> VerifyResult:
    """Recompute every row's hash and MAC in id order, and name the first row that does not fit;
    then check that the chain still reaches the sealed head. The seal is read first, so rows
    appended while this runs (past the seal) are simply checked too."""
    key = audit_key()
    seal = await session.get(AuditSeal, 1, populate_existing=True)
    has_rows = await session.scalar(select(AuditEntry.id).limit(1)) is not None
    problem = _seal_problem(seal, key, rows=int(has_rows))
    if problem:
        return _broken(seal.last_id if seal else None, problem, 0)
    expected_prev, checked, last_id, reached = GENESIS_HASH, 0, 0, seal is None
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
            break
        for entry in rows:
            problem = _row_problem(entry, expected_prev, key)
            broken_id = entry.id
            if not problem and seal is not None and entry.id >= seal.last_id and not reached:
                problem, broken_id, reached = _head_problem(entry, seal), seal.last_id, True
            if problem:
                return _broken(broken_id, problem, checked)
            expected_prev, checked, last_id = entry.row_hash, checked + 1, entry.id
        session.expunge_all()
    if not reached:
        assert seal is not None
        return _broken(
            seal.last_id,
            f"the chain ends at row {last_id or 'none'} but its sealed head is row "
            f"{seal.last_id}: rows at the end of the trail were deleted",
            checked,
        )
    return VerifyResult(
        ok=True,
        rows_checked=checked,
        head_hash=expected_prev,
        sealed_id=seal.last_id if seal else None,
        keyed=audit_key_is_set(),
    )


def _head_problem(entry: AuditEntry, seal: AuditSeal) -> str:
    """The first row at or past the sealed id must be the sealed head itself."""
    if entry.id != seal.last_id:
        return (
            f"row {seal.last_id}, the sealed head of the chain, was deleted "
            f"(row {entry.id} follows where it was)"
        )
    if entry.row_hash != seal.head_hash:
        return f"row {entry.id} is not the row that was sealed as the head of the chain"
    return ""
