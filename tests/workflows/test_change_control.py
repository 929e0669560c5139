"""Change control on the time-skipping server, with real activities on a real database."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from erp.audit import verify_chain
from erp.change_control import ChangeAssessment, ChangeRequest, ChangeRevision
from erp.master_data import AslEntry, Document, Item
from erp.models import AuditEntry, Process, Task
from schemas.change_control import ChangeContent, ChangeRequestInput
from schemas.human_task import DecisionRequest, SignatureIntent, SignatureMeaning
from tests.helpers import eventually, seed_small_master_data
from worker import build_worker
from workflows.change_control import ChangeControlWorkflow
from workflows.human_task import HumanTaskWorkflow

SIGNS = {
    "approve": SignatureMeaning.APPROVED,
    "reject": SignatureMeaning.REJECTED,
    "verified": SignatureMeaning.VERIFIED,
    "close": SignatureMeaning.CLOSED,
}


def content(effective_in_days: int = 30) -> ChangeContent:
    return ChangeContent.model_validate(
        {
            "change_type": "design",
            "title": "Thicker tubing wall for IS-2000",
            "reason": "Kinking complaints (CMP-2026-017); rev C tubing has a 3.2 mm wall.",
            "risk": "medium",
            "affected_items": ["IS-2000"],
            "affected_documents": ["LBL-IS-2000"],
            "actions": [
                {"kind": "item_revision", "target": "TUB-100", "new_revision": "C"},
                {
                    "kind": "document_version",
                    "target": "LBL-IS-2000",
                    "new_revision": "4",
                    "changes": {"title": "Label IS-2000 (tubing rev C)"},
                },
                {
                    "kind": "asl_status",
                    "target": "SUP-A",
                    "part_number": "TUB-100",
                    "new_status": "conditional",
                    "note": "requalify for 3.2 mm wall",
                },
            ],
            "requested_effective_on": (
                date.today() + timedelta(days=effective_in_days)
            ).isoformat(),
        }
    )


async def task_id_of(client, workflow_id: str) -> int:
    async def probe():
        try:
            state = await client.get_workflow_handle(workflow_id).query(HumanTaskWorkflow.state)
        except RPCError:
            return None
        return state.task_id

    return await eventually(probe, what=f"task {workflow_id}")


async def decide(client, pid: str, step: str, who: str, outcome: str, groups=(), **fields: str):
    workflow_id = f"{pid}.{step}"
    task_id = await task_id_of(client, workflow_id)
    signature = (
        SignatureIntent(meaning=SIGNS[outcome], signer=who, printed_name=who.title())
        if outcome in SIGNS and step.startswith(("ccb", "verify", "closure"))
        else None
    )
    request = DecisionRequest(
        task_id=task_id,
        decider=who,
        decider_name=who.title(),
        outcome=outcome,
        qualifying_groups=list(groups),
        fields=fields,
        signature=signature,
    )
    return await client.get_workflow_handle(workflow_id).execute_update(
        HumanTaskWorkflow.decide, request
    )


TRIAGE = {
    "classification": "major",
    "assess_engineering": "no",
    "assess_qa": "yes",
    "assess_ra": "yes",
    "assess_production": "no",
    "assess_supply_chain": "no",
    "implementer": "ivan",
}


async def start(env, task_queue: str, pid: str, days: int = 30) -> WorkflowHandle:
    return await env.client.start_workflow(
        ChangeControlWorkflow.run,
        ChangeRequestInput(process_id=pid, requester="alice", content=content(days)),
        id=pid,
        task_queue=task_queue,
    )


async def through_assessment(client, pid: str, rev: int, triage_no: int) -> None:
    await decide(client, pid, f"triage-{triage_no}", "bob", "accept", ["qa"], **TRIAGE)
    await decide(
        client,
        pid,
        f"assess-qa-r{rev}",
        "carol",
        "acceptable",
        ["qa"],
        assessment="Incoming inspection plan needs wall-thickness check.",
    )
    await decide(
        client,
        pid,
        f"assess-ra-r{rev}",
        "erin",
        "acceptable",
        ["ra"],
        assessment="Letter-to-file; no new 510(k).",
    )


async def ccb_approve(client, pid: str, rev: int) -> None:
    await decide(client, pid, f"ccb-r{rev}", "bob", "approve", ["qa"])
    await decide(client, pid, f"ccb-r{rev}", "erin", "approve", ["ra"])
    await decide(client, pid, f"ccb-r{rev}", "carol", "approve", ["qa-manager"])


async def test_whole_path_takes_effect_on_its_date(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    await seed_small_master_data(sessions)
    pid = "cr-whole"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, days=30)
        await through_assessment(env.client, pid, 1, 1)

        async def qa_assessment():
            async with sessions() as session:
                return await session.scalar(
                    select(ChangeAssessment).where(ChangeAssessment.function == "qa")
                )

        assessment = await eventually(qa_assessment, what="assessment recorded")
        categories = assessment.impact["counts"]
        assert categories == {
            "asl": 1,
            "document": 1,
            "lot_in_stock": 1,
            "open_po": 1,
            "where_used": 1,
            "work_order": 1,
        }
        await ccb_approve(env.client, pid, 1)
        for n in (1, 2, 3):
            await decide(
                env.client, pid, f"implement-{n}-round1", "ivan", "done", evidence="ECO pack"
            )
        await eventually(
            lambda: _change_status(sessions, pid, "awaiting_effective"), what="waiting"
        )
        assert await _effective_revision(sessions, "TUB-100") == "B"  # not before its date
        await env.sleep(timedelta(days=31))
        await eventually(lambda: _change_status(sessions, pid, "verification"), what="verification")
        assert await _effective_revision(sessions, "TUB-100") == "C"
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await decide(env.client, pid, "verify-round1", "ivan", "verified", ["qa"])
        assert "took part in this work" in str(refused.value.cause)
        await decide(env.client, pid, "verify-round1", "bob", "verified", ["qa"])
        await decide(env.client, pid, "closure", "carol", "close", ["qa-manager"])
        result = await handle.result()
    assert result.status == "closed" and result.number.startswith("CR-")
    async with sessions() as session:
        items = {
            (i.revision, i.status)
            for i in await session.scalars(select(Item).where(Item.part_number == "TUB-100"))
        }
        docs = {(d.version, d.status) for d in await session.scalars(select(Document))}
        asl = await session.scalar(select(AslEntry))
        process = await session.get(Process, pid)
        master = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like("master_data.%"))
                .order_by(AuditEntry.id)
            )
        )
        chain = await verify_chain(session)
    assert items == {("B", "obsolete"), ("C", "effective")}
    assert docs == {("3", "obsolete"), ("4", "effective")}
    assert asl is not None and asl.status == "conditional"
    assert process is not None and process.status == "completed"
    assert [m.before["revision"] if m.before and "revision" in m.before else None for m in master][
        :1
    ] == ["B"]
    assert master[0].after["revision"] == "C" and master[2].before == {
        "status": "approved",
        "since_on": master[2].before["since_on"],
    }
    assert chain.ok


async def test_rejection_returns_for_revision_and_revisions_are_kept(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_small_master_data(sessions)
    pid = "cr-reject"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid)
        await through_assessment(env.client, pid, 1, 1)
        await decide(
            env.client,
            pid,
            "ccb-r1",
            "erin",
            "reject",
            ["ra"],
            reason="Add the biocompatibility rationale for the new wall.",
        )
        await decide(
            env.client,
            pid,
            "revise-r1",
            "alice",
            "resubmit",
            what_changed="Added ISO 10993 rationale",
            reason="Kinking complaints; 10993-1 rationale attached.",
        )
        await through_assessment(env.client, pid, 2, 2)
        await decide(
            env.client, pid, "ccb-r2", "bob", "reject", ["qa"], reason="Still no verification plan."
        )
        await decide(env.client, pid, "revise-r2", "alice", "withdraw")
        result = await handle.result()
    assert result.status == "withdrawn" and result.revisions == 2
    async with sessions() as session:
        revisions = list(
            await session.scalars(select(ChangeRevision).order_by(ChangeRevision.revision))
        )
        change = await session.get_one(ChangeRequest, pid)
    assert [r.revision for r in revisions] == [1, 2]
    assert revisions[1].why == "Added ISO 10993 rationale"
    assert revisions[1].content["reason"].endswith("rationale attached.")
    assert change.status == "withdrawn" and change.revision == 2


async def test_withdrawal_before_approval_cancels_cleanly(dev_env, sessions, task_queue):
    # cancellation races are tried on the real server: the time-skipping test server can refuse
    # a cancel of an activity that has just completed and leave the run stuck
    env = dev_env
    await seed_small_master_data(sessions)
    pid = f"cr-withdraw-{task_queue}"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid)
        await decide(env.client, pid, "triage-1", "bob", "accept", ["qa"], **TRIAGE)
        await task_id_of(env.client, f"{pid}.assess-qa-r1")
        await task_id_of(env.client, f"{pid}.assess-ra-r1")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await eventually(lambda: _change_status(sessions, pid, "withdrawn"), what="withdrawn")

        async def all_closed():
            async with sessions() as session:
                statuses = list(
                    await session.scalars(select(Task.status).where(Task.process_id == pid))
                )
            return statuses if "open" not in statuses else None

        statuses = await eventually(all_closed, what="tasks closed")
    assert sorted(statuses) == ["cancelled", "cancelled", "completed"]
    assert await _effective_revision(sessions, "TUB-100") == "B"


async def test_overdue_assessment_escalates(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    await seed_small_master_data(sessions)
    pid = "cr-late"
    async with build_worker(env.client, task_queue, sessions):
        await start(env, task_queue, pid)
        await decide(env.client, pid, "triage-1", "bob", "accept", ["qa"], **TRIAGE)
        await decide(
            env.client, pid, "assess-qa-r1", "carol", "acceptable", ["qa"], assessment="ok"
        )
        await task_id_of(env.client, f"{pid}.assess-ra-r1")
        await env.sleep(timedelta(days=5, hours=1))

        async def escalated():
            async with sessions() as session:
                task = await session.scalar(
                    select(Task).where(Task.workflow_id == f"{pid}.assess-ra-r1")
                )
            return task if task is not None and task.level == 2 else None

        task = await eventually(escalated, what="assessment escalated")
        assert task.candidate_groups == ["ra", "qa-manager"] and task.status == "open"


async def test_triage_naming_an_unknown_implementer_is_asked_again(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_small_master_data(sessions)
    pid = "cr-nobody"
    async with build_worker(env.client, task_queue, sessions):
        await start(env, task_queue, pid)
        await decide(
            env.client,
            pid,
            "triage-1",
            "bob",
            "accept",
            ["qa"],
            **(TRIAGE | {"implementer": "nobody"}),
        )
        second = await task_id_of(env.client, f"{pid}.triage-2")
        async with sessions() as session:
            task = await session.get_one(Task, second)
        assert "nobody" in task.spec["context"]["Triage note"]


async def _change_status(sessions, pid: str, status: str):
    async with sessions() as session:
        change = await session.get(ChangeRequest, pid, populate_existing=True)
    return change if change is not None and change.status == status else None


async def _effective_revision(sessions, part: str) -> str | None:
    async with sessions() as session:
        return await session.scalar(
            select(Item.revision).where(Item.part_number == part, Item.status == "effective")
        )


async def test_an_effective_change_is_respected_by_supply_rules(
    time_skipping_env, sessions, task_queue
):
    """From the effective moment on: no new order to a disqualified supplier, no obsolete revision."""
    from erp.master_data import SupplierCertificate
    from erp.supply_rules import revision_refusal, supplier_refusal

    env = time_skipping_env
    await seed_small_master_data(sessions)
    async with sessions() as session, session.begin():
        session.add(
            SupplierCertificate(
                supplier_id=1,
                kind="ISO 13485:2016",
                number="C-1",
                expires_on=date.today() + timedelta(days=365),
            )
        )
        old_revision = await session.scalar(select(Item.id).where(Item.revision == "B"))
    async with sessions() as session:
        assert (
            await supplier_refusal(
                session, supplier_code="SUP-A", part_number="TUB-100", on=date.today()
            )
            is None
        )
        assert await revision_refusal(session, old_revision) is None
    pid = "cr-disqualify"
    request = ChangeRequestInput(
        process_id=pid,
        requester="alice",
        content=content(0).model_copy(
            update={
                "change_type": "supplier",
                "actions": [
                    content().actions[0],
                    content().actions[2].model_copy(update={"new_status": "disqualified"}),
                ],
            }
        ),
    )
    async with build_worker(env.client, task_queue, sessions):
        await env.client.start_workflow(
            ChangeControlWorkflow.run, request, id=pid, task_queue=task_queue
        )
        await through_assessment(env.client, pid, 1, 1)
        await ccb_approve(env.client, pid, 1)
        for n in (1, 2):
            await decide(env.client, pid, f"implement-{n}-round1", "ivan", "done", evidence="done")
        await eventually(lambda: _change_status(sessions, pid, "verification"), what="effective")
    async with sessions() as session:
        refused = await supplier_refusal(
            session, supplier_code="SUP-A", part_number="TUB-100", on=date.today()
        )
        obsolete = await revision_refusal(session, old_revision)
    assert refused == "supplier SUP-A is disqualified for TUB-100"
    assert obsolete == "TUB-100 revision B is obsolete, not effective"


async def test_withdrawal_at_any_moment_leaves_nothing_open(dev_env, sessions, task_queue):
    env = dev_env
    await seed_small_master_data(sessions)
    async with build_worker(env.client, task_queue, sessions):
        for n, delay in enumerate((0.0, 0.02, 0.05, 0.1, 0.3)):
            handle = await start(env, task_queue, f"cr-race-{n}-{task_queue}")
            await asyncio.sleep(delay)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()

        async def all_closed():
            async with sessions() as session:
                tasks = list(
                    await session.scalars(select(Task.status).where(Task.status == "open"))
                )
                changes = list(await session.scalars(select(ChangeRequest.status)))
            return not tasks and all(status == "withdrawn" for status in changes)

        await eventually(all_closed, what="no open task, every registered change withdrawn")


async def test_triage_can_return_a_request_and_it_comes_back_for_triage(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_small_master_data(sessions)
    pid = "cr-returned"
    async with build_worker(env.client, task_queue, sessions):
        await start(env, task_queue, pid)
        await decide(
            env.client,
            pid,
            "triage-1",
            "bob",
            "return",
            ["qa"],
            reason="Name the complaint numbers and the affected lots.",
        )
        await decide(
            env.client,
            pid,
            "revise-r1",
            "alice",
            "resubmit",
            what_changed="Complaints and lots named",
            requested_effective_on="2030-01-31",
        )
        await decide(env.client, pid, "triage-2", "bob", "accept", ["qa"], **TRIAGE)
        await task_id_of(env.client, f"{pid}.assess-qa-r2")
        async with sessions() as session:
            change = await session.get_one(ChangeRequest, pid)
        assert change.revision == 2 and change.requested_effective_on == date(2030, 1, 31)
