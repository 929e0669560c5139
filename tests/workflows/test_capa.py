"""The CAPA process on the time-skipping server, with real activities on a real database and the
demo people: root cause, action plans sent back and approved, actions as timed tasks that
escalate, an action carried by a change request, the durable wait before the effectiveness
check, a failed check reopening the CAPA, segregation of duties, closure with a signature."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select, update
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from erp.audit import verify_chain
from erp.change_control import ChangeRequest
from erp.models import AuditEntry, Outbox, Process, Task
from erp.quality import Capa, CapaAction, CapaEffectivenessCheck, Nonconformance
from erp.seed import seed_demo
from schemas.human_task import SignatureMeaning
from schemas.quality import CapaRequest, CapaResult
from tests.helpers import decide_task, eventually
from worker import build_worker
from workflows.capa import CapaWorkflow

SIGNS = {
    "approve": SignatureMeaning.APPROVED,
    "effective": SignatureMeaning.VERIFIED,
    "close": SignatureMeaning.CLOSED,
}
RCA = {"method": "fishbone", "findings": "Mould insert 4 worn: wall 0.2 mm thin at the gate."}


def request(**changes: object) -> CapaRequest:
    values: dict[str, object] = {
        "requester": "bob",
        "title": "Kinked tubing on IS-2000",
        "problem_statement": "Three complaints of kinked tubing in lots of March (CMP-2026-017).",
        "owner": "alice",
        "source": "complaint",
    }
    return CapaRequest.model_validate(values | changes)


async def start(env, task_queue: str, pid: str, capa: CapaRequest | None = None) -> WorkflowHandle:
    capa = capa or request()
    return await env.client.start_workflow(
        CapaWorkflow.run,
        capa.model_copy(update={"process_id": pid}),
        id=pid,
        task_queue=task_queue,
    )


async def decide(client, pid: str, step: str, who: str, outcome: str, groups=(), **fields: str):  # type: ignore[no-untyped-def]
    return await decide_task(
        client, f"{pid}.{step}", who, outcome, groups=groups, sign=SIGNS.get(outcome), **fields
    )


async def refusal(client, pid: str, step: str, who: str, outcome: str, groups=(), **fields: str):  # type: ignore[no-untyped-def]
    """(kind, message) of a refused decision."""
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await decide(client, pid, step, who, outcome, groups, **fields)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.type, cause.message


async def today(env) -> date:  # type: ignore[no-untyped-def]
    return (await env.get_current_time()).astimezone(UTC).date()


def plan_line(kind: str, what: str, owner: str, due: date, change: bool = False) -> str:
    return f"{kind} | {what} | {owner} | {due.isoformat()}" + (" | change" if change else "")


async def capa_row(sessions, pid: str) -> Capa:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        found = await session.scalar(
            select(Capa).where(Capa.process_id == pid).execution_options(populate_existing=True)
        )
    assert found is not None
    return found


async def capa_in(sessions, pid: str, status: str) -> Capa | None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        found = await session.scalar(
            select(Capa).where(Capa.process_id == pid).execution_options(populate_existing=True)
        )
    return found if found is not None and found.status == status else None


async def reaches(sessions, pid: str, status: str) -> Capa:  # type: ignore[no-untyped-def]
    return await eventually(lambda: capa_in(sessions, pid, status), what=f"{pid} {status}")


async def actions_of(sessions, pid: str) -> list[CapaAction]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        capa = await session.scalar(select(Capa).where(Capa.process_id == pid))
        assert capa is not None
        return list(
            await session.scalars(
                select(CapaAction)
                .where(CapaAction.capa_id == capa.id)
                .order_by(CapaAction.plan_round, CapaAction.seq)
                .execution_options(populate_existing=True)
            )
        )


async def task_row(sessions, workflow_id: str) -> Task | None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return await session.scalar(
            select(Task)
            .where(Task.workflow_id == workflow_id)
            .execution_options(populate_existing=True)
        )


async def opened(sessions, workflow_id: str) -> Task:  # type: ignore[no-untyped-def]
    return await eventually(lambda: task_row(sessions, workflow_id), what=f"task {workflow_id}")


async def timer_started(handle: WorkflowHandle, duration: timedelta) -> None:
    """Wait until the workflow has started a durable timer of this length (then a sleep of the
    test server's clock counts from the timer's start)."""

    async def started() -> bool:
        history = await handle.fetch_history()
        return any(
            e.HasField("timer_started_event_attributes")
            and e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() == duration
            for e in history.events
        )

    await eventually(started, what=f"a timer of {duration}")


async def sleep_past_end_of(env, day: date) -> None:  # type: ignore[no-untyped-def]
    """Past the end of that day (UTC), a due time's moment, by an hour."""
    end = datetime.combine(day + timedelta(days=1), time(1), UTC)
    await env.sleep(end - await env.get_current_time())


