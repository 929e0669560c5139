"""What the activities of the supply processes do alike, written once.

A process's own record (its purchase order, work order, shipment or customer order), found by the
process id, and its status (a nonconformance's, a recall's) set, mirrored and audited; the next
business number; what an audited write answered before a retry; a lot change
the database refuses, turned into the non-retryable LotRefused error a workflow shows a person;
and the one transaction that moves lots, rolled back and audited as refused when a lot is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.audit_context import audit
from activities.process import mirror_status
from erp.audit import already_recorded
from erp.db import database_now
from erp.lots import LotRefused, Pick, noted_lot_reasons, set_lot_status
from erp.master_data import Lot
from erp.models import AuditEntry
from erp.numbering import next_in_series
from erp.supply import CustomerOrder
from schemas.production import LotPick
from workflows.wording import refuse, said

Record = TypeVar("Record")
Answer = TypeVar("Answer", bound=BaseModel)
T = TypeVar("T")


# ---------------------------------------------------------------- a process's records


async def process_record(
    session: AsyncSession, model: type[Record], process_id: str, *, lock: bool = False
) -> Record | None:
    """The record a process made (one per process id), locked for this transaction if `lock`."""
    query = select(model).filter_by(process_id=process_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def required_process_record(
    session: AsyncSession, model: type[Record], process_id: str, what: str, *, lock: bool = False
) -> Record:
    """The record a process made; a non-retryable error names the `what` missing (a
    `said("shipment")`, so the refusal reads in the reader's language)."""
    record = await process_record(session, model, process_id, lock=lock)
    if record is None:
        raise refuse(
            None,
            said("no %(what)s for process %(process)s", what=what, process=process_id),
            non_retryable=True,
        )
    return record


class StatusRecord(Protocol):
    """A process's record that carries its own status (a nonconformance, a recall)."""

    number: str
    status: str
    closed_at: datetime | None


async def set_record_status(
    session: AsyncSession,
    model: type[StatusRecord],
    *,
    entity_type: str,
    terminal: Mapping[str, str],
    process_id: str,
    seq: int,
    status: str,
    actor: str,
    reason: str,
) -> None:
    """A process record's status (a terminal one: closed_at), mirrored on its process row and
    audited as `<entity_type>.<status>`; nothing when the record is not registered (cancelled
    before it was) or the change is already written."""
    key = f"{process_id}:status:{seq}"
    if await already_recorded(session, key):
        return
    record = await process_record(session, model, process_id, lock=True)
    if record is None:  # cancelled before it was registered
        return
    before = record.status
    record.status = status
    now = await database_now(session)
    if status in terminal:
        record.closed_at = now
    await mirror_status(
        session, process_id, step=status, ended=terminal.get(status), outcome=status, at=now
    )
    await audit(
        session,
        actor=actor,
        action=f"{entity_type}.{status}",
        entity_type=entity_type,
        entity_id=record.number,
        key=key,
        reason=reason,
        before={"status": before},
        after={"status": status},
    )


async def find_customer_order(session: AsyncSession, reference: str | None) -> CustomerOrder | None:
    """The customer order a request names, by its number or by its process id."""
    if not reference:
        return None
    return await session.scalar(
        select(CustomerOrder).where(
            or_(CustomerOrder.number == reference, CustomerOrder.process_id == reference)
        )
    )


async def next_number(session: AsyncSession, prefix: str, sequence: str) -> str:
    """The next business number PREFIX-YYYY-NNNN of its series (erp/numbering.py: no gaps), in
    the database's year."""
    year = (await database_now(session)).year
    seq = await next_in_series(session, sequence)
    return f"{prefix}-{year}-{seq:04d}"


# ---------------------------------------------------------------- retries


async def recorded(session: AsyncSession, idempotency_key: str) -> AuditEntry | None:
    """The audit row of a write that already committed under this key, or None."""
    return await session.scalar(
        select(AuditEntry).where(AuditEntry.idempotency_key == idempotency_key)
    )


async def recorded_answer(
    session: AsyncSession, idempotency_key: str, answer: type[Answer], field: str | None = None
) -> Answer | None:
    """What a write that already committed under this key answered, kept in its audit row's
    `after` (under `field`, or all of it); None when it has not been written."""
    earlier = await recorded(session, idempotency_key)
    if earlier is None or earlier.after is None:
        return None
    kept: Any = earlier.after if field is None else earlier.after[field]
    return answer.model_validate(kept)


# ---------------------------------------------------------------- lots


def lot_refused(refusal: LotRefused) -> ApplicationError:
    """A database refusal of a lot change, as the non-retryable error a workflow shows a person."""
    return refuse("LotRefused", refusal.message, non_retryable=True)


def held_also(earlier: str, reason: str) -> str:
    """The hold reason of a lot that stays held for one more reason: the earlier one (as
    recorded, plain) and the new one (a `said(…)`, translated)."""
    return said("%(earlier)s; %(reason)s", earlier=earlier, reason=reason)


async def change_lot_status(
    session: AsyncSession, lot: Lot, status: str, *, reason: str, actor: str, process_id: str
) -> None:
    """erp.lots.set_lot_status; a refusal by the lot status machine raised as LotRefused."""
    try:
        await set_lot_status(
            session, lot, status, reason=reason, actor=actor, process_id=process_id
        )
    except LotRefused as refusal:
        raise lot_refused(refusal) from None


async def write_moving_lots(
    sessions: async_sessionmaker[AsyncSession],
    key: str,
    write: Callable[[AsyncSession], Awaitable[T]],
    audit_refusal: Callable[[AsyncSession, LotRefused, str], Awaitable[None]],
) -> T:
    """`write` in one transaction that moves lots. A lot the database refuses (held, consumed or
    expired meanwhile) rolls all of it back; `audit_refusal` then records the refusal in a
    transaction of its own, once (under key:refused), and it is raised as LotRefused."""
    async with sessions() as session:
        try:
            async with session.begin():
                return await write(session)
        except LotRefused as refusal:
            noted_lot_reasons(session)  # the rolled-back lot changes' reasons: not recorded
            async with session.begin():
                refused_key = f"{key}:refused"
                if not await already_recorded(session, refused_key):
                    await audit_refusal(session, refusal, refused_key)
            raise lot_refused(refusal) from None


def lot_picks(part_number: str, uom: str, picks: list[Pick]) -> list[LotPick]:
    """Lots picked by erp.lots.pick_fefo, as the workflow sees them."""
    return [
        LotPick(
            part_number=part_number,
            lot_id=p.lot_id,
            lot_number=p.lot_number,
            quantity=p.quantity,
            uom=uom,
            expires_on=p.expires_on,
        )
        for p in picks
    ]
