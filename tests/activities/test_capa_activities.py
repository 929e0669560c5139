"""CAPA activities on real PostgreSQL with the demo people: a retried write writes nothing twice,
owners are checked, a plan sent back replaces its draft, change requests are found by number or
process id."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.capa import CapaActivities
from activities.process import ProcessActivities
from erp.change_control import ChangeRequest
from erp.models import AppUser, AuditEntry, Process
from erp.quality import Capa, CapaAction, CapaEffectivenessCheck
from erp.seed import seed_demo
from schemas.activities import RegisterProcessInput
from schemas.capa import (
    ChangeLookupInput,
    CompleteActionInput,
    LinkActionChangeInput,
    RecordActionPlanInput,
    RecordEffectivenessInput,
    RecordRootCauseInput,
    RegisterCapaInput,
    SetCapaStatusInput,
)
from schemas.quality import ActionKind, CapaRequest, PlannedAction

DUE = date.today() + timedelta(days=30)
PID = "capa-act"


def capa_request(owner: str = "alice") -> CapaRequest:
    return CapaRequest(
        requester="bob",
        title="Kinked tubing on IS-2000",
        problem_statement="Three complaints of kinked tubing.",
        owner=owner,
        source="complaint",
    )


def action(description: str, owner: str, change: bool = False) -> PlannedAction:
    return PlannedAction(
        kind=ActionKind.CORRECTIVE, description=description, owner=owner, due_on=DUE, change=change
    )


async def audit_count(sessions, action_name: str) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action_name)
        )
    return int(found or 0)


async def registered(sessions) -> CapaActivities:  # type: ignore[no-untyped-def]
    await seed_demo(sessions)
    activities = CapaActivities(sessions)
    env = ActivityEnvironment()
    data = RegisterCapaInput(process_id=PID, run_id="r1", request=capa_request())
    first = await env.run(activities.register_capa, data)
    again = await env.run(activities.register_capa, data)  # a retry
    assert first == again and first.number.startswith("CAPA-") and first.nc_number is None
    await env.run(
        ProcessActivities(sessions).register_process,
        RegisterProcessInput(
            process_id=PID,
            run_id="r1",
            kind="capa",
            title=f"{first.number}: Kinked tubing",
            business_key=first.number,
            initiator="bob",
        ),
    )
    return activities


async def test_registration_retried_makes_one_capa_and_unknown_owners_are_refused(sessions):
    activities = await registered(sessions)
    async with sessions() as session:
        capas = list(await session.scalars(select(Capa)))
    assert len(capas) == 1 and capas[0].owner == "alice" and capas[0].status == "root_cause"
    assert capas[0].requested_by == "bob" and capas[0].effectiveness_wait_days == 90
    assert await audit_count(sessions, "capa.opened") == 1
    async with sessions() as session, session.begin():
        await session.execute(
            update(AppUser).where(AppUser.username == "ken").values(is_active=False)
        )
    env = ActivityEnvironment()
    for owner, pid in (("zed", "capa-zed"), ("ken", "capa-ken"), ("mes", "capa-mes")):
        with pytest.raises(ApplicationError) as refused:
            await env.run(
                activities.register_capa,
                RegisterCapaInput(process_id=pid, run_id="r1", request=capa_request(owner)),
            )
        assert refused.value.type == "CapaRefused" and refused.value.non_retryable
        assert refused.value.message == f"the CAPA owner '{owner}' is not an active user"
    # an NC reported a moment ago (its process row is there, its report not yet): try again
    async with sessions() as session, session.begin():
        session.add(
            Process(
                id="nc-new",
                run_id="r1",
                kind="nonconformance",
                title="NC being registered",
                business_key="nc-new",
                status="running",
                current_step="started",
            )
        )
    for nc_process_id, retryable in (("nc-new", True), ("nc-none", False)):
        with pytest.raises(ApplicationError) as failed:
            await env.run(
                activities.register_capa,
                RegisterCapaInput(
                    process_id=f"{nc_process_id}.capa",
                    run_id="r1",
                    request=capa_request().model_copy(update={"nc_process_id": nc_process_id}),
                ),
            )
        assert failed.value.non_retryable is not retryable
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Capa)) == 1


async def test_status_root_cause_and_effectiveness_are_written_once(sessions):
    activities = await registered(sessions)
    env = ActivityEnvironment()
    status = SetCapaStatusInput(
        process_id=PID,
        seq=1,
        status="effectiveness_wait",
        reason="actions done",
        plan_round=1,
        effectiveness_due_on=DUE,
    )
    await env.run(activities.set_capa_status, status)
    await env.run(activities.set_capa_status, status)
    root_cause = RecordRootCauseInput(
        process_id=PID, attempt=1, method="5_whys", findings="Worn insert", recorded_by="alice"
    )
    await env.run(activities.record_root_cause, root_cause)
    await env.run(activities.record_root_cause, root_cause)
    check = RecordEffectivenessInput(
        process_id=PID,
        plan_round=1,
        verifier="bob",
        outcome="not_effective",
        evidence="2 complaints",
        reason="kinks at the clamp",
    )
    await env.run(activities.record_capa_effectiveness, check)
    await env.run(activities.record_capa_effectiveness, check)
    closed = SetCapaStatusInput(process_id=PID, seq=2, status="closed", actor="carol")
    await env.run(activities.set_capa_status, closed)
    await env.run(activities.set_capa_status, closed)
    async with sessions() as session:
        capa = await session.scalar(select(Capa))
        process = await session.get(Process, PID)
        checks = list(await session.scalars(select(CapaEffectivenessCheck)))
    assert capa is not None and capa.status == "closed" and capa.closed_at is not None
    assert capa.effectiveness_due_on == DUE and capa.plan_round == 1
    assert (capa.rca_method, capa.rca_findings) == ("5_whys", "Worn insert")
    assert process is not None and process.status == "completed" and process.outcome == "closed"
    assert [(c.verifier, c.outcome, c.reason) for c in checks] == [
        ("bob", "not_effective", "kinks at the clamp")
    ]
    for name in ("capa.effectiveness_wait", "capa.root_cause_recorded", "capa.not_effective"):
        assert await audit_count(sessions, name) == 1, name
    assert await audit_count(sessions, "capa.closed") == 1


async def test_a_plan_is_recorded_once_replaced_when_sent_back_and_checked_for_owners(sessions):
    activities = await registered(sessions)
    env = ActivityEnvironment()

    def plan(attempt: int, *actions: PlannedAction) -> RecordActionPlanInput:
        return RecordActionPlanInput(
            process_id=PID,
            plan_round=1,
            attempt=attempt,
            actions=list(actions),
            effectiveness_wait_days=60,
            planned_by="alice",
        )

    unknown = plan(1, action("Replace insert", "alice"), action("Audit", "zed"))
    assert (await env.run(activities.record_action_plan, unknown)).problems == [
        "action 2: 'zed' is not an active user"
    ]
    first = plan(2, action("Replace insert", "alice"), action("Audit the moulder", "ivan"))
    assert (await env.run(activities.record_action_plan, first)).problems == []
    assert (await env.run(activities.record_action_plan, first)).problems == []  # a retry
    second = plan(3, action("Replace insert 4", "alice", change=True))
    assert (await env.run(activities.record_action_plan, second)).problems == []
    async with sessions() as session:
        rows = list(await session.scalars(select(CapaAction).order_by(CapaAction.seq)))
        capa = await session.scalar(select(Capa))
    assert [(a.plan_round, a.seq, a.description, a.status) for a in rows] == [
        (1, 1, "Replace insert 4", "planned")
    ]
    assert capa is not None and capa.effectiveness_wait_days == 60 and capa.plan_round == 1
    assert await audit_count(sessions, "capa.plan_recorded") == 2


async def test_an_action_is_linked_to_its_change_and_completed_once(sessions):
    activities = await registered(sessions)
    env = ActivityEnvironment()
    async with sessions() as session, session.begin():
        session.add(
            ChangeRequest(
                id="cr-act",
                number="CR-2026-0777",
                change_type="design",
                title="Tubing wall 3.2 mm",
                reason="CAPA action",
                risk="low",
                requester="alice",
                status="ccb",
                revision=1,
                required_assessments=[],
                implementer="ivan",
                requested_effective_on=DUE,
            )
        )
    for reference in ("CR-2026-0777", "cr-2026-0777", " cr-act "):
        found = await env.run(
            activities.check_change_request, ChangeLookupInput(reference=reference)
        )
        assert (found.found, found.process_id, found.number, found.status, found.implementer) == (
            True,
            "cr-act",
            "CR-2026-0777",
            "ccb",
            "ivan",
        )
    missing = await env.run(
        activities.check_change_request, ChangeLookupInput(reference="CR-2099-0001")
    )
    assert not missing.found
    await env.run(
        activities.record_action_plan,
        RecordActionPlanInput(
            process_id=PID,
            plan_round=1,
            attempt=1,
            actions=[action("Thicker wall", "alice", change=True)],
            effectiveness_wait_days=90,
            planned_by="alice",
        ),
    )
    link = LinkActionChangeInput(
        process_id=PID,
        plan_round=1,
        seq=1,
        attempt=1,
        change_process_id="cr-act",
        change_number="CR-2026-0777",
        named_by="alice",
    )
    await env.run(activities.link_capa_action_change, link)
    await env.run(activities.link_capa_action_change, link)
    done = CompleteActionInput(
        process_id=PID,
        plan_round=1,
        seq=1,
        evidence="change CR-2026-0777 closed",
        completed_by="alice",
    )
    await env.run(activities.complete_capa_action, done)
    await env.run(activities.complete_capa_action, done)
    async with sessions() as session:
        row = await session.scalar(select(CapaAction))
    assert row is not None and row.status == "completed" and row.change_process_id == "cr-act"
    assert row.completed_by == "alice" and row.completed_at is not None
    assert await audit_count(sessions, "capa.action_change_linked") == 1
    assert await audit_count(sessions, "capa.action_completed") == 1
    with pytest.raises(ApplicationError) as unknown:
        await env.run(activities.complete_capa_action, done.model_copy(update={"seq": 7}))
    assert unknown.value.non_retryable
