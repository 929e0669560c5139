"""The nonconformance process on the time-skipping server, with real activities on a real database
and the demo catalogue: containment at once (and the database refusing the held lots), extension
by genealogy, investigation, the MRB's dispositions per lot with their effect on lots, stock and
movements (use as is with QA's and engineering's signatures, rework through re-inspection, return
to supplier with a SCAR on the scorecard, scrap), a lot made in house refused for a return, the
CAPA started as a linked child, the recall decision when product was shipped, closure."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError

from api.workflow_updates import refusal_message
from erp.audit import verify_chain
from erp.master_data import Lot, Supplier
from erp.models import Outbox, Process, Task
from erp.quality import Capa, Nonconformance, Scar
from erp.quality import NcLot as NcLotRow
from erp.seed import seed_demo
from erp.supply import Inspection, InventoryMovement, SupplierScorecard
from schemas.human_task import SignatureMeaning
from schemas.quality import NcSource, NonconformanceRequest, NonconformanceResult
from tests.activities.test_nonconformance_activities import (
    demo_lot,
    lot_named,
    made_from,
    nc_request,
    new_lot,
    ship_refusal,
    shipped,
)
from tests.helpers import decide_task, eventually, task_by_workflow
from ui.i18n import translate_message
from worker import build_worker
from workflows.nonconformance import NonconformanceWorkflow

APPROVED, REJECTED, RELEASED, CLOSED = (
    SignatureMeaning.APPROVED,
    SignatureMeaning.REJECTED,
    SignatureMeaning.RELEASED,
    SignatureMeaning.CLOSED,
)


async def start(
    env: Any, task_queue: str, pid: str, request: NonconformanceRequest
) -> WorkflowHandle:
    return await env.client.start_workflow(
        NonconformanceWorkflow.run,
        request.model_copy(update={"process_id": pid}),
        id=pid,
        task_queue=task_queue,
    )


async def decide(
    client: Any,
    workflow_id: str,
    who: str,
    outcome: str,
    groups: list[str],
    sign: Any = None,
    **fields: str,
) -> Any:
    return await decide_task(client, workflow_id, who, outcome, groups=groups, sign=sign, **fields)


async def status_of(
    sessions: async_sessionmaker[AsyncSession], number: str, status: str
) -> Lot | None:
    lot = await lot_named(sessions, number)
    return lot if lot.status == status else None


async def lot_becomes(sessions: async_sessionmaker[AsyncSession], number: str, status: str) -> Lot:
    return await eventually(
        lambda: status_of(sessions, number, status), what=f"lot {number} {status}"
    )


async def nc_of(sessions: async_sessionmaker[AsyncSession], pid: str) -> Nonconformance:
    async with sessions() as session:
        nc = await session.scalar(
            select(Nonconformance)
            .where(Nonconformance.process_id == pid)
            .execution_options(populate_existing=True)
        )
    assert nc is not None
    return nc


async def nc_lots(sessions: async_sessionmaker[AsyncSession], pid: str) -> dict[str, NcLotRow]:
    async with sessions() as session:
        rows = await session.execute(
            select(Lot.lot_number, NcLotRow)
            .join(NcLotRow, NcLotRow.lot_id == Lot.id)
            .join(Nonconformance, Nonconformance.id == NcLotRow.nc_id)
            .where(Nonconformance.process_id == pid)
            .order_by(NcLotRow.id)
        )
        return {number: row for number, row in rows}


async def investigate(client: Any, pid: str) -> None:
    await decide(
        client,
        f"{pid}.investigation",
        "bob",
        "done",
        ["qa"],
        findings="Luer bond adhesive cured below temperature on line 2",
        root_cause_summary="oven thermocouple drifted",
    )


async def close(client: Any, pid: str, who: str = "carol") -> None:
    await decide(client, f"{pid}.closure", who, "close", ["qa-manager"], CLOSED, summary="done")


async def test_containment_extension_use_as_is_scrap_capa_and_closure(
    time_skipping_env, sessions, task_queue
):
    """F-A (reported) and F-B share a pouch lot, F-C shares F-A's tubing lot, F-D shares
    nothing: containment holds F-A at once; extension offers F-B and F-C; QA extends."""
    env = time_skipping_env
    await seed_demo(sessions)
    tubing, connectors, pouches = [await demo_lot(sessions, n) for n in (1, 3, 7)]
    for number in ("F-A", "F-B", "F-C", "F-D"):
        await new_lot(sessions, number, quantity="100")
    await made_from(sessions, "F-A", {tubing.lot_number: "150", pouches.lot_number: "100"})
    await made_from(sessions, "F-B", {pouches.lot_number: "100"})
    await made_from(sessions, "F-C", {tubing.lot_number: "150"})
    await made_from(sessions, "F-D", {connectors.lot_number: "100"})
    pid = "nc-main"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, nc_request(["F-A"]))
        held = await lot_becomes(sessions, "F-A", "ON_HOLD")
        number = (await handle.query(NonconformanceWorkflow.status)).number
        assert held.hold_reason == f"{number} Luer bond leaks under pressure"
        assert number in await ship_refusal(sessions, "F-A")  # the database refuses it

        extension = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.extension"), what="extension task"
        )
        assert extension.candidate_groups == ["qa"]
        assert {k for k in extension.spec["context"] if k.startswith("Lot ")} == {
            "Lot F-B",
            "Lot F-C",
        }
        assert extension.spec["context"]["Lot F-B"] == "IS-2000, 100 ea, RELEASED"
        await decide(env.client, f"{pid}.extension", "bob", "extend", ["qa"])
        await lot_becomes(sessions, "F-C", "ON_HOLD")
        assert (await lot_named(sessions, "F-D")).status == "RELEASED"
        await investigate(env.client, pid)

        mrb = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.disposition-1"), what="MRB task"
        )
        assert mrb.candidate_groups == ["mrb"] and mrb.kind == "disposition"
        context = mrb.spec["context"]
        assert [context[f"lot_{n}"].split(":")[0] for n in (1, 2, 3)] == ["F-A", "F-B", "F-C"]
        assert context["Findings"] == "Luer bond adhesive cured below temperature on line 2"
        with pytest.raises(WorkflowUpdateFailedError) as unchosen:
            await decide(
                env.client,
                f"{pid}.disposition-1",
                "carol",
                "disposition",
                ["mrb"],
                APPROVED,
                lot_1="scrap",
                justification="leaks",
            )
        assert "lot_2, lot_3" in str(unchosen.value.cause)
        await decide(
            env.client,
            f"{pid}.disposition-1",
            "carol",
            "disposition",
            ["mrb"],
            APPROVED,
            lot_1="scrap",
            lot_2="use_as_is",
            lot_3="use_as_is",
            justification="F-B and F-C passed a 100 % leak test",
        )
        # use as is: engineering approves, QA rejects: back to the MRB
        await decide(
            env.client, f"{pid}.use-as-is-1", "alice", "approve", ["engineering"], APPROVED
        )
        await decide(
            env.client,
            f"{pid}.use-as-is-1",
            "bob",
            "reject",
            ["qa"],
            reason="F-C's tubing lot is the suspect one",
        )
        second = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.disposition-2"), what="second MRB round"
        )
        assert second.spec["context"]["Returned to the MRB"] == (
            "use as is not approved by bob: F-C's tubing lot is the suspect one"
        )
        assert (await lot_named(sessions, "F-A")).status == "ON_HOLD"  # nothing applied yet
        await decide(
            env.client,
            f"{pid}.disposition-2",
            "carol",
            "disposition",
            ["mrb"],
            APPROVED,
            lot_1="scrap",
            lot_2="use_as_is",
            lot_3="scrap",
            justification="F-B passed a 100 % leak test; F-C scrapped with F-A",
        )
        await decide(env.client, f"{pid}.use-as-is-2", "bob", "approve", ["qa"], APPROVED)
        await decide(
            env.client, f"{pid}.use-as-is-2", "alice", "approve", ["engineering"], APPROVED
        )
        await lot_becomes(sessions, "F-B", "RELEASED")

        # CAPA: an owner who is not a user is refused, then alice owns it
        await decide(
            env.client,
            f"{pid}.capa-decision-1",
            "carol",
            "capa_needed",
            ["qa-manager"],
            capa_owner="nobody",
            problem="Adhesive cure not controlled",
        )
        refused = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.capa-decision-2"), what="CAPA again"
        )
        assert refused.spec["context"]["Refused"] == (
            "'nobody' is not an active user who can own the CAPA"
        )
        await decide(
            env.client,
            f"{pid}.capa-decision-2",
            "carol",
            "capa_needed",
            ["qa-manager"],
            capa_owner="alice",
            problem="Adhesive cure temperature not controlled on line 2",
        )
        closure = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.closure"), what="closure task"
        )
        assert closure.spec["excluded_users"] == ["heidi"]  # the reporter
        with pytest.raises(WorkflowUpdateFailedError):  # no signature, no closure
            await decide(env.client, f"{pid}.closure", "carol", "close", ["qa-manager"])
        await close(env.client, pid)
        result: NonconformanceResult = await handle.result()

    assert result.status == "closed" and result.number == number
    assert result.held_lots == ["F-A", "F-B", "F-C"]
    assert result.dispositions == {"F-A": "scrap", "F-B": "use_as_is", "F-C": "scrap"}
    assert result.capa_process_id == f"{pid}.capa" and not result.recall_requested
    for lot_number, status, quantity in (
        ("F-A", "REJECTED", 0),
        ("F-B", "RELEASED", 100),
        ("F-C", "REJECTED", 0),
        ("F-D", "RELEASED", 100),
    ):
        lot = await lot_named(sessions, lot_number)
        assert (lot.status, lot.quantity) == (status, quantity), lot_number
    rows = await nc_lots(sessions, pid)
    assert [(n, r.role, r.status_before, r.disposition) for n, r in rows.items()] == [
        ("F-A", "affected", "RELEASED", "scrap"),
        ("F-B", "extended", "RELEASED", "use_as_is"),
        ("F-C", "extended", "RELEASED", "scrap"),
    ]
    assert rows["F-B"].decided_by == "carol; use as is approved by bob, alice"
    assert all(r.applied_at is not None for r in rows.values())
    nc = await nc_of(sessions, pid)
    assert (nc.status, nc.capa_process_id) == ("closed", f"{pid}.capa")
    assert nc.investigation.endswith("Root cause: oven thermocouple drifted")
    async with sessions() as session:
        scrapped = list(
            await session.scalars(
                select(InventoryMovement.quantity).where(
                    InventoryMovement.kind == "scrap", InventoryMovement.reference == number
                )
            )
        )
        process = await session.get_one(Process, pid)
        capa = await eventually(lambda: _capa(sessions, f"{pid}.capa"), what="the CAPA registered")
        chain = await verify_chain(session)
    assert scrapped == [Decimal(100), Decimal(100)]
    assert (process.kind, process.business_key, process.status, process.outcome) == (
        "nonconformance",
        number,
        "completed",
        "closed",
    )
    assert capa.nc_id == nc.id and capa.owner == "alice"
    assert capa.problem_statement == "Adhesive cure temperature not controlled on line 2"
    assert chain.ok


async def _capa(sessions: async_sessionmaker[AsyncSession], pid: str) -> Capa | None:
    async with sessions() as session:
        return await session.scalar(select(Capa).where(Capa.process_id == pid))


async def test_rework_through_reinspection_and_a_quarantined_lot_used_as_is(
    time_skipping_env, sessions, task_queue
):
    """Reported by carol, a QA manager: she may not close it; the closure waits for the
    quality director the task escalates to."""
    env = time_skipping_env
    await seed_demo(sessions)
    quarantined = await demo_lot(sessions, 2)  # TB-0150 in QUARANTINE, never inspected
    await new_lot(sessions, "F-RW1", quantity="50")
    await new_lot(sessions, "F-RW2", quantity="30")
    pid = "nc-rework"
    request = nc_request(
        [quarantined.lot_number, "F-RW1", "F-RW2"], reporter="carol", source=NcSource.COMPLAINT
    )
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, request)
        await investigate(env.client, pid)
        await decide(
            env.client,
            f"{pid}.disposition-1",
            "bob",
            "disposition",
            ["mrb"],
            APPROVED,
            lot_1="use_as_is",
            lot_2="rework",
            lot_3="rework",
            justification="see findings",
        )
        await decide(env.client, f"{pid}.use-as-is-1", "bob", "approve", ["qa"], APPROVED)
        await decide(
            env.client, f"{pid}.use-as-is-1", "alice", "approve", ["engineering"], APPROVED
        )
        await lot_becomes(sessions, "F-RW1", "QUARANTINE")
        assert (await lot_named(sessions, "F-RW1")).status_reason.startswith("rework under NC-")
        await lot_becomes(sessions, quarantined.lot_number, "QUARANTINE")

        await decide(
            env.client,
            f"{pid}.rework-2",
            "ivan",
            "done",
            ["production"],
            what_was_done="re-bonded all 50 luers at 65 °C",
        )
        await decide(
            env.client, f"{pid}.reinspect-2", "heidi", "pass", ["qc"], results="50/50 leak-free"
        )
        with pytest.raises(WorkflowUpdateFailedError) as reworker:
            await decide(env.client, f"{pid}.rework-release-2", "ivan", "release", ["qa"], RELEASED)
        assert "took part in this work" in str(reworker.value.cause)
        await decide(env.client, f"{pid}.rework-release-2", "bob", "release", ["qa"], RELEASED)
        await lot_becomes(sessions, "F-RW1", "RELEASED")

        await decide(
            env.client,
            f"{pid}.rework-3",
            "ivan",
            "done",
            ["production"],
            what_was_done="re-bonded",
        )
        await decide(
            env.client, f"{pid}.reinspect-3", "heidi", "fail", ["qc"], reason="3 of 30 still leak"
        )
        await lot_becomes(sessions, "F-RW2", "REJECTED")

        await decide(
            env.client,
            f"{pid}.capa-decision-1",
            "carol",
            "no_capa",
            ["qa-manager"],
            reason="one-off oven fault, covered by maintenance",
        )
        await eventually(lambda: task_by_workflow(sessions, f"{pid}.closure"), what="closure")
        with pytest.raises(WorkflowUpdateFailedError) as reporter:
            await close(env.client, pid, "carol")
        assert "segregation of duties" in str(reporter.value.cause)
        await env.sleep(timedelta(days=5, hours=1))  # escalates to the quality director
        await decide(env.client, f"{pid}.closure", "dave", "close", ["quality-director"], CLOSED)
        result = await handle.result()

    assert result.status == "closed" and result.capa_process_id is None
    assert result.dispositions == {
        quarantined.lot_number: "use_as_is",
        "F-RW1": "rework",
        "F-RW2": "rework",
    }
    rw2 = await lot_named(sessions, "F-RW2")
    assert (rw2.status, rw2.quantity) == ("REJECTED", 0)
    assert rw2.status_reason == f"scrapped under {result.number}"
    async with sessions() as session:
        inspections = list(
            await session.scalars(
                select(Inspection).where(Inspection.process_id == pid).order_by(Inspection.id)
            )
        )
    assert [(i.outcome, i.inspector, i.results["reworked_by"]) for i in inspections] == [
        ("pass", "heidi", "ivan"),
        ("fail", "heidi", "ivan"),
    ]
    assert inspections[0].results["rework"] == "re-bonded all 50 luers at 65 °C"


async def test_return_to_supplier_opens_a_scar_but_not_for_a_lot_made_in_house(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    tubing = await demo_lot(sessions, 1)  # 6000 m from SUP-0001
    await new_lot(sessions, "F-HOUSE", quantity="20")
    pid = "nc-return"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, nc_request([tubing.lot_number, "F-HOUSE"]))
        await investigate(env.client, pid)
        await decide(
            env.client,
            f"{pid}.disposition-1",
            "carol",
            "disposition",
            ["mrb"],
            APPROVED,
            lot_1="return_to_supplier",
            lot_2="return_to_supplier",
            justification="OD too big",
        )
        again = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.disposition-2"), what="back to the MRB"
        )
        assert again.spec["context"]["Returned to the MRB"] == (
            "lot(s) F-HOUSE were made in house (no supplier): they cannot be returned to a "
            "supplier; choose another disposition"
        )
        assert (await lot_named(sessions, tubing.lot_number)).status == "ON_HOLD"
        await decide(
            env.client,
            f"{pid}.disposition-2",
            "carol",
            "disposition",
            ["mrb"],
            APPROVED,
            lot_1="return_to_supplier",
            lot_2="scrap",
            justification="OD too big",
        )
        await decide(
            env.client,
            f"{pid}.capa-decision-1",
            "carol",
            "no_capa",
            ["qa-manager"],
            reason="the supplier's SCAR covers it",
        )
        await close(env.client, pid)
        result = await handle.result()

    assert result.dispositions == {tubing.lot_number: "return_to_supplier", "F-HOUSE": "scrap"}
    assert len(result.scars) == 1
    returned = await lot_named(sessions, tubing.lot_number)
    assert (returned.status, returned.quantity) == ("REJECTED", 0)
    async with sessions() as session:
        scar = await session.scalar(select(Scar).where(Scar.number == result.scars[0]))
        card = await session.scalar(
            select(SupplierScorecard)
            .join(Supplier, Supplier.id == SupplierScorecard.supplier_id)
            .where(Supplier.code == "SUP-0001")
        )
        outbox = await session.scalar(
            select(Outbox).where(Outbox.subject.startswith(result.scars[0]))
        )
        movement = await session.scalar(
            select(InventoryMovement).where(InventoryMovement.kind == "return")
        )
    assert scar is not None and scar.description == "2 of 5 sets leak at the luer bond at 20 kPa"
    assert card is not None and card.scars == 1
    assert outbox is not None and outbox.recipient == "supplier:SUP-0001"
    assert movement is not None and movement.quantity == Decimal(6000)


async def test_shipped_product_offers_a_recall_with_its_scope(
    time_skipping_env, sessions, task_queue
):
    """A board lot went into the pump lot; two pumps went to CUS-0001, one to CUS-0004. The NC
    on the boards holds them, offers the pump lot (made from them), and asks whether to recall.
    Then the NC is cancelled: the lots it held stay held."""
    env = time_skipping_env
    await seed_demo(sessions)
    boards, pumps = await demo_lot(sessions, 13), await demo_lot(sessions, 16)
    await made_from(sessions, pumps.lot_number, {boards.lot_number: "5"})
    await shipped(sessions, pumps.lot_number, "CUS-0001", "2", "SH-P1", serials=2)
    await shipped(sessions, pumps.lot_number, "CUS-0004", "1", "SH-P2", serials=1)
    pid = "nc-recall"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, nc_request([boards.lot_number]))
        await lot_becomes(sessions, boards.lot_number, "ON_HOLD")
        await decide(env.client, f"{pid}.extension", "bob", "extend", ["qa"])
        await lot_becomes(sessions, pumps.lot_number, "ON_HOLD")  # the 2 pumps still in house
        recall = await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.recall-decision"), what="recall task"
        )
        assert recall.candidate_groups == ["qa-manager"]
        context = recall.spec["context"]
        assert context["Consignees"] == (
            "CUS-0001 St. Aurelia Hospital, Central Pharmacy: 2; "
            "CUS-0004 Hudson Valley Health Network: 1"
        )
        assert context["Serials shipped"] == "3" and context["Shipped in all"] == "3"
        # the investigation runs meanwhile
        await eventually(
            lambda: task_by_workflow(sessions, f"{pid}.investigation"), what="investigation"
        )
        with pytest.raises(WorkflowUpdateFailedError):  # escalating is signed
            await decide(
                env.client,
                f"{pid}.recall-decision",
                "carol",
                "escalate_to_recall",
                ["qa-manager"],
            )
        await decide(
            env.client,
            f"{pid}.recall-decision",
            "carol",
            "escalate_to_recall",
            ["qa-manager"],
            APPROVED,
            reason="pumps may reboot during infusion",
        )
        nc = await eventually(lambda: _recall_requested(sessions, pid), what="recall requested")
        assert (await handle.query(NonconformanceWorkflow.status)).recall_requested
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await eventually(lambda: _nc_status(sessions, pid, "cancelled"), what="NC cancelled")

    scope = nc.recall_scope
    assert scope["nc_number"] == nc.number and scope["source"] == "nonconformance"
    assert scope["suspect_lots"] == [boards.lot_number, pumps.lot_number]
    assert scope["reason"] == f"{nc.number}: Luer bond leaks under pressure"
    assert [(s["shipment"], s["consignee_code"], s["serials"]) for s in scope["shipments"]] == [
        ("SH-P1", "CUS-0001", ["IP3-000001", "IP3-000002"]),
        ("SH-P2", "CUS-0004", ["IP3-000003"]),
    ]
    assert scope["shipped_quantity"] == "3" and scope["decided_by"] == "carol"
    for number in (boards.lot_number, pumps.lot_number):
        assert (await lot_named(sessions, number)).status == "ON_HOLD"
    async with sessions() as session:
        open_tasks = list(
            await session.scalars(
                select(Task.workflow_id).where(
                    Task.workflow_id.startswith(pid), Task.status == "open"
                )
            )
        )
        process = await session.get_one(Process, pid, populate_existing=True)
    assert open_tasks == []
    assert (process.status, process.current_step) == ("cancelled", "cancelled")


async def _recall_requested(
    sessions: async_sessionmaker[AsyncSession], pid: str
) -> Nonconformance | None:
    nc = await nc_of(sessions, pid)
    return nc if nc.recall_requested else None


async def _nc_status(
    sessions: async_sessionmaker[AsyncSession], pid: str, status: str
) -> Nonconformance | None:
    nc = await nc_of(sessions, pid)
    return nc if nc.status == status else None


async def test_unknown_lots_fail_the_start_naming_them(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    await seed_demo(sessions)
    async with build_worker(env.client, task_queue, sessions):
        request = nc_request(["NOPE-1"], supplier_code="SUP-9")
        handle = await start(env, task_queue, "nc-unknown", request)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert getattr(cause, "type", None) == "NcRefused"
    english = "lot(s) not known: NOPE-1; supplier SUP-9 is not known"
    assert getattr(cause, "message", "") == english
    # the activity's refusal keeps its template (and its parts') through the workflow and the
    # Temporal payloads, so a zh_Hans person reads it in Chinese
    said = refusal_message(cause)
    assert said == english
    assert (
        translate_message("zh_Hans", said) == "系统中没有以下批次：NOPE-1；系统中没有供应商 SUP-9"
    )


async def test_a_failed_incoming_inspection_opens_an_nc_that_holds_the_lot(
    time_skipping_env, sessions, task_queue
):
    """A purchase whose lot fails incoming inspection opens po-….nc-1 and goes on without
    waiting; the NC holds the lot (it cannot be issued or shipped), the MRB returns it to the
    supplier and the SCAR counts on the supplier's scorecard."""
    from datetime import date

    from tests.workflows.test_purchase import approve_small, issued, purchase, send
    from tests.workflows.test_purchase import start as start_purchase

    env = time_skipping_env
    await seed_demo(sessions)
    pid = "po-nc"
    async with build_worker(env.client, task_queue, sessions):
        order = await start_purchase(env, task_queue, pid, purchase(quantity="400"))
        await approve_small(env.client, pid)
        await issued(sessions, pid)
        received = await send(
            order,
            "goods-received",
            "gr-1",
            part_number="TB-0150",
            quantity="400",
            supplier_lot="NK-BAD-1",
            expires_on=(date.today() + timedelta(days=900)).isoformat(),
        )
        lot_number = received.data["lot_number"]
        await decide(
            env.client,
            f"{pid}.inspect-1",
            "heidi",
            "fail",
            ["qc"],
            sample_size="50",
            defects="4",
            reason="OD 4.3 mm, over tolerance",
        )
        bought = await order.result()
        assert bought.held_lots == [lot_number] and bought.status == "received"
        nc_id = f"{pid}.nc-1"
        held = await lot_becomes(sessions, lot_number, "ON_HOLD")
        nc = await nc_of(sessions, nc_id)
        assert held.hold_reason == (
            f"{nc.number} Lot {lot_number} (TB-0150) failed incoming inspection"
        )
        async with sessions() as session:
            supplier = await session.scalar(select(Supplier).where(Supplier.code == "SUP-0001"))
        assert supplier is not None and nc.supplier_id == supplier.id
        assert (nc.source, nc.reported_by, nc.origin_process_id) == ("incoming", "heidi", pid)
        assert nc.number in await ship_refusal(sessions, lot_number)

        await investigate(env.client, nc_id)
        await decide(
            env.client,
            f"{nc_id}.disposition-1",
            "carol",
            "disposition",
            ["mrb"],
            APPROVED,
            lot_1="return_to_supplier",
            justification="OD out of tolerance: the supplier's",
        )
        await decide(
            env.client,
            f"{nc_id}.capa-decision-1",
            "carol",
            "no_capa",
            ["qa-manager"],
            reason="SCAR to the supplier",
        )
        await close(env.client, nc_id)
        nc_handle = env.client.get_workflow_handle(nc_id, result_type=NonconformanceResult)
        result = await nc_handle.result()

    assert result.status == "closed" and result.dispositions == {lot_number: "return_to_supplier"}
    returned = await lot_named(sessions, lot_number)
    assert (returned.status, returned.quantity) == ("REJECTED", 0)
    async with sessions() as session:
        card = await session.scalar(
            select(SupplierScorecard).where(SupplierScorecard.supplier_id == supplier.id)
        )
        process = await session.get_one(Process, nc_id)
    assert card is not None and card.scars == 1
    assert (card.inspections, card.accepted_inspections) == (1, 0)
    assert process.kind == "nonconformance" and process.status == "completed"


