"""Work orders on the time-skipping server, with real activities on the demo catalogue."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from biip.gs1_messages import GS1Message
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError

from erp.audit import verify_chain
from erp.lots import set_lot_status
from erp.master_data import Item, Lot, WorkOrder
from erp.models import AuditEntry, Process, Task
from erp.quality import Nonconformance
from erp.seed import seed_demo
from erp.supply import GenealogyEdge, Inspection, InventoryMovement, LotStatusChange, SerialNumber
from schemas.human_task import SignatureMeaning
from schemas.supply import WorkOrderRequest, WorkOrderResult
from tests.helpers import decide_task, eventually, task_by_workflow
from worker import build_worker
from workflows.work_order import WorkOrderWorkflow

TODAY = date.today()


async def add_lot(
    sessions: async_sessionmaker[AsyncSession],
    part_number: str,
    quantity: str,
    *,
    expires_in: int | None,
    status: str = "RELEASED",
    number: str,
    uom: str = "ea",
) -> None:
    """A lot of the part's effective revision, as received and released by incoming inspection."""
    async with sessions() as session, session.begin():
        item = await session.scalar(
            select(Item).where(Item.part_number == part_number, Item.status == "effective")
        )
        assert item is not None
        session.add(
            Lot(
                lot_number=number,
                item_id=item.id,
                part_number=part_number,
                quantity=Decimal(quantity),
                uom=uom,
                status=status,
                manufactured_on=TODAY - timedelta(days=30),
                expires_on=TODAY + timedelta(days=expires_in) if expires_in is not None else None,
            )
        )


