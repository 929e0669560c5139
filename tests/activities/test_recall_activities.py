"""Recall activities on real PostgreSQL with the demo catalogue: the scope is exactly the lots and
consignees reached, frozen with a stable hash recorded in its audit row; in-house stock held at
once (the database then refuses a shipment, naming the recall); widening adds a version with the
difference; a drill holds nothing; unknown lots are refused by name; the sample is deterministic.

The helpers here serve the workflow tests too."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.recall import RecallActivities, sample_order, sample_size
from erp.master_data import Lot
from erp.models import AuditEntry
from erp.recall import Recall, RecallConsignee, RecallLot, RecallScope
from erp.recall_scope import canonical_json, snapshot_hash
from erp.seed import seed_demo
from erp.supply import Customer
from schemas.recall import RecallRequest
from schemas.recall_activities import (
    HoldRecallLotsInput,
    RecallInput,
    RegisterRecallInput,
    ScopeRecallInput,
)
from tests.activities.test_nonconformance_activities import (
    demo_lot,
    lot_named,
    made_from,
    new_lot,
    ship_refusal,
    shipped,
)

ENV = ActivityEnvironment()


async def field_story(sessions: async_sessionmaker[AsyncSession]) -> str:
    """One tubing lot in three finished lots: F-1 shipped to CUS-0001 and CUS-0002 (30 left in
    house), F-2 all shipped to CUS-0002, F-3 still in house; F-4 from another tubing lot, shipped
    to CUS-0003 (outside the scope until it is widened). Returns the suspect tubing lot."""
    tubing, other = await demo_lot(sessions, 1), await demo_lot(sessions, 3)
    for number in ("F-1", "F-2", "F-3", "F-4"):
        await new_lot(sessions, number, quantity="100")
    await made_from(sessions, "F-1", {tubing.lot_number: "150"})
    await made_from(sessions, "F-2", {tubing.lot_number: "150"})
    await made_from(sessions, "F-3", {tubing.lot_number: "150"})
    await made_from(sessions, "F-4", {other.lot_number: "100"})
    await shipped(sessions, "F-1", "CUS-0001", "40", "SH-R1")
    await shipped(sessions, "F-1", "CUS-0002", "30", "SH-R2")
    await shipped(sessions, "F-2", "CUS-0002", "100", "SH-R3")
    await shipped(sessions, "F-4", "CUS-0003", "20", "SH-R4")
    return tubing.lot_number


def recall_request(lots: list[str], **fields: object) -> RecallRequest:
    values: dict[str, object] = {
        "requester": "carol",
        "suspect_lots": lots,
        "reason": "Tubing lot cracks at the luer bond under pressure",
        "source_reference": "NC-2026-0042",
    }
    return RecallRequest.model_validate(values | fields)


async def registered(
    activities: RecallActivities, pid: str, request: RecallRequest
) -> tuple[str, list[str]]:
    data = RegisterRecallInput(process_id=pid, run_id="r1", request=request)
    first = await ENV.run(activities.register_recall, data)
    assert await ENV.run(activities.register_recall, data) == first  # a retry
    return first.number, first.suspect_lots


async def scoped(activities: RecallActivities, pid: str, version: int, lots: list[str]):  # type: ignore[no-untyped-def]
    data = ScopeRecallInput(process_id=pid, version=version, lot_numbers=lots, reason="widened")
    first = await ENV.run(activities.freeze_recall_scope, data)
    assert await ENV.run(activities.freeze_recall_scope, data) == first  # a retry
    return first


async def held(activities: RecallActivities, pid: str, version: int):  # type: ignore[no-untyped-def]
    data = HoldRecallLotsInput(process_id=pid, version=version)
    first = await ENV.run(activities.hold_recall_lots, data)
    assert await ENV.run(activities.hold_recall_lots, data) == first  # a retry
    return first


async def recall_of(sessions: async_sessionmaker[AsyncSession], pid: str) -> Recall:
    async with sessions() as session:
        recall = await session.scalar(
            select(Recall).where(Recall.process_id == pid).execution_options(populate_existing=True)
        )
    assert recall is not None
    return recall


async def consignee_rows(
    sessions: async_sessionmaker[AsyncSession], pid: str
) -> dict[str, RecallConsignee]:
    async with sessions() as session:
        rows = await session.execute(
            select(Customer.code, RecallConsignee)
            .join(RecallConsignee, RecallConsignee.customer_id == Customer.id)
            .join(Recall, Recall.id == RecallConsignee.recall_id)
            .where(Recall.process_id == pid)
            .order_by(Customer.code)
            .execution_options(populate_existing=True)
        )
        return dict(rows.tuples().all())


async def test_scope_is_exactly_what_was_reached_frozen_with_a_stable_hash(sessions):
    await seed_demo(sessions)
    activities = RecallActivities(sessions)
    tubing = await field_story(sessions)
    number, suspects = await registered(activities, "rcl-1", recall_request([tubing]))
    assert number.startswith("RCL-") and suspects == [tubing]

    scope = await scoped(activities, "rcl-1", 1, [tubing])
    assert scope.consignees == ["CUS-0001", "CUS-0002"]
    assert scope.lots == 4 and scope.finished_lots == 3  # tubing + F-1..3
    assert scope.shipped_quantity == Decimal(170)
    async with sessions() as session:
        frozen = await session.scalar(select(RecallScope).where(RecallScope.version == 1))
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.idempotency_key == "rcl-1:scope-1")
        )
    assert frozen is not None and audit is not None
    # the hash is the SHA-256 of the canonical snapshot, recorded in the audit row
    assert frozen.snapshot_hash == snapshot_hash(frozen.snapshot) == scope.snapshot_hash
    assert audit.after is not None and audit.after["snapshot_hash"] == scope.snapshot_hash
    assert canonical_json(frozen.snapshot).startswith('{"consignees":[{"code":"CUS-0001"')
    assert [lot["lot_number"] for lot in frozen.snapshot["lots"]] == sorted(
        ["F-1", "F-2", "F-3", tubing]
    )
    cus2 = frozen.snapshot["consignees"][1]
    assert cus2["quantity"] == "130"
    assert [(lot["lot_number"], lot["quantity"], lot["shipments"]) for lot in cus2["lots"]] == [
        ("F-1", "30", ["SH-R2"]),
        ("F-2", "100", ["SH-R3"]),
    ]
    rows = await consignee_rows(sessions, "rcl-1")
    assert {code: row.shipped_quantity for code, row in rows.items()} == {
        "CUS-0001": Decimal(40),
        "CUS-0002": Decimal(130),
    }
    recall = await recall_of(sessions, "rcl-1")
    assert recall.scope_hash == scope.snapshot_hash and recall.scoped_at is not None

    # the same data gives the same hash: a second recall of the same lot
    await registered(activities, "rcl-2", recall_request([tubing]))
    assert (await scoped(activities, "rcl-2", 1, [tubing])).snapshot_hash == scope.snapshot_hash


async def test_hold_at_once_then_the_database_refuses_a_shipment_naming_the_recall(sessions):
    await seed_demo(sessions)
    activities = RecallActivities(sessions)
    tubing = await field_story(sessions)
    number, _ = await registered(activities, "rcl-1", recall_request([tubing]))
    await scoped(activities, "rcl-1", 1, [tubing])

    hold = await held(activities, "rcl-1", 1)
    assert hold.held == sorted(["F-1", "F-3", tubing]) and hold.would_hold == []
    assert hold.not_in_house == ["F-2"]  # all shipped
    for lot in ("F-1", "F-3", tubing):
        assert (await lot_named(sessions, lot)).status == "ON_HOLD"
    assert f"recall {number}" in await ship_refusal(sessions, "F-1")
    assert (await lot_named(sessions, "F-4")).status == "RELEASED"  # outside the scope
    async with sessions() as session:
        notes = dict(
            (
                await session.execute(
                    select(Lot.lot_number, RecallLot.note).join(Lot, Lot.id == RecallLot.lot_id)
                )
            )
            .tuples()
            .all()
        )
    assert notes["F-1"] == "held (was RELEASED)"
    assert notes["F-2"].startswith("SHIPPED")
    assert (await recall_of(sessions, "rcl-1")).held_at is not None


async def test_widening_adds_a_version_with_the_difference(sessions):
    await seed_demo(sessions)
    activities = RecallActivities(sessions)
    tubing = await field_story(sessions)
    other = (await demo_lot(sessions, 3)).lot_number
    await registered(activities, "rcl-1", recall_request([tubing]))
    first = await scoped(activities, "rcl-1", 1, [tubing])
    await held(activities, "rcl-1", 1)

    with pytest.raises(ApplicationError) as unknown:
        await ENV.run(
            activities.freeze_recall_scope,
            ScopeRecallInput(process_id="rcl-1", version=2, lot_numbers=["NOPE-1"]),
        )
    assert unknown.value.type == "Invalid" and "NOPE-1" in str(unknown.value)

    second = await scoped(activities, "rcl-1", 2, [other])
    assert second.version == 2 and second.snapshot_hash != first.snapshot_hash
    assert second.lots_added == sorted([other, "F-4"])
    assert second.consignees_added == ["CUS-0003"]
    assert second.consignees == ["CUS-0001", "CUS-0002", "CUS-0003"]
    async with sessions() as session:
        version = await session.scalar(select(RecallScope).where(RecallScope.version == 2))
    assert version is not None and version.reason == "widened"
    assert version.difference == {
        "suspect_lots_added": [other],
        "lots_added": sorted([other, "F-4"]),
        "consignees_added": ["CUS-0003"],
        "consignees_changed": [],
    }
    hold = await held(activities, "rcl-1", 2)
    assert hold.held == sorted(["F-4", other])  # F-4: 80 of 100 still in house
    assert (await recall_of(sessions, "rcl-1")).scope_version == 2


async def test_a_drill_holds_nothing_and_unknown_lots_are_refused(sessions):
    await seed_demo(sessions)
    activities = RecallActivities(sessions)
    tubing = await field_story(sessions)
    with pytest.raises(ApplicationError) as refused:
        await ENV.run(
            activities.register_recall,
            RegisterRecallInput(
                process_id="rcl-x", run_id="r", request=recall_request([tubing, "NOPE-9"])
            ),
        )
    assert refused.value.type == "RecallRefused" and "NOPE-9" in str(refused.value)

    number, _ = await registered(activities, "drl-1", recall_request([tubing], drill=True))
    assert number.startswith("DRL-")
    await scoped(activities, "drl-1", 1, [tubing])
    hold = await held(activities, "drl-1", 1)
    assert hold.held == [] and hold.would_hold == sorted(["F-1", "F-3", tubing])
    for lot in ("F-1", "F-3", tubing):
        assert (await lot_named(sessions, lot)).status == "RELEASED"
    recall = await recall_of(sessions, "drl-1")
    assert recall.held_at is not None and recall.held_at >= recall.initiated_at


def test_the_sample_is_deterministic_and_never_empty():
    assert sample_size(0, 10) == 0 and sample_size(5, 0) == 0
    assert sample_size(5, 2) == 1 and sample_size(30, 10) == 3 and sample_size(4, 50) == 2
    codes = [f"CUS-{n:04d}" for n in range(1, 11)]
    order = sorted(codes, key=lambda c: sample_order("RCL-2026-0001", c))
    assert order == sorted(codes, key=lambda c: sample_order("RCL-2026-0001", c))
    assert order != sorted(codes, key=lambda c: sample_order("RCL-2026-0002", c))


async def test_report_clock_counts_working_days_from_initiation(sessions):
    from erp.business_calendar import add_working_days

    await seed_demo(sessions)
    activities = RecallActivities(sessions, holidays_country="US")
    tubing = await field_story(sessions)
    await registered(activities, "rcl-1", recall_request([tubing]))
    clock = await ENV.run(activities.start_report_clock, RecallInput(process_id="rcl-1"))
    recall = await recall_of(sessions, "rcl-1")
    assert clock.report_due_on == add_working_days(recall.initiated_at.date(), 10, "US")
    assert recall.report_due_on == clock.report_due_on
    assert clock.due_at.date() > clock.report_due_on  # the end of the due day