async def through_root_cause(client, pid: str, step: str = "root-cause-1") -> None:  # type: ignore[no-untyped-def]
    await decide(client, pid, step, "alice", "recorded", **RCA)


# ---------------------------------------------------------------- the whole path


async def test_three_actions_one_escalates_then_a_90_day_wait_then_closed_with_a_signature(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "capa-three"
    day = await today(env)
    soon, later = day + timedelta(days=5), day + timedelta(days=10)
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid)
        rca = await opened(sessions, f"{pid}.root-cause-1")
        assert rca.candidate_users == ["alice"] and rca.kind == "perform"
        assert rca.spec["context"]["Problem"].startswith("Three complaints")
        await through_root_cause(env.client, pid)
        plan = "\n".join(
            [
                plan_line("corrective", "Replace mould insert 4", "alice", soon),
                plan_line("corrective", "Re-inspect stock of March lots", "ivan", soon),
                plan_line("preventive", "Add wall-thickness check to incoming", "heidi", later),
            ]
        )
        await decide(env.client, pid, "plan-r1", "alice", "submit", actions=plan)
        approval = await opened(sessions, f"{pid}.plan-approval-r1")
        assert approval.candidate_groups == ["qa-manager"] and approval.excluded_users == ["alice"]
        assert approval.spec["context"]["Action 3"] == (
            f"preventive: Add wall-thickness check to incoming — heidi, due {later}"
        )
        assert approval.spec["context"]["Root cause"] == f"fishbone: {RCA['findings']}"
        await decide(env.client, pid, "plan-approval-r1", "carol", "approve", ["qa-manager"])

        # the three actions run side by side, each a task for its owner due on its date
        tasks = [await opened(sessions, f"{pid}.action-{n}-r1") for n in (1, 2, 3)]
        assert [t.candidate_users for t in tasks] == [["alice"], ["ivan"], ["heidi"]]
        assert (
            tasks[2].title
            == f"Add wall-thickness check to incoming ({tasks[2].business_key}, action 3)"
        )
        # due at the end of its due date (the task's clock starts a moment after the CAPA's)
        end_of_due_date = datetime.combine(later + timedelta(days=1), time(0), UTC)
        assert tasks[2].due_at is not None
        assert timedelta(0) <= tasks[2].due_at - end_of_due_date < timedelta(seconds=5)
        await decide(
            env.client, pid, "action-1-r1", "alice", "done", evidence="Insert replaced, FAI OK"
        )
        await decide(
            env.client, pid, "action-2-r1", "ivan", "done", evidence="120 sets re-inspected"
        )

        # the third passes its due date: reminded before, then escalated to the QA managers
        await sleep_past_end_of(env, later)

        async def escalated() -> Task | None:
            task = await task_row(sessions, f"{pid}.action-3-r1")
            return task if task is not None and task.level == 2 else None

        late = await eventually(escalated, what="action 3 escalated")
        assert late.candidate_groups == ["qa-manager"] and late.candidate_users == ["heidi"]
        assert late.reminded_at is not None and late.status == "open"
        async with sessions() as session:
            escalation = await session.scalar(
                select(AuditEntry).where(
                    AuditEntry.action == "task.escalated", AuditEntry.entity_id == str(late.id)
                )
            )
            notice = await session.scalar(
                select(Outbox).where(Outbox.subject.startswith("Escalated (level 2)"))
            )
        assert escalation is not None
        assert escalation.reason == "overdue; escalated to level 2, group qa-manager added"
        assert notice is not None and "group:qa-manager" in notice.recipient
        assert (await capa_row(sessions, pid)).status == "actions"
        await decide(env.client, pid, "action-3-r1", "heidi", "done", evidence="SOP-QC-014 rev D")

        # a 90-day wait (the request's default): no check before, one after
        await reaches(sessions, pid, "effectiveness_wait")
        await timer_started(handle, timedelta(days=90))
        capa = await capa_row(sessions, pid)
        assert capa.effectiveness_due_on == await today(env) + timedelta(days=90)
        await env.sleep(timedelta(days=89))
        assert await task_row(sessions, f"{pid}.effectiveness-r1") is None
        assert (await capa_row(sessions, pid)).status == "effectiveness_wait"
        await env.sleep(timedelta(days=1, hours=1))
        check = await opened(sessions, f"{pid}.effectiveness-r1")
        assert check.candidate_groups == ["qa"] and check.kind == "verify"
        assert check.excluded_users == ["alice", "heidi", "ivan"]
        assert check.spec["context"]["Implemented by"] == "alice, heidi, ivan"
        await decide(
            env.client, pid, "effectiveness-r1", "bob", "effective", ["qa"],
            evidence="No kinking complaint in 90 days; 0/500 thin walls at incoming",
        )  # fmt: skip

        closure = await opened(sessions, f"{pid}.closure")
        assert closure.excluded_users == ["alice"] and closure.candidate_groups == ["qa-manager"]
        await decide(env.client, pid, "closure", "carol", "close", ["qa-manager"])
        result = await handle.result()

    assert result == CapaResult(process_id=pid, number=capa.number, status="closed", plan_rounds=1)
    capa = await capa_row(sessions, pid)
    assert capa.status == "closed" and capa.closed_at is not None
    assert (capa.rca_method, capa.rca_findings) == ("fishbone", RCA["findings"])
    actions = await actions_of(sessions, pid)
    assert [(a.seq, a.status, a.completed_by) for a in actions] == [
        (1, "completed", "alice"),
        (2, "completed", "ivan"),
        (3, "completed", "heidi"),
    ]
    assert actions[2].evidence == "SOP-QC-014 rev D" and actions[2].kind == "preventive"
    async with sessions() as session:
        process = await session.get(Process, pid)
        checks = list(await session.scalars(select(CapaEffectivenessCheck)))
        signatures = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id == capa.number, AuditEntry.action.startswith("capa."))
                .order_by(AuditEntry.id)
            )
        )
        verified = await verify_chain(session)
    assert process is not None and process.status == "completed" and process.outcome == "closed"
    assert process.current_step == "closed" and process.kind == "capa"
    assert [(c.plan_round, c.verifier, c.outcome) for c in checks] == [(1, "bob", "effective")]
    assert signatures[0] == "capa.opened" and signatures[-1] == "capa.closed"
    assert "capa.plan_recorded" in signatures and signatures.count("capa.action_completed") == 3
    assert verified.ok