async def stock_for_infusion_sets(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The demo lacks released spikes and drip chambers; add them, and a tubing lot that
    expires before the demo's one (FEFO takes it first)."""
    async with sessions() as session, session.begin():
        spikes = await session.scalar(
            select(Lot).where(Lot.part_number == "SP-0440", Lot.status == "QUARANTINE")
        )
        assert spikes is not None
        await set_lot_status(
            session,
            spikes,
            "RELEASED",
            reason="incoming inspection passed",
            actor="bob",
            process_id=None,
        )
    await add_lot(sessions, "DC-0330", "500", expires_in=900, number="DC-LATE")
    await add_lot(sessions, "DC-0330", "6", expires_in=300, number="DC-EARLY")
    await add_lot(sessions, "TB-0150", "10", expires_in=200, number="TB-EARLY", uom="m")


async def lot(sessions: async_sessionmaker[AsyncSession], number: str) -> Lot:
    async with sessions() as session:
        found = await session.scalar(select(Lot).where(Lot.lot_number == number))
        assert found is not None
        return found


async def _lot_in(
    sessions: async_sessionmaker[AsyncSession], number: str, status: str
) -> Lot | None:
    async with sessions() as session:
        found = await session.scalar(
            select(Lot).where(Lot.lot_number == number).execution_options(populate_existing=True)
        )
    return found if found is not None and found.status == status else None


async def start(env, task_queue: str, pid: str, part: str, quantity: str) -> WorkflowHandle:  # type: ignore[no-untyped-def]
    return await env.client.start_workflow(
        WorkOrderWorkflow.run,
        WorkOrderRequest(
            process_id=pid,
            requester="alice",
            part_number=part,
            quantity=Decimal(quantity),
            due_on=TODAY + timedelta(days=14),
        ),
        id=pid,
        task_queue=task_queue,
    )


async def produce(client, pid: str, step: str, produced: str, scrap: str = "0") -> None:  # type: ignore[no-untyped-def]
    await decide_task(
        client,
        f"{pid}.{step}",
        "ivan",
        "done",
        groups=["production"],
        produced_quantity=produced,
        scrap_quantity=scrap,
        notes="line 2",
    )


async def inspect_review_release(client, pid: str) -> None:  # type: ignore[no-untyped-def]
    await decide_task(
        client,
        f"{pid}.final-inspection",
        "heidi",
        "pass",
        groups=["qc"],
        sample_size="5",
        defects="0",
        results="leak test 5/5 pass",
    )
    await decide_task(
        client,
        f"{pid}.dhr-review",
        "bob",
        "reviewed",
        groups=["qa"],
        sign=SignatureMeaning.REVIEWED,
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:  # the reviewer may not release
        await decide_task(
            client,
            f"{pid}.qa-release",
            "bob",
            "release",
            groups=["qa"],
            sign=SignatureMeaning.RELEASED,
        )
    assert "took part in this work" in str(refused.value.cause)
    await decide_task(
        client,
        f"{pid}.qa-release",
        "carol",
        "release",
        groups=["qa"],
        sign=SignatureMeaning.RELEASED,
    )


async def test_infusion_sets_made_from_fefo_lots_and_released(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    await stock_for_infusion_sets(sessions)
    pid = "wo-happy"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, "IS-2000", "10")
        production = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.production-1"), what="production task"
        )
        # the picks are shown first expiry first: the early tubing lot before the demo's lot
        shown = production.spec["context"]
        tubing = [v for k, v in shown.items() if "(TB-0150)" in k]
        assert (
            tubing[0]
            == "10 m of lot TB-EARLY, expires " + (TODAY + timedelta(days=200)).isoformat()
        )
        assert tubing[1].startswith("5.5 m of lot L")
        assert [
            v.split(" of lot ")[1].split(",")[0] for k, v in shown.items() if "DC-0330" in k
        ] == [
            "DC-EARLY",
            "DC-LATE",
        ]
        await produce(env.client, pid, "production-1", "10", scrap="1")
        await inspect_review_release(env.client, pid)
        result: WorkOrderResult = await handle.result()

    assert result.status == "released" and result.number.startswith("WO-")
    assert result.quantity == 10 and result.serials == 0
    async with sessions() as session:
        finished = await session.scalar(select(Lot).where(Lot.lot_number == result.lot_number))
        assert finished is not None
        assert finished.status == "RELEASED" and finished.quantity == 10
        assert finished.origin == "production" and finished.lot_number.startswith("F")
        assert finished.manufactured_on == TODAY
        assert finished.expires_on == TODAY + timedelta(days=1095)
        work_order = await session.scalar(select(WorkOrder).where(WorkOrder.process_id == pid))
        assert work_order is not None
        assert work_order.status == "completed" and work_order.produced_quantity == 10
        assert finished.work_order_id == work_order.id
        edges = {
            parent: (quantity, wo)
            for parent, quantity, wo in await session.execute(
                select(Lot.lot_number, GenealogyEdge.quantity, GenealogyEdge.work_order_id)
                .join(Lot, Lot.id == GenealogyEdge.parent_lot_id)
                .where(GenealogyEdge.child_lot_id == finished.id)
            )
        }
        # 11 made (10 good + 1 scrap): 11 × 1.55 m = 17.05 m of tubing, 10 from the early lot
        assert edges["TB-EARLY"] == (Decimal(10), work_order.id)
        assert edges["DC-EARLY"] == (Decimal(6), work_order.id)
        assert edges["DC-LATE"] == (Decimal(5), work_order.id)
        demo_tubing = next(k for k in edges if k.startswith("L") and edges[k][0] == Decimal("7.05"))
        assert len(edges) == 9  # 7 components, two of them from two lots
        # every edge points at the issue movement that passed the database's check
        issues = await session.scalar(
            select(func.count())
            .select_from(GenealogyEdge)
            .join(InventoryMovement, InventoryMovement.id == GenealogyEdge.movement_id)
            .where(InventoryMovement.kind == "issue", InventoryMovement.reference == result.number)
        )
        assert issues == 9
        assert (await lot(sessions, "TB-EARLY")).status == "CONSUMED"
        assert (await lot(sessions, "DC-EARLY")).quantity == 0
        assert (await lot(sessions, "DC-LATE")).quantity == 495
        assert (await lot(sessions, demo_tubing)).quantity == Decimal("5992.95")
        scrap = await session.scalar(
            select(InventoryMovement.quantity).where(
                InventoryMovement.lot_id == finished.id, InventoryMovement.kind == "scrap"
            )
        )
        assert scrap == 1
        history = [
            (c.from_status, c.to_status, c.changed_by)
            for c in await session.scalars(
                select(LotStatusChange)
                .where(LotStatusChange.lot_id == finished.id)
                .order_by(LotStatusChange.id)
            )
        ]
        assert history == [(None, "QUARANTINE", "ivan"), ("QUARANTINE", "RELEASED", "carol")]
        inspection = await session.scalar(
            select(Inspection).where(Inspection.lot_id == finished.id)
        )
        assert inspection is not None
        assert (inspection.kind, inspection.outcome, inspection.inspector) == (
            "final",
            "pass",
            "heidi",
        )
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id.in_([result.number, result.lot_number]))
                .order_by(AuditEntry.id)
            )
        )
        assert actions == [
            "work_order.planned",
            "work_order.allocated",
            "work_order.produced",
            "lot.inspected",
            "lot.released",
        ]
        dhr = await session.scalar(select(Task).where(Task.workflow_id == f"{pid}.dhr-review"))
        assert dhr is not None
        context = dhr.spec["context"]
        assert context["Lot"] == result.lot_number
        assert any("TB-0150: 10 m of lot TB-EARLY" in v for v in context.values())
        assert any("LEAK-01" in v for v in context.values())  # the routing
        assert any("final pass by heidi" in v for v in context.values())
        process = await session.get(Process, pid)
        assert process is not None
        assert (process.kind, process.status, process.outcome) == (
            "work-order",
            "completed",
            "released",
        )
        assert process.business_key == result.number
        assert (await verify_chain(session)).ok


