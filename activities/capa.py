"""Activities of a CAPA: register it, move its status, record the root cause, the action plan of
each round, actions done (one through a change request it waits for), and each round's
effectiveness check.

Each write is one transaction with its audit row, keyed by the workflow id and step, so a retried
activity writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit_context import audit
from activities.process import mirror_status
from activities.records import next_number, process_record, recorded, required_process_record
from erp.change_control import ChangeRequest
from erp.db import database_now
from erp.models import AppUser, Process
from erp.quality import (
    CAPA_NUMBER,
    Capa,
    CapaAction,
    CapaEffectivenessCheck,
    Nonconformance,
)
from schemas.capa import (
    ActionPlanCheck,
    ChangeLookupInput,
    ChangeState,
    CompleteActionInput,
    LinkActionChangeInput,
    RecordActionPlanInput,
    RecordEffectivenessInput,
    RecordRootCauseInput,
    RegisterCapaInput,
    RegisterCapaResult,
    SetCapaStatusInput,
    describe_action,
)
from workflows.wording import refuse, said, said_again

# a CAPA status that ends the process, and how the process row shows it
TERMINAL = {"closed": "completed", "cancelled": "cancelled"}


def refused(message: str) -> ApplicationError:
    """A CAPA the ERP cannot open as asked (the API checks the same before starting one)."""
    return refuse("CapaRefused", message, non_retryable=True)  # a `said` keeps its template


async def active_users(session: AsyncSession, usernames: set[str]) -> set[str]:
    """Which of these usernames are active people (not system accounts)."""
    if not usernames:
        return set()
    found = await session.scalars(
        select(AppUser.username).where(
            AppUser.username.in_(usernames), AppUser.is_active, AppUser.is_system.is_(False)
        )
    )
    return set(found)


async def _capa(session: AsyncSession, process_id: str, *, lock: bool = False) -> Capa:
    return await required_process_record(session, Capa, process_id, said("CAPA"), lock=lock)


async def _action(session: AsyncSession, capa: Capa, plan_round: int, seq: int) -> CapaAction:
    action = await session.scalar(
        select(CapaAction)
        .where(
            CapaAction.capa_id == capa.id,
            CapaAction.plan_round == plan_round,
            CapaAction.seq == seq,
        )
        .with_for_update()
    )
    if action is None:
        raise ApplicationError(
            f"{capa.number} has no action {seq} in plan round {plan_round}", non_retryable=True
        )
    return action


def _action_row(action: CapaAction) -> dict[str, Any]:
    return {
        "seq": action.seq,
        "kind": action.kind,
        "description": action.description,
        "owner": action.owner,
        "due_on": action.due_on,
        "status": action.status,
        "change_process_id": action.change_process_id,
    }


class CapaActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.register_capa,
            self.set_capa_status,
            self.record_root_cause,
            self.record_action_plan,
            self.check_change_request,
            self.link_capa_action_change,
            self.complete_capa_action,
            self.record_capa_effectiveness,
        ]

    @activity.defn(name="register_capa")
    async def register_capa(self, data: RegisterCapaInput) -> RegisterCapaResult:
        """The CAPA row (CAPA-YYYY-NNNN), linked to its NC when it has one. An owner who is not
        an active user, or an NC that does not exist, is refused."""
        request = data.request
        async with self._sessions() as session, session.begin():
            existing = await process_record(session, Capa, data.process_id)
            if existing is not None:
                return await _registered(session, existing)
            if not await active_users(session, {request.owner}):
                raise refused(
                    said("the CAPA owner '%(owner)s' is not an active user", owner=request.owner)
                )
            nc = None
            if request.nc_process_id:
                nc = await session.scalar(
                    select(Nonconformance).where(Nonconformance.process_id == request.nc_process_id)
                )
                if nc is None:
                    await _nc_not_yet_registered(session, request.nc_process_id)
                    raise refused(
                        said(
                            "no nonconformance for process %(process)s",
                            process=request.nc_process_id,
                        )
                    )
            capa = Capa(
                number=await next_number(session, "CAPA", CAPA_NUMBER),
                process_id=data.process_id,
                nc_id=nc.id if nc else None,
                title=request.title,
                problem_statement=request.problem_statement,
                source=request.source,
                owner=request.owner,
                status="root_cause",
                plan_round=0,
                effectiveness_wait_days=request.effectiveness_wait_days,
                requested_by=request.requester or "system",
            )
            session.add(capa)
            await audit(
                session,
                actor=request.requester or "system",
                action="capa.opened",
                entity_type="capa",
                entity_id=capa.number,
                after={
                    "title": request.title,
                    "problem_statement": request.problem_statement,
                    "owner": request.owner,
                    "source": request.source,
                    "nonconformance": nc.number if nc else None,
                    "effectiveness_wait_days": request.effectiveness_wait_days,
                    "status": capa.status,
                },
                key=f"{data.process_id}:capa-registered",
            )
            return RegisterCapaResult(number=capa.number, nc_number=nc.number if nc else None)

    @activity.defn(name="set_capa_status")
    async def set_capa_status(self, data: SetCapaStatusInput) -> None:
        """Move the CAPA to a status (its process row follows); a round and the effectiveness
        check's due date are recorded with the status that brings them."""
        key = f"{data.process_id}:status:{data.seq}"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            capa = await process_record(session, Capa, data.process_id, lock=True)
            if capa is None:  # cancelled before it was registered: nothing to update
                return
            before = {"status": capa.status, "effectiveness_due_on": capa.effectiveness_due_on}
            capa.status = data.status
            if data.plan_round is not None:
                capa.plan_round = data.plan_round
            if data.effectiveness_due_on is not None:
                capa.effectiveness_due_on = data.effectiveness_due_on
            now = await database_now(session)
            if data.status in TERMINAL:
                capa.closed_at = now
            if data.status == "cancelled":  # actions not done will not be done
                await session.execute(
                    update(CapaAction)
                    .where(CapaAction.capa_id == capa.id, CapaAction.status != "completed")
                    .values(status="cancelled")
                )
            await mirror_status(
                session,
                data.process_id,
                step=data.status,
                ended=TERMINAL.get(data.status),
                outcome=data.status,
                at=now,
            )
            await audit(
                session,
                actor=data.actor,
                action=f"capa.{data.status}",
                entity_type="capa",
                entity_id=capa.number,
                reason=said_again(data.reason_wording, data.reason),
                before=before,
                after={
                    "status": capa.status,
                    "plan_round": capa.plan_round,
                    "effectiveness_due_on": capa.effectiveness_due_on,
                },
                key=key,
            )

    @activity.defn(name="record_root_cause")
    async def record_root_cause(self, data: RecordRootCauseInput) -> None:
        key = f"{data.process_id}:root-cause:{data.attempt}"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            capa = await _capa(session, data.process_id, lock=True)
            before = {"method": capa.rca_method, "findings": capa.rca_findings}
            capa.rca_method, capa.rca_findings = data.method, data.findings
            await audit(
                session,
                actor=data.recorded_by,
                action="capa.root_cause_recorded",
                entity_type="capa",
                entity_id=capa.number,
                before=before,
                after={"method": data.method, "findings": data.findings},
                key=key,
            )

    @activity.defn(name="record_action_plan")
    async def record_action_plan(self, data: RecordActionPlanInput) -> ActionPlanCheck:
        """The actions of a plan round, replacing the round's earlier draft (a plan sent back
        before approval); or, when an owner is not an active user, the problems and no write."""
        key = f"{data.process_id}:plan:r{data.plan_round}:{data.attempt}"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return ActionPlanCheck()
            capa = await _capa(session, data.process_id, lock=True)
            owners = {a.owner for a in data.actions}
            active = await active_users(session, owners)
            problems = [
                f"action {n}: {a.owner!r} is not an active user"
                for n, a in enumerate(data.actions, start=1)
                if a.owner not in active
            ]
            if problems:
                return ActionPlanCheck(problems=problems)
            draft = list(
                await session.scalars(
                    select(CapaAction)
                    .where(CapaAction.capa_id == capa.id, CapaAction.plan_round == data.plan_round)
                    .order_by(CapaAction.seq)
                )
            )
            before = {
                "plan_round": capa.plan_round,
                "effectiveness_wait_days": capa.effectiveness_wait_days,
                "actions": [_action_row(a) for a in draft],
            }
            if draft:
                await session.execute(
                    delete(CapaAction).where(
                        CapaAction.capa_id == capa.id, CapaAction.plan_round == data.plan_round
                    )
                )
            actions = [
                CapaAction(
                    capa_id=capa.id,
                    plan_round=data.plan_round,
                    seq=n,
                    kind=a.kind.value,
                    description=a.description,
                    owner=a.owner,
                    due_on=a.due_on,
                    status="planned",
                    evidence="",
                )
                for n, a in enumerate(data.actions, start=1)
            ]
            session.add_all(actions)
            capa.plan_round = data.plan_round
            capa.effectiveness_wait_days = data.effectiveness_wait_days
            await audit(
                session,
                actor=data.planned_by,
                action="capa.plan_recorded",
                entity_type="capa",
                entity_id=capa.number,
                reason=(
                    said(
                        "plan round %(round)s, replacing the draft sent back (attempt %(attempt)s)",
                        round=data.plan_round,
                        attempt=data.attempt,
                    )
                    if draft
                    else said("plan round %(round)s", round=data.plan_round)
                ),
                before=before,
                after={
                    "plan_round": data.plan_round,
                    "effectiveness_wait_days": data.effectiveness_wait_days,
                    "actions": [describe_action(a) for a in data.actions],
                },
                key=key,
            )
            return ActionPlanCheck()

    @activity.defn(name="check_change_request")
    async def check_change_request(self, data: ChangeLookupInput) -> ChangeState:
        """A change request by its CR number or process id, and its status (reads only)."""
        reference = data.reference.strip()
        async with self._sessions() as session:
            change = await session.scalar(
                select(ChangeRequest).where(
                    or_(ChangeRequest.id == reference, ChangeRequest.number == reference.upper())
                )
            )
        if change is None:
            return ChangeState(found=False)
        return ChangeState(
            found=True,
            process_id=change.id,
            number=change.number,
            title=change.title,
            status=change.status,
            implementer=change.implementer or "",
        )

    @activity.defn(name="link_capa_action_change")
    async def link_capa_action_change(self, data: LinkActionChangeInput) -> None:
        """The change request that carries an action: the action waits for it to close."""
        key = f"{data.process_id}:action:r{data.plan_round}:{data.seq}:change:{data.attempt}"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            capa = await _capa(session, data.process_id)
            action = await _action(session, capa, data.plan_round, data.seq)
            before = _action_row(action)
            action.change_process_id = data.change_process_id
            action.status = "waiting_change"
            await audit(
                session,
                actor=data.named_by,
                action="capa.action_change_linked",
                entity_type="capa",
                entity_id=capa.number,
                reason=said(
                    "action %(seq)s is carried by change %(change)s",
                    seq=data.seq,
                    change=data.change_number,
                ),
                before=before,
                after=_action_row(action),
                key=key,
            )

    @activity.defn(name="complete_capa_action")
    async def complete_capa_action(self, data: CompleteActionInput) -> None:
        key = f"{data.process_id}:action:r{data.plan_round}:{data.seq}:done"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            capa = await _capa(session, data.process_id)
            action = await _action(session, capa, data.plan_round, data.seq)
            before = _action_row(action)
            action.status = "completed"
            action.evidence = data.evidence
            action.completed_by = data.completed_by
            action.completed_at = await database_now(session)
            await audit(
                session,
                actor=data.completed_by,
                action="capa.action_completed",
                entity_type="capa",
                entity_id=capa.number,
                reason=said(
                    "action %(seq)s of plan round %(round)s: %(action)s",
                    seq=data.seq,
                    round=data.plan_round,
                    action=action.description,
                ),
                before=before,
                after=_action_row(action) | {"evidence": data.evidence},
                key=key,
            )

    @activity.defn(name="record_capa_effectiveness")
    async def record_capa_effectiveness(self, data: RecordEffectivenessInput) -> None:
        key = f"{data.process_id}:effectiveness:r{data.plan_round}"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            capa = await _capa(session, data.process_id)
            session.add(
                CapaEffectivenessCheck(
                    capa_id=capa.id,
                    plan_round=data.plan_round,
                    verifier=data.verifier,
                    outcome=data.outcome,
                    evidence=data.evidence,
                    reason=data.reason,
                )
            )
            await audit(
                session,
                actor=data.verifier,
                action=f"capa.{data.outcome}",
                entity_type="capa",
                entity_id=capa.number,
                reason=data.reason,
                outcome="ok",
                after={
                    "plan_round": data.plan_round,
                    "outcome": data.outcome,
                    "evidence": data.evidence,
                },
                key=key,
            )


async def _nc_not_yet_registered(session: AsyncSession, nc_process_id: str) -> None:
    """An NC reported a moment ago whose report is not written yet: a retryable error, so this
    registration tries again until it is (the API accepts such an NC by its process row)."""
    process = await session.get(Process, nc_process_id)
    if process is not None and process.kind == "nonconformance":
        raise ApplicationError(f"nonconformance {nc_process_id} is not registered yet")


async def _registered(session: AsyncSession, capa: Capa) -> RegisterCapaResult:
    nc_number = None
    if capa.nc_id is not None:
        nc = await session.get_one(Nonconformance, capa.nc_id)
        nc_number = nc.number
    return RegisterCapaResult(number=capa.number, nc_number=nc_number)