async def test_a_failed_effectiveness_check_reopens_the_capa_with_a_new_plan_round(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "capa-reopen"
    due = await today(env) + timedelta(days=7)
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid)
        await through_root_cause(env.client, pid)
        plan = "\n".join(
            [
                plan_line("corrective", "Replace mould insert 4", "bob", due),
                plan_line("preventive", "Train moulders on insert wear", "ivan", due),
            ]
        )
        await decide(
            env.client,
            pid,
            "plan-r1",
            "alice",
            "submit",
            actions=plan,
            effectiveness_wait_days="30",
        )
        await decide(env.client, pid, "plan-approval-r1", "carol", "approve", ["qa-manager"])
        await decide(env.client, pid, "action-1-r1", "bob", "done", evidence="Insert replaced")
        await decide(env.client, pid, "action-2-r1", "ivan", "done", evidence="Training TR-88")
        await reaches(sessions, pid, "effectiveness_wait")
        await timer_started(handle, timedelta(days=30))
        await env.sleep(timedelta(days=30, hours=1))
        await opened(sessions, f"{pid}.effectiveness-r1")

        # bob implemented an action of this round: he may not verify it, though he is QA
        kind, message = await refusal(
            env.client, pid, "effectiveness-r1", "bob", "effective", ["qa"], evidence="fine"
        )
        assert kind == "Forbidden"
        assert message == (
            "segregation of duties: you took part in this work and may not decide this step"
        )
        await decide(
            env.client, pid, "effectiveness-r1", "carol", "not_effective", ["qa"],
            evidence="2 kinking complaints since", reason="kinks at the clamp, not at the gate",
        )  # fmt: skip

        # reopened: the owner says the root cause no longer holds, redoes it, plans round 2
        await reaches(sessions, pid, "reopened")
        holds = await opened(sessions, f"{pid}.root-cause-holds-r1")
        failure = "plan round 1 not effective (carol): kinks at the clamp, not at the gate"
        assert holds.spec["context"]["Not effective"] == failure
        await decide(env.client, pid, "root-cause-holds-r1", "alice", "redo")
        redo = await opened(sessions, f"{pid}.root-cause-2")
        assert redo.spec["context"]["Not effective"] == failure
        await decide(
            env.client, pid, "root-cause-2", "alice", "recorded",
            method="5_whys", findings="Clamp edge radius too small.",
        )  # fmt: skip
        plan_2 = await opened(sessions, f"{pid}.plan-r2")
        assert plan_2.spec["context"]["Not effective"] == failure
        assert plan_2.spec["context"]["Root cause"] == "5_whys: Clamp edge radius too small."
        assert (await handle.query(CapaWorkflow.status)).plan_rounds == 2
        later = await today(env) + timedelta(days=7)
        await decide(
            env.client, pid, "plan-r2", "alice", "submit",
            actions=plan_line("corrective", "Radius the clamp edge", "ivan", later),
            effectiveness_wait_days="10",
        )  # fmt: skip
        await decide(env.client, pid, "plan-approval-r2", "carol", "approve", ["qa-manager"])
        await decide(env.client, pid, "action-1-r2", "ivan", "done", evidence="ECN-311 done")
        await reaches(sessions, pid, "effectiveness_wait")
        await timer_started(handle, timedelta(days=10))
        await env.sleep(timedelta(days=10, hours=1))
        check = await opened(sessions, f"{pid}.effectiveness-r2")
        assert check.excluded_users == ["alice", "ivan"]  # this round's implementers and owner
        await decide(
            env.client, pid, "effectiveness-r2", "bob", "effective", ["qa"],
            evidence="No complaint in 10 days",
        )  # fmt: skip
        await decide(env.client, pid, "closure", "carol", "close", ["qa-manager"])
        result = await handle.result()

    assert result.status == "closed" and result.plan_rounds == 2
    capa = await capa_row(sessions, pid)
    assert capa.plan_round == 2 and capa.rca_method == "5_whys"
    assert [(a.plan_round, a.seq, a.owner, a.status) for a in await actions_of(sessions, pid)] == [
        (1, 1, "bob", "completed"),
        (1, 2, "ivan", "completed"),
        (2, 1, "ivan", "completed"),
    ]
    async with sessions() as session:
        checks = list(
            await session.scalars(
                select(CapaEffectivenessCheck).order_by(CapaEffectivenessCheck.plan_round)
            )
        )
        reopened = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "capa.reopened")
        )
    assert [(c.plan_round, c.verifier, c.outcome, c.reason) for c in checks] == [
        (1, "carol", "not_effective", "kinks at the clamp, not at the gate"),
        (2, "bob", "effective", ""),
    ]
    assert reopened is not None and reopened.reason == failure