async def test_a_device_history_record_not_acceptable_opens_an_nc_on_the_finished_lot(
    time_skipping_env, sessions, task_queue
):
    """The work order completes without waiting; its NC (wo-….nc-1, source final, reported by
    the DHR reviewer) holds the finished lot. Cancelled, the NC leaves the lot held."""
    from tests.workflows.test_work_order import produce
    from tests.workflows.test_work_order import start as start_work_order

    env = time_skipping_env
    await seed_demo(sessions)
    pid = "wo-nc"
    async with build_worker(env.client, task_queue, sessions):
        work_order = await start_work_order(env, task_queue, pid, "IP-3000", "2")
        await produce(env.client, pid, "production-1", "2")
        await decide(
            env.client,
            f"{pid}.final-inspection",
            "heidi",
            "pass",
            ["qc"],
            sample_size="2",
            defects="0",
        )
        await decide(
            env.client,
            f"{pid}.dhr-review",
            "bob",
            "not_acceptable",
            ["qa"],
            reason="torque record missing for step 30",
        )
        made = await work_order.result()
        assert (made.status, made.reason) == (
            "on_hold",
            "device history record not acceptable: torque record missing for step 30",
        )
        nc_id = f"{pid}.nc-1"
        held = await lot_becomes(sessions, made.lot_number, "ON_HOLD")
        nc = await nc_of(sessions, nc_id)
        assert (nc.source, nc.reported_by, nc.part_number) == ("final", "bob", "IP-3000")
        assert held.hold_reason == f"{nc.number} Lot {made.lot_number} (IP-3000): {made.reason}"
        await eventually(
            lambda: task_by_workflow(sessions, f"{nc_id}.investigation"), what="investigation"
        )
        await env.client.get_workflow_handle(nc_id).cancel()
        await eventually(lambda: _nc_status(sessions, nc_id, "cancelled"), what="NC cancelled")
    assert (await lot_named(sessions, made.lot_number)).status == "ON_HOLD"