async def test_pumps_get_serials_with_udis(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "wo-pumps"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, "IP-3000", "3")
        await produce(env.client, pid, "production-1", "3")
        await inspect_review_release(env.client, pid)
        result: WorkOrderResult = await handle.result()

    assert result.status == "released" and result.serials == 3
    async with sessions() as session:
        finished = await session.scalar(select(Lot).where(Lot.lot_number == result.lot_number))
        assert finished is not None and finished.expires_on is None
        item = await session.get_one(Item, finished.item_id)
        serials = list(
            await session.scalars(
                select(SerialNumber)
                .where(SerialNumber.lot_id == finished.id)
                .order_by(SerialNumber.serial)
            )
        )
        # the demo's pumps are IP3-000001 … 000005: the series continues
        assert [s.serial for s in serials] == ["IP3-000006", "IP3-000007", "IP3-000008"]
        for serial in serials:
            assert serial.status == "in_stock"
            parsed = {e.ai.ai: e for e in GS1Message.parse_hri(serial.udi).element_strings}
            assert parsed["01"].gtin is not None and parsed["01"].value == item.gtin
            assert parsed["10"].value == finished.lot_number
            assert parsed["21"].value == serial.serial
            assert "17" not in parsed  # a pump does not expire
        parents = set(
            await session.scalars(
                select(Lot.part_number)
                .join(GenealogyEdge, GenealogyEdge.parent_lot_id == Lot.id)
                .where(GenealogyEdge.child_lot_id == finished.id)
            )
        )
        assert parents == {"PB-0710", "HS-0720", "MT-0730"}
        boards = await session.scalar(select(Lot).where(Lot.part_number == "PB-0710"))
        assert boards is not None and boards.quantity == 37