async def test_a_bad_plan_comes_back_with_its_problems_and_a_rejected_plan_with_the_reason(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "capa-plan"
    day = await today(env)
    due = day + timedelta(days=20)
    good = plan_line("corrective", "Replace mould insert 4", "alice", due)
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid)
        await through_root_cause(env.client, pid)
        bad = "\n".join(
            [
                "corrective | Replace mould insert 4 | alice",
                plan_line("preventive", "Audit the moulder", "ivan", day - timedelta(days=1)),
            ]
        )
        await decide(env.client, pid, "plan-r1", "alice", "submit", actions=bad)
        again = await opened(sessions, f"{pid}.plan-r1-2")
        assert again.spec["context"]["Problems"] == (
            "line 1: expected 'kind | what | owner | YYYY-MM-DD [| change]'; "
            f"line 2: the due date {day - timedelta(days=1)} is in the past"
        )
        assert again.spec["context"]["Your last plan"] == bad
        await decide(
            env.client, pid, "plan-r1-2", "alice", "submit", actions=good,
            effectiveness_wait_days="1000",
        )  # fmt: skip
        again = await opened(sessions, f"{pid}.plan-r1-3")
        assert again.spec["context"]["Problems"] == (
            "the wait before the effectiveness check must be 1 to 730 days"
        )
        unknown = plan_line("preventive", "Audit the moulder", "zed", due)
        await decide(env.client, pid, "plan-r1-3", "alice", "submit", actions=f"{good}\n{unknown}")
        again = await opened(sessions, f"{pid}.plan-r1-4")
        assert again.spec["context"]["Problems"] == "action 2: 'zed' is not an active user"
        assert await actions_of(sessions, pid) == []  # nothing recorded from a plan with problems

        first = f"{good}\n" + plan_line("preventive", "Audit the moulder", "ivan", due)
        await decide(env.client, pid, "plan-r1-4", "alice", "submit", actions=first)
        await decide(
            env.client, pid, "plan-approval-r1-4", "carol", "reject", ["qa-manager"],
            reason="add a preventive action for the other moulds",
        )  # fmt: skip
        again = await opened(sessions, f"{pid}.plan-r1-5")
        assert again.spec["context"]["Rejected"] == (
            "by carol: add a preventive action for the other moulds"
        )
        assert again.spec["context"]["Your last plan"] == first
        assert (await capa_row(sessions, pid)).status == "planning"
        second = "\n".join(
            [good, plan_line("preventive", "Check inserts of moulds 1-8 monthly", "ivan", due)]
        )
        await decide(
            env.client, pid, "plan-r1-5", "alice", "submit", actions=second,
            effectiveness_wait_days="60",
        )  # fmt: skip
        await decide(env.client, pid, "plan-approval-r1-5", "carol", "approve", ["qa-manager"])
        await reaches(sessions, pid, "actions")
        await opened(sessions, f"{pid}.action-2-r1")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await reaches(sessions, pid, "cancelled")

    # the approved plan replaced the rejected draft; the audit trail keeps both
    actions = await actions_of(sessions, pid)
    assert [(a.seq, a.description, a.status) for a in actions] == [
        (1, "Replace mould insert 4", "cancelled"),
        (2, "Check inserts of moulds 1-8 monthly", "cancelled"),
    ]
    capa = await capa_row(sessions, pid)
    assert capa.effectiveness_wait_days == 60
    async with sessions() as session:
        recorded = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "capa.plan_recorded")
                .order_by(AuditEntry.id)
            )
        )
        open_tasks = await session.scalar(
            select(func.count()).select_from(Task).where(Task.status == "open")
        )
        process = await session.get(Process, pid)
    assert len(recorded) == 2
    assert recorded[1].before is not None
    assert [a["description"] for a in recorded[1].before["actions"]] == [
        "Replace mould insert 4",
        "Audit the moulder",
    ]
    assert open_tasks == 0
    assert process is not None and process.status == "cancelled"


