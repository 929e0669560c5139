"""The lot rules live in the database (migration 0003): whatever writes — raw SQL, the ORM or
erp.lots — no lot leaves its status machine, and nothing not RELEASED, expired or of a
non-effective revision is issued or shipped."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp.lots import LotRefused, move, set_lot_status
from erp.master_data import LOT_STATUSES, Item, Lot
from erp.supply import InventoryMovement, LotStatusChange, LotStatusTransition

TODAY = date.today()
# The lot status machine as the quality system defines it (QUARANTINE → RELEASED / ON_HOLD /
# REJECTED / CONSUMED / SHIPPED / RECALLED, EXPIRED when its date passes).
MACHINE = {
    ("QUARANTINE", "RELEASED"),
    ("QUARANTINE", "ON_HOLD"),
    ("QUARANTINE", "REJECTED"),
    ("QUARANTINE", "EXPIRED"),
    ("RELEASED", "ON_HOLD"),
    ("RELEASED", "CONSUMED"),
    ("RELEASED", "SHIPPED"),
    ("RELEASED", "RECALLED"),
    ("RELEASED", "EXPIRED"),
    ("ON_HOLD", "RELEASED"),
    ("ON_HOLD", "QUARANTINE"),
    ("ON_HOLD", "REJECTED"),
    ("ON_HOLD", "RECALLED"),
    ("ON_HOLD", "EXPIRED"),
    ("SHIPPED", "RECALLED"),
    ("EXPIRED", "REJECTED"),
    ("RECALLED", "REJECTED"),
}
_numbers = itertools.count(1)


@pytest.fixture
async def items(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Part P-100: revision A obsolete, B effective."""
    async with sessions() as session, session.begin():
        old = Item(part_number="P-100", revision="A", description="Part", status="obsolete")
        new = Item(part_number="P-100", revision="B", description="Part", status="effective")
        session.add_all([old, new])
        await session.flush()
        return {"A": old.id, "B": new.id}