async def test_cancellation_at_any_moment_leaves_nothing_open(dev_env, sessions, task_queue):
    """Cancelled right after the start, while registering or containing, or once the extension
    task is open: no task stays open, every NC registered is cancelled, its lots stay held."""
    import asyncio

    env = dev_env
    await seed_demo(sessions)
    pouches = await demo_lot(sessions, 7)
    for n in range(4):
        await new_lot(sessions, f"F-R{n}")
        await new_lot(sessions, f"F-S{n}")
        await made_from(sessions, f"F-R{n}", {pouches.lot_number: "10"})
        await made_from(sessions, f"F-S{n}", {pouches.lot_number: "10"})
    async with build_worker(env.client, task_queue, sessions):
        for n, delay in enumerate((0.0, 0.05, 0.2, 1.0)):
            handle = await start(
                env, task_queue, f"nc-race-{n}-{task_queue}", nc_request([f"F-R{n}"])
            )
            await asyncio.sleep(delay)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()

        async def all_closed() -> bool:
            async with sessions() as session:
                open_tasks = list(
                    await session.scalars(select(Task.workflow_id).where(Task.status == "open"))
                )
                statuses = list(await session.scalars(select(Nonconformance.status)))
            return not open_tasks and all(s == "cancelled" for s in statuses)

        await eventually(all_closed, what="no open task, every registered NC cancelled")
    async with sessions() as session:
        held = list(
            await session.scalars(
                select(Lot.lot_number)
                .join(NcLotRow, NcLotRow.lot_id == Lot.id)
                .where(Lot.status != "ON_HOLD")
            )
        )
        cancelled_tasks = list(
            await session.scalars(select(Task.step).where(Task.status == "cancelled"))
        )
    assert held == []  # whatever an NC contained before its cancellation stays held
    assert "extension" in cancelled_tasks  # the last one was cancelled at its extension task