async def test_an_action_carried_by_a_change_request_waits_until_the_change_is_closed(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    pid = "capa-change"
    due = await today(env) + timedelta(days=20)
    async with sessions() as session, session.begin():
        for cid, number, status in (
            ("cr-capa-open", "CR-2026-0901", "implementation"),
            ("cr-capa-gone", "CR-2026-0902", "withdrawn"),
        ):
            session.add(
                ChangeRequest(
                    id=cid,
                    number=number,
                    change_type="design",
                    title="Tubing wall 3.2 mm",
                    reason="CAPA action",
                    risk="medium",
                    requester="alice",
                    status=status,
                    revision=1,
                    required_assessments=[],
                    implementer="judy",
                    requested_effective_on=due,
                )
            )
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, request(effectiveness_wait_days=30))
        await through_root_cause(env.client, pid)
        plan = "\n".join(
            [
                plan_line("corrective", "Thicker tubing wall (rev C)", "alice", due, change=True),
                plan_line("preventive", "Train operators", "ivan", due),
            ]
        )
        await decide(env.client, pid, "plan-r1", "alice", "submit", actions=plan)
        await decide(env.client, pid, "plan-approval-r1", "carol", "approve", ["qa-manager"])
        task = await opened(sessions, f"{pid}.action-1-r1")
        assert [f["name"] for f in task.spec["fields"]] == ["change_request"]

        # an unknown change, then a withdrawn one: asked again, saying why
        await decide(env.client, pid, "action-1-r1", "alice", "done", change_request="CR-2099-0001")
        task = await opened(sessions, f"{pid}.action-1-r1-2")
        assert task.spec["context"]["Asked again because"] == (
            "there is no change request 'CR-2099-0001': name its CR number (CR-YYYY-NNNN) or its "
            "change process id"
        )
        await decide(
            env.client, pid, "action-1-r1-2", "alice", "done", change_request="cr-2026-0902"
        )
        task = await opened(sessions, f"{pid}.action-1-r1-3")
        assert task.spec["context"]["Asked again because"] == (
            "change CR-2026-0902 was withdrawn before it was closed: name the change request that "
            "carries this action now"
        )
        await decide(
            env.client, pid, "action-1-r1-3", "alice", "done", change_request="cr-capa-open"
        )
        await decide(env.client, pid, "action-2-r1", "ivan", "done", evidence="Training TR-90")

        async def waiting() -> CapaAction | None:
            action = (await actions_of(sessions, pid))[0]
            return action if action.status == "waiting_change" else None

        action = await eventually(waiting, what="action 1 waiting for the change")
        assert action.change_process_id == "cr-capa-open"
        await env.sleep(timedelta(days=2))  # polled every 6 hours: still open
        assert (await actions_of(sessions, pid))[0].status == "waiting_change"
        assert (await capa_row(sessions, pid)).status == "actions"
        async with sessions() as session, session.begin():
            await session.execute(
                update(ChangeRequest)
                .where(ChangeRequest.id == "cr-capa-open")
                .values(status="closed")
            )
        await env.sleep(timedelta(hours=6))
        await reaches(sessions, pid, "effectiveness_wait")
        action = (await actions_of(sessions, pid))[0]
        assert action.status == "completed" and action.completed_by == "alice"
        assert action.evidence == "change CR-2026-0901 (Tubing wall 3.2 mm) closed"
        await timer_started(handle, timedelta(days=30))
        await env.sleep(timedelta(days=30, hours=1))
        check = await opened(sessions, f"{pid}.effectiveness-r1")
        # the change's implementer did part of this round's work too
        assert check.excluded_users == ["alice", "ivan", "judy"]
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await reaches(sessions, pid, "cancelled")
    check = await task_row(sessions, f"{pid}.effectiveness-r1")
    assert check is not None and check.status == "cancelled"


