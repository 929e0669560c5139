"""The nightly lot expiry on real PostgreSQL with the demo catalogue: every in-stock lot past its
expiry date becomes EXPIRED with its history and audit rows; other lots are left alone; a retry
writes nothing twice."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.lot_expiry import LotExpiryActivities
from erp.audit import verify_chain
from erp.lots import shippable_lots
from erp.master_data import Item, Lot
from erp.models import AuditEntry
from erp.seed import seed_demo
from erp.supply import LotStatusChange
from schemas.lot_expiry import ExpireLotsInput, ExpireLotsResult

TODAY = date.today()
PROCESS = "lot-expiry-test"


async def add_lot(
    sessions: async_sessionmaker[AsyncSession],
    number: str,
    status: str,
    expires_on: date | None,
    quantity: str = "100",
) -> None:
    """A lot of the demo's infusion set (IS-2000), in `status`, expiring on `expires_on`."""
    async with sessions() as session, session.begin():
        item = await session.scalar(
            select(Item).where(Item.part_number == "IS-2000", Item.status == "effective")
        )
        assert item is not None
        session.add(
            Lot(
                lot_number=number,
                item_id=item.id,
                part_number="IS-2000",
                quantity=Decimal(quantity),
                status=status,
                origin="production",
                manufactured_on=TODAY - timedelta(days=1100),
                expires_on=expires_on,
                hold_reason="seal strength under investigation" if status == "ON_HOLD" else "",
            )
        )


async def expire(
    sessions: async_sessionmaker[AsyncSession], on: date = TODAY, process_id: str = PROCESS
) -> ExpireLotsResult:
    activities = LotExpiryActivities(sessions)
    return await ActivityEnvironment().run(
        activities.expire_lots, ExpireLotsInput(process_id=process_id, on=on)
    )


async def statuses(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(
            select(Lot.lot_number, Lot.status).where(Lot.lot_number.like("X-%"))
        )
        return {number: status for number, status in rows.tuples()}


async def counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """(audit rows, lot status changes) written so far."""
    async with sessions() as session:
        audit = await session.scalar(select(func.count()).select_from(AuditEntry))
        changes = await session.scalar(select(func.count()).select_from(LotStatusChange))
        return int(audit or 0), int(changes or 0)


async def test_in_stock_lots_past_expiry_expire_with_history_and_audit(sessions):
    await seed_demo(sessions)
    yesterday = TODAY - timedelta(days=1)
    await add_lot(sessions, "X-RELEASED", "RELEASED", yesterday)
    await add_lot(sessions, "X-QUARANTINE", "QUARANTINE", TODAY - timedelta(days=30))
    await add_lot(sessions, "X-ON-HOLD", "ON_HOLD", TODAY - timedelta(days=400))

    result = await expire(sessions)

    assert result == ExpireLotsResult(
        on=TODAY, lot_numbers=["X-ON-HOLD", "X-QUARANTINE", "X-RELEASED"]
    )
    assert await statuses(sessions) == {
        "X-RELEASED": "EXPIRED",
        "X-QUARANTINE": "EXPIRED",
        "X-ON-HOLD": "EXPIRED",
    }
    async with sessions() as session:
        history = (
            await session.execute(
                select(
                    Lot.lot_number,
                    LotStatusChange.from_status,
                    LotStatusChange.reason,
                    LotStatusChange.changed_by,
                    LotStatusChange.process_id,
                )
                .join(Lot, Lot.id == LotStatusChange.lot_id)
                .where(LotStatusChange.to_status == "EXPIRED")
                .order_by(Lot.lot_number)
            )
        ).all()
        audit = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "lot.expired").order_by(AuditEntry.id)
            )
        )
        # the released lot no longer shows as stock to ship
        shippable = {
            lot.lot_number
            for lot in await session.scalars(
                shippable_lots("IS-2000", on=TODAY, min_shelf_life_days=0)
            )
        }
        chain = await verify_chain(session)
    assert history == [
        ("X-ON-HOLD", "ON_HOLD", f"expired on {TODAY - timedelta(days=400)}", "system", PROCESS),
        (
            "X-QUARANTINE",
            "QUARANTINE",
            f"expired on {TODAY - timedelta(days=30)}",
            "system",
            PROCESS,
        ),
        ("X-RELEASED", "RELEASED", f"expired on {yesterday}", "system", PROCESS),
    ]
    assert {(a.entity_type, a.entity_id, a.actor) for a in audit} == {
        ("lot", "X-RELEASED", "system"),
        ("lot", "X-QUARANTINE", "system"),
        ("lot", "X-ON-HOLD", "system"),
    }
    released = next(a for a in audit if a.entity_id == "X-RELEASED")
    assert released.reason == f"expired on {yesterday}"
    assert released.before == {"status": "RELEASED", "expires_on": yesterday.isoformat()}
    expired = {"template": "expired on %(day)s", "values": {"day": yesterday.isoformat()}}
    assert released.after == {  # the reason's wording, for the audit page and the lot history
        "status": "EXPIRED",
        "reason_wording": expired,
        "lot_reasons": {"X-RELEASED": {"reason": released.reason, "reason_wording": expired}},
    }
    assert released.idempotency_key == f"lot-expiry:{TODAY}:X-RELEASED"
    assert "X-RELEASED" not in shippable
    assert chain.ok


async def test_unexpired_consumed_shipped_and_undated_lots_are_left_alone(sessions):
    await seed_demo(sessions)
    long_ago = TODAY - timedelta(days=90)
    await add_lot(sessions, "X-EXPIRES-TODAY", "RELEASED", TODAY)  # usable through today
    await add_lot(sessions, "X-NEXT-YEAR", "QUARANTINE", TODAY + timedelta(days=365))
    await add_lot(sessions, "X-NO-EXPIRY", "RELEASED", None)
    await add_lot(sessions, "X-CONSUMED", "CONSUMED", long_ago, quantity="0")
    await add_lot(sessions, "X-SHIPPED", "SHIPPED", long_ago, quantity="0")
    await add_lot(sessions, "X-REJECTED", "REJECTED", long_ago)
    before = await counts(sessions)

    result = await expire(sessions)

    assert result.lot_numbers == []
    assert await statuses(sessions) == {
        "X-EXPIRES-TODAY": "RELEASED",
        "X-NEXT-YEAR": "QUARANTINE",
        "X-NO-EXPIRY": "RELEASED",
        "X-CONSUMED": "CONSUMED",
        "X-SHIPPED": "SHIPPED",
        "X-REJECTED": "REJECTED",
    }
    assert await counts(sessions) == before
    # the next day, the lot that expired today goes
    tomorrow = await expire(sessions, on=TODAY + timedelta(days=1), process_id="lot-expiry-next")
    assert tomorrow.lot_numbers == ["X-EXPIRES-TODAY"]


async def test_a_retry_writes_nothing_twice_and_answers_the_same(sessions):
    await seed_demo(sessions)
    await add_lot(sessions, "X-OLD", "RELEASED", TODAY - timedelta(days=2))
    first = await expire(sessions)
    after_first = await counts(sessions)

    retried = await expire(sessions)  # the same attempt again, after it committed

    assert retried == first == ExpireLotsResult(on=TODAY, lot_numbers=["X-OLD"])
    assert await counts(sessions) == after_first
    # another run the same day (say, triggered by hand) finds nothing left to expire
    again = await expire(sessions, process_id="lot-expiry-by-hand")
    assert again.lot_numbers == []
    assert await counts(sessions) == after_first