async def test_materials_short_then_retry_then_final_inspection_fails(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)  # spikes in quarantine, drip chambers on hold: nothing to issue
    pid = "wo-short"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, "IS-2000", "10")
        short = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.materials-short-1"), what="short task"
        )
        number = (await handle.query(WorkOrderWorkflow.status)).number
        assert short.title == (
            f"Materials short for {number}: SP-0440 needs 10 ea, 0 available; "
            "DC-0330 needs 10 ea, 0 available"
        )
        assert short.candidate_groups == ["production"]
        assert short.spec["escalation_chain"] == ["purchasing-manager"]
        assert short.spec["sla"] == "P1D"
        async with sessions() as session:
            work_order = await session.scalar(select(WorkOrder).where(WorkOrder.process_id == pid))
            assert work_order is not None and work_order.status == "planned"
        await stock_for_infusion_sets(sessions)  # the stock arrives and is released
        await decide_task(
            env.client, f"{pid}.materials-short-1", "alice", "retry", groups=["production"]
        )
        await produce(env.client, pid, "production-1", "10")
        await decide_task(
            env.client,
            f"{pid}.final-inspection",
            "heidi",
            "fail",
            groups=["qc"],
            sample_size="5",
            defects="2",
            reason="2 of 5 leak at the luer bond",
        )
        result: WorkOrderResult = await handle.result()
        # the work order opened a nonconformance (wo-short.nc-1) that holds the lot; it did
        # not wait for it
        finished = await eventually(
            lambda: _lot_in(sessions, result.lot_number, "ON_HOLD"), what="lot held by the NC"
        )

    assert result.status == "on_hold"
    assert result.reason == "final inspection failed: 2 of 5 leak at the luer bond"
    async with sessions() as session:
        nc = await session.scalar(
            select(Nonconformance).where(Nonconformance.process_id == f"{pid}.nc-1")
        )
        assert nc is not None and (nc.source, nc.reported_by) == ("final", "heidi")
        assert nc.origin_process_id == pid and nc.part_number == "IS-2000"
        assert finished.hold_reason == (
            f"{nc.number} Lot {result.lot_number} (IS-2000): {result.reason}"
        )
        change = await session.scalar(
            select(LotStatusChange)
            .where(LotStatusChange.lot_id == finished.id)
            .order_by(LotStatusChange.id.desc())
        )
        assert change is not None
        assert (change.to_status, change.reason, change.changed_by, change.process_id) == (
            "ON_HOLD",
            finished.hold_reason,
            "heidi",
            f"{pid}.nc-1",
        )
        inspection = await session.scalar(
            select(Inspection).where(Inspection.lot_id == finished.id)
        )
        assert inspection is not None and (inspection.outcome, inspection.defects) == ("fail", 2)
        work_order = await session.scalar(select(WorkOrder).where(WorkOrder.process_id == pid))
        assert work_order is not None and work_order.status == "completed"
        assert (
            await session.scalar(select(Task).where(Task.workflow_id == f"{pid}.dhr-review"))
            is None
        )
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(
                    AuditEntry.entity_id.in_([result.number, result.lot_number]),
                    AuditEntry.workflow_id == pid,
                )
                .order_by(AuditEntry.id)
            )
        )
        assert actions == [
            "work_order.planned",
            "work_order.materials_short",
            "work_order.allocated",
            "work_order.produced",
            "lot.inspected",
            "lot.nonconformance_raised",
        ]
        process = await session.get(Process, pid)
        assert process is not None and (process.status, process.outcome) == ("completed", "on_hold")