# ---------------------------------------------------------------- start and cancellation


async def test_an_unknown_owner_is_refused_and_nothing_is_registered(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, "capa-nobody", request(owner="zed"))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "CapaRefused"
    assert cause.message == "the CAPA owner 'zed' is not an active user"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Capa)) == 0
        assert await session.get(Process, "capa-nobody") is None


async def test_a_capa_started_by_an_nc_is_linked_to_it_and_cancelled_cleanly(
    time_skipping_env, sessions, task_queue
):
    env = time_skipping_env
    await seed_demo(sessions)
    async with sessions() as session, session.begin():
        nc = Nonconformance(
            number="NC-2026-0042",
            process_id="nc-kinks",
            source="complaint",
            severity="major",
            title="Kinked tubing",
            description="Kinks near the clamp",
            reported_by="heidi",
            status="capa",
        )
        session.add(nc)
    pid = "nc-kinks.capa"
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, pid, request(nc_process_id="nc-kinks"))
        rca = await opened(sessions, f"{pid}.root-cause-1")
        assert rca.spec["context"]["Nonconformance"] == "NC-2026-0042"
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await reaches(sessions, pid, "cancelled")
    capa = await capa_row(sessions, pid)
    assert capa.nc_id == nc.id and capa.closed_at is not None
    rca = await task_row(sessions, f"{pid}.root-cause-1")
    assert rca is not None and rca.status == "cancelled"
    async with sessions() as session:
        process = await session.get(Process, pid)
    assert process is not None and process.status == "cancelled" and process.kind == "capa"


async def test_an_unknown_nc_is_refused(time_skipping_env, sessions, task_queue):
    env = time_skipping_env
    await seed_demo(sessions)
    async with build_worker(env.client, task_queue, sessions):
        handle = await start(env, task_queue, "capa-orphan", request(nc_process_id="nc-none"))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.message == "no nonconformance for process nc-none"


async def test_cancellation_at_any_moment_leaves_nothing_open(dev_env, sessions, task_queue):
    env = dev_env
    await seed_demo(sessions)
    async with build_worker(env.client, task_queue, sessions):
        for n, delay in enumerate((0.0, 0.05, 0.2, 0.5)):
            handle = await start(env, task_queue, f"capa-race-{n}-{task_queue}")
            await asyncio.sleep(delay)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()

        async def all_closed() -> bool:
            async with sessions() as session:
                open_tasks = await session.scalar(
                    select(func.count()).select_from(Task).where(Task.status == "open")
                )
                statuses = list(await session.scalars(select(Capa.status)))
                running = await session.scalar(
                    select(func.count())
                    .select_from(Process)
                    .where(Process.kind == "capa", Process.status == "running")
                )
            return open_tasks == 0 and running == 0 and all(s == "cancelled" for s in statuses)

        await eventually(all_closed, what="no open task, every registered CAPA cancelled")
