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
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.util import identity_key

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


# Read under the chain lock, in a statement of its own (so its snapshot is taken after the lock
# is granted and sees the row committed just before): the head, the seal, the database's clock,
# and the new row's id, drawn here so the seal can name it in the same write as the row.
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_UNDER_LOCK = text(
    """
    SELECT clock_timestamp() AS now,
           nextval(pg_get_serial_sequence('audit_entry', 'id')) AS id,
           head.id AS head_id, head.row_hash AS head_hash,
           seal.last_id AS seal_id, seal.head_hash AS seal_hash, seal.mac AS seal_mac
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT id, row_hash FROM audit_entry ORDER BY id DESC LIMIT 1
    ) AS head ON true
    LEFT JOIN audit_seal AS seal ON seal.id = 1
    """
)


_ENTRIES = cast(Table, AuditEntry.__table__)
_SEALS = cast(Table, AuditSeal.__table__)
_ENTRY_COLUMNS = list(_ENTRIES.columns)
_INSERT_ENTRY = insert(_ENTRIES).values(
    {c.key: bindparam(f"entry_{c.key}", type_=c.type) for c in _ENTRY_COLUMNS}
)
_SEAL_VALUES = {
    "last_id": bindparam("seal_last_id"),
    "head_hash": bindparam("seal_head_hash"),
    "mac": bindparam("seal_mac"),
    "sealed_at": bindparam("seal_sealed_at", type_=_SEALS.c.sealed_at.type),
}
# the row and the seal in one statement (a data-modifying WITH runs whether or not it is read)
_INSERT_ENTRY_AND_SEAL = (
    insert(_SEALS).values(id=1, **_SEAL_VALUES).add_cte(_INSERT_ENTRY.cte("entry"))
)
_INSERT_ENTRY_MOVE_SEAL = (
    update(_SEALS)
    .where(_SEALS.c.id == 1)
    .values(**_SEAL_VALUES)
    .add_cte(_INSERT_ENTRY.cte("entry"))
)


async def append_audit(session: AsyncSession, record: AuditRecord) -> AuditEntry:
    """Add one chained audit row to the session's transaction (the caller commits).

    The chain lock is held from its grant to the caller's commit, and every append waits for it:
    so what happens under it is kept to two statements (one read, one write) besides the lock."""
    await session.flush()  # business rows first, so their ids are known and the lock is short
    # the session's connection, in its transaction: plain statements need none of the ORM's work
    connection = await session.connection()
    await connection.execute(_LOCK, {"key": _AUDIT_LOCK_KEY})
    state = (await connection.execute(_UNDER_LOCK)).one()
    head = (state.head_id, state.head_hash) if state.head_id is not None else None
    entry = AuditEntry(
        id=state.id,
        recorded_at=state.now,
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
        prev_hash=head[1] if head else GENESIS_HASH,
        row_hash="",
    )
    key = audit_key()
    entry.row_hash = _hash_of(entry)
    entry.row_mac = row_mac(entry.row_hash, key)
    seal = (
        AuditSeal(id=1, last_id=state.seal_id, head_hash=state.seal_hash, mac=state.seal_mac)
        if state.seal_id is not None
        else None
    )
    row = {f"entry_{c.key}": getattr(entry, c.key) for c in _ENTRY_COLUMNS}
    moved = _seal(seal, entry, key, head=head)
    if moved is None:
        await connection.execute(_INSERT_ENTRY, row)
    else:
        statement, sealed = moved
        await connection.execute(statement, row | sealed)
    # the row as a persistent object of the session, as if the session had inserted it itself
    make_transient_to_detached(entry)
    session.add(entry)
    cached = session.identity_map.get(identity_key(AuditSeal, 1))
    if cached is not None:  # read earlier in this session: read it again when asked
        session.expire(cached)
    return entry


def _seal(
    seal: AuditSeal | None, entry: AuditEntry, key: bytes, *, head: tuple[int, str] | None
) -> tuple[Executable, dict[str, Any]] | None:
    """The statement (and its seal parameters) that writes `entry` and moves the sealed head to
    it (under the chain lock, in the caller's transaction) — but only from a seal that is genuine
    and still sits on the row before `entry`. Otherwise rows were cut off or rewritten behind the
    system's back: the seal stays where it was (or missing), so the verifier keeps naming the
    damage instead of the next append hiding it (None: write the row alone)."""
    moved = {
        "seal_last_id": entry.id,
        "seal_head_hash": entry.row_hash,
        "seal_mac": seal_mac(entry.id, entry.row_hash, key),
        "seal_sealed_at": entry.recorded_at,
    }
    if seal is None and head is None:
        return _INSERT_ENTRY_AND_SEAL, moved
    if seal is not None and head is not None and _seals(seal, head, key):
        return _INSERT_ENTRY_MOVE_SEAL, moved
    log.warning(
        "the audit seal does not fit the head of the chain (row %s): the trail was changed "
        "outside Lotline, or LOTLINE_AUDIT_KEY changed; run `make verify-audit`",
        head[0] if head else None,
    )
    return None


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