async def test_a_component_lot_held_since_allocation_is_refused_and_reallocated(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    await stock_for_infusion_sets(sessions)
    pid = "wo-held"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, "IS-2000", "10")
        first = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.production-1"), what="production task"
        )
        assert any("lot TB-EARLY" in v for v in first.spec["context"].values())
        async with sessions() as session, session.begin():  # a supplier notice holds the tubing
            tubing = await session.scalar(select(Lot).where(Lot.lot_number == "TB-EARLY"))
            assert tubing is not None
            await set_lot_status(
                session,
                tubing,
                "ON_HOLD",
                reason="supplier notice SN-88: kinking tubing",
                actor="carol",
                process_id=None,
            )
        await produce(env.client, pid, "production-1", "10")
        told = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.production-refused-1"), what="refusal"
        )
        reason = (
            "lot TB-EARLY is ON_HOLD (supplier notice SN-88: kinking tubing): it cannot be issued"
        )
        assert told.spec["context"]["Refused"] == reason
        assert told.candidate_groups == ["production"]
        async with sessions() as session:  # nothing was issued or made
            assert await session.scalar(select(func.count()).select_from(GenealogyEdge)) == 0
            made = await session.scalar(
                select(func.count()).select_from(Lot).where(Lot.origin == "production")
            )
            assert made == 0
            refusal = await session.scalar(
                select(AuditEntry).where(AuditEntry.action == "work_order.issue_refused")
            )
            assert refusal is not None
            assert (refusal.outcome, refusal.reason, refusal.actor) == ("refused", reason, "ivan")
        await decide_task(
            env.client,
            f"{pid}.production-refused-1",
            "ivan",
            "allocate_again",
            groups=["production"],
        )
        second = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.production-2"), what="production again"
        )
        assert second.spec["context"]["Refused"] == reason
        tubing_picks = [v for k, v in second.spec["context"].items() if "(TB-0150)" in k]
        assert len(tubing_picks) == 1 and tubing_picks[0].startswith("15.5 m of lot L")
        await produce(env.client, pid, "production-2", "10")
        await inspect_review_release(env.client, pid)
        result: WorkOrderResult = await handle.result()

    assert result.status == "released"
    async with sessions() as session:
        parents = set(
            await session.scalars(
                select(Lot.lot_number)
                .join(GenealogyEdge, GenealogyEdge.parent_lot_id == Lot.id)
                .join(WorkOrder, WorkOrder.id == GenealogyEdge.work_order_id)
                .where(WorkOrder.process_id == pid)
            )
        )
        assert "TB-EARLY" not in parents and len(parents) == 8
        held = await session.scalar(select(Lot).where(Lot.lot_number == "TB-EARLY"))
        assert held is not None and held.status == "ON_HOLD" and held.quantity == 10


async def test_a_part_without_effective_revision_or_bom_is_refused(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    async with build_worker(env.client, task_queue, sessions):
        unknown = await (await start(env, task_queue, "wo-unknown", "XX-9999", "5")).result()
        no_bom = await (await start(env, task_queue, "wo-no-bom", "TB-0150", "5")).result()

    assert unknown.status == "rejected"
    assert unknown.reason == "XX-9999 has no effective revision: nothing can be made of it"
    assert no_bom.status == "rejected"
    assert no_bom.reason == "TB-0150 revision C has no bill of materials"
    async with sessions() as session:
        for pid, result in (("wo-unknown", unknown), ("wo-no-bom", no_bom)):
            process = await session.get(Process, pid)
            assert process is not None
            assert (process.status, process.outcome) == ("failed", "rejected")
            entry = await session.scalar(
                select(AuditEntry).where(
                    AuditEntry.action == "work_order.refused", AuditEntry.entity_id == result.number
                )
            )
            assert (
                entry is not None and entry.outcome == "refused" and entry.reason == result.reason
            )
        assert (
            await session.scalar(
                select(func.count()).select_from(WorkOrder).where(WorkOrder.process_id.is_not(None))
            )
            == 0
        )


async def test_cancelled_after_production_the_unreleased_lot_is_held(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "wo-cancel"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, "IP-3000", "1")
        await produce(env.client, pid, "production-1", "1")
        await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.final-inspection"), what="inspection task"
        )
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    async with sessions() as session:
        work_order = await session.scalar(select(WorkOrder).where(WorkOrder.process_id == pid))
        assert work_order is not None and work_order.status == "cancelled"
        finished = await session.scalar(select(Lot).where(Lot.work_order_id == work_order.id))
        assert finished is not None and finished.status == "ON_HOLD"
        assert finished.hold_reason.startswith(f"{work_order.number} cancelled before release")
        process = await session.get(Process, pid)
        assert process is not None and process.status == "cancelled"
        task = await session.scalar(
            select(Task).where(Task.workflow_id == f"{pid}.final-inspection")
        )
        assert task is not None and task.status == "cancelled"