@pytest.fixture
async def raw(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """A plain connection, no ORM: what any other program could do."""
    async with await psycopg.AsyncConnection.connect(_conninfo(database_url)) as conn:
        yield conn


def _conninfo(database_url: str) -> str:
    url = make_url(database_url)
    return f"host={url.query['host']} user={url.username} dbname={url.database}"


async def new_lot(
    sessions: async_sessionmaker[AsyncSession],
    item_id: int,
    *,
    status: str = "RELEASED",
    quantity: str = "10",
    expires_on: date | None = None,
    hold_reason: str = "",
) -> Lot:
    async with sessions() as session, session.begin():
        lot = Lot(
            lot_number=f"T-{next(_numbers):05d}",
            item_id=item_id,
            part_number="P-100",
            quantity=Decimal(quantity),
            status=status,
            expires_on=expires_on,
            hold_reason=hold_reason,
        )
        session.add(lot)
    return lot


async def test_the_database_holds_exactly_the_machine(sessions):
    async with sessions() as session:
        rows = await session.execute(
            select(LotStatusTransition.from_status, LotStatusTransition.to_status)
        )
        assert set(rows.tuples()) == MACHINE


async def test_every_transition_outside_the_machine_is_refused_and_every_other_passes(
    sessions, items, raw
):
    refused: set[tuple[str, str]] = set()
    passed: set[tuple[str, str]] = set()
    for old, new in itertools.permutations(LOT_STATUSES, 2):
        lot = await new_lot(sessions, items["B"], status=old)
        try:
            async with raw.transaction():
                await raw.execute("UPDATE lot SET status = %s WHERE id = %s", (new, lot.id))
        except psycopg.Error as err:
            assert err.sqlstate == "LL001"
            assert str(err).startswith(f"lot {lot.lot_number} cannot go from {old} to {new}")
            refused.add((old, new))
        else:
            passed.add((old, new))
    assert passed == MACHINE
    assert len(refused) == 8 * 7 - len(MACHINE)


@pytest.mark.parametrize(
    ("status", "expires_in", "why"),
    [
        ("QUARANTINE", 100, "is QUARANTINE"),
        ("ON_HOLD", 100, "is ON_HOLD (complaint CMP-7)"),
        ("REJECTED", 100, "is REJECTED"),
        ("EXPIRED", -1, "is EXPIRED"),
        ("RECALLED", 100, "is RECALLED"),
        ("RELEASED", -1, "expired on"),
    ],
)
@pytest.mark.parametrize("kind", ["issue", "ship"])
async def test_an_unreleased_or_expired_lot_is_neither_issued_nor_shipped_whoever_asks(
    sessions, items, raw, status, expires_in, why, kind
):
    verb = "issued" if kind == "issue" else "shipped"
    lot = await new_lot(
        sessions,
        items["B"],
        status=status,
        expires_on=TODAY + timedelta(days=expires_in),
        hold_reason="complaint CMP-7" if status == "ON_HOLD" else "",
    )
    # raw SQL
    with pytest.raises(psycopg.Error) as err:
        async with raw.transaction():
            await raw.execute(
                "INSERT INTO inventory_movement (lot_id, kind, quantity, reference, actor)"
                " VALUES (%s, %s, 1, 'X', 'someone')",
                (lot.id, kind),
            )
    assert err.value.sqlstate == "LL002"
    assert f"lot {lot.lot_number} {why}" in str(err.value) and f"cannot be {verb}" in str(err.value)
    # the ORM, bypassing erp.lots
    async with sessions() as session:
        with pytest.raises(DBAPIError) as orm_err:
            async with session.begin():
                session.add(
                    InventoryMovement(lot_id=lot.id, kind=kind, quantity=Decimal(1), reference="X")
                )
        assert getattr(orm_err.value.orig, "sqlstate", None) == "LL002"
    # erp.lots.move, as the processes do
    async with sessions() as session:
        with pytest.raises(LotRefused) as refused:
            async with session.begin():
                loaded = await session.get_one(Lot, lot.id)
                await move(
                    session,
                    loaded,
                    kind=kind,
                    quantity=Decimal(1),
                    reference="X",
                    actor="someone",
                    process_id=None,
                )
        assert refused.value.sqlstate == "LL002" and why in refused.value.message
    async with sessions() as session:
        unchanged = await session.get_one(Lot, lot.id)
        assert unchanged.quantity == 10 and unchanged.status == status


async def test_only_the_effective_revision_is_issued_any_revision_ships(sessions, items):
    obsolete = await new_lot(sessions, items["A"])
    async with sessions() as session:
        with pytest.raises(LotRefused) as refused:
            async with session.begin():
                lot = await session.get_one(Lot, obsolete.id)
                await move(
                    session,
                    lot,
                    kind="issue",
                    quantity=Decimal(1),
                    reference="WO-1",
                    actor="ivan",
                    process_id=None,
                )
        assert refused.value.message == (
            f"lot {obsolete.lot_number} is of a obsolete revision of P-100: "
            "only the effective revision is issued"
        )
    async with sessions() as session, session.begin():  # finished goods of an old revision ship
        lot = await session.get_one(Lot, obsolete.id)
        await move(
            session,
            lot,
            kind="ship",
            quantity=Decimal(1),
            reference="SH-1",
            actor="grace",
            process_id=None,
        )
        assert lot.quantity == 9


async def test_more_than_on_hand_is_refused(sessions, items):
    lot = await new_lot(sessions, items["B"], quantity="10")
    async with sessions() as session:
        with pytest.raises(LotRefused) as refused:
            async with session.begin():
                loaded = await session.get_one(Lot, lot.id)
                await move(
                    session,
                    loaded,
                    kind="issue",
                    quantity=Decimal("10.5"),
                    reference="WO-1",
                    actor="ivan",
                    process_id=None,
                )
        assert refused.value.sqlstate == "LL003"
        assert refused.value.message == f"lot {lot.lot_number} holds 10.0000 ea, not 10.5000"


async def test_each_status_change_is_written_with_reason_and_actor(sessions, items):
    lot = await new_lot(sessions, items["B"], status="QUARANTINE")
    async with sessions() as session, session.begin():
        loaded = await session.get_one(Lot, lot.id)
        await set_lot_status(
            session,
            loaded,
            "ON_HOLD",
            reason="seal strength 2 of 32 low",
            actor="bob",
            process_id="nc-1",
        )
        await set_lot_status(
            session, loaded, "RELEASED", reason="MRB: use as is", actor="carol", process_id="nc-1"
        )
    async with sessions() as session:
        changes = [
            (c.from_status, c.to_status, c.reason, c.changed_by, c.process_id)
            for c in await session.scalars(
                select(LotStatusChange)
                .where(LotStatusChange.lot_id == lot.id)
                .order_by(LotStatusChange.id)
            )
        ]
        released = await session.get_one(Lot, lot.id)
    assert changes == [
        (None, "QUARANTINE", "", "system", None),
        ("QUARANTINE", "ON_HOLD", "seal strength 2 of 32 low", "bob", "nc-1"),
        ("ON_HOLD", "RELEASED", "MRB: use as is", "carol", "nc-1"),
    ]
    assert released.hold_reason == ""  # released: no longer held


@pytest.mark.parametrize(("kind", "after"), [("issue", "CONSUMED"), ("ship", "SHIPPED")])
async def test_a_lot_emptied_is_consumed_or_shipped(sessions, items, kind, after):
    lot = await new_lot(sessions, items["B"], quantity="4")
    async with sessions() as session, session.begin():
        loaded = await session.get_one(Lot, lot.id)
        for reference in ("REF-1", "REF-2"):
            await move(
                session,
                loaded,
                kind=kind,
                quantity=Decimal(2),
                reference=reference,
                actor="grace",
                process_id="p-1",
            )
        assert (loaded.quantity, loaded.status) == (0, after)
    async with sessions() as session:
        last = await session.scalar(
            select(LotStatusChange)
            .where(LotStatusChange.lot_id == lot.id)
            .order_by(LotStatusChange.id.desc())
        )
    assert last is not None
    verb = "issued" if kind == "issue" else "shipped"
    assert (last.from_status, last.to_status, last.reason, last.changed_by) == (
        "RELEASED",
        after,
        f"all {verb} (REF-2)",
        "grace",
    )


HOLD = (
    "UPDATE lot SET status = 'ON_HOLD', hold_reason = 'recall R-1', status_reason = 'recall R-1',"
    " status_changed_by = 'carol' WHERE id = %s"
)
SHIP_ALL = (
    "INSERT INTO inventory_movement (lot_id, kind, quantity, reference, actor)"
    " VALUES (%s, 'ship', 10, 'SH-1', 'grace')"
)


async def _outcome(conn: psycopg.AsyncConnection, statement: str, lot_id: int) -> str:
    """Run one statement in its own transaction: 'ok' or the SQLSTATE that refused it."""
    try:
        async with conn.transaction():
            await conn.execute(statement, (lot_id,))
    except psycopg.Error as err:
        return err.sqlstate or "error"
    return "ok"


async def test_a_hold_committed_first_stops_the_shipment_waiting_for_it(
    sessions, items, database_url
):
    lot = await new_lot(sessions, items["B"])
    info = _conninfo(database_url)
    async with (
        await psycopg.AsyncConnection.connect(info) as holder,
        await psycopg.AsyncConnection.connect(info) as shipper,
    ):
        async with holder.transaction():
            await holder.execute(HOLD, (lot.id,))
            shipping = asyncio.ensure_future(_outcome(shipper, SHIP_ALL, lot.id))
            await asyncio.sleep(0.3)
            assert not shipping.done()  # it waits for the hold's transaction
        assert await shipping == "LL002"
    async with sessions() as session:
        held = await session.get_one(Lot, lot.id)
        assert (held.status, held.quantity) == ("ON_HOLD", 10)


async def test_a_shipment_committed_first_leaves_nothing_to_hold(sessions, items, database_url):
    lot = await new_lot(sessions, items["B"])
    info = _conninfo(database_url)
    async with (
        await psycopg.AsyncConnection.connect(info) as holder,
        await psycopg.AsyncConnection.connect(info) as shipper,
    ):
        async with shipper.transaction():
            await shipper.execute(SHIP_ALL, (lot.id,))
            holding = asyncio.ensure_future(_outcome(holder, HOLD, lot.id))
            await asyncio.sleep(0.3)
            assert not holding.done()
        assert await holding == "LL001"  # SHIPPED cannot go ON_HOLD (a recall can follow it)
    async with sessions() as session:
        shipped = await session.get_one(Lot, lot.id)
        assert (shipped.status, shipped.quantity) == ("SHIPPED", 0)


async def test_a_hold_racing_a_shipment_never_both_succeed(sessions, items, database_url):
    info = _conninfo(database_url)
    async with (
        await psycopg.AsyncConnection.connect(info) as holder,
        await psycopg.AsyncConnection.connect(info) as shipper,
    ):
        for _ in range(20):
            lot = await new_lot(sessions, items["B"])
            hold, ship = await asyncio.gather(
                _outcome(holder, HOLD, lot.id), _outcome(shipper, SHIP_ALL, lot.id)
            )
            assert sorted([hold, ship]) in (["LL002", "ok"], ["LL001", "ok"]), (hold, ship)
            async with sessions() as session:
                final = await session.get_one(Lot, lot.id)
            assert final.status == ("ON_HOLD" if hold == "ok" else "SHIPPED")
