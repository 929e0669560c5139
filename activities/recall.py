"""Activities of the recall process (21 CFR 7 subpart C, 21 CFR 806): the recall registered, its
scope frozen (and widened), in-house stock held, the health hazard evaluation, classification and
strategy recorded, the Part 806 report clock, effectiveness measured and sampled checks recorded,
the periodic status report, termination and the status.

Each write commits its business rows and its audit row in one transaction, keyed by the process
id and the step, so a retried activity writes nothing twice (a retry gets the first answer).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit_context import audit
from activities.records import (
    change_lot_status,
    held_also,
    next_number,
    recorded_answer,
    required_process_record,
    set_record_status,
)
from erp.audit import already_recorded
from erp.business_calendar import add_working_days
from erp.db import database_now
from erp.master_data import Lot
from erp.models import Outbox
from erp.recall import (
    CLASSES,
    DEPTHS,
    EFFECTIVENESS_LEVELS,
    EFFECTIVENESS_TARGETS,
    RECALL_NUMBER,
    Recall,
    RecallConsignee,
    RecallLot,
    RecallScope,
)
from erp.recall_scope import (
    FrozenScope,
    compute_scope,
    difference,
    effectiveness,
    scope_figures,
)
from erp.supply import Customer
from schemas.recall_activities import (
    Effectiveness,
    HoldRecallLotsInput,
    RecallHold,
    RecallInput,
    RecallTimes,
    RecordCheckInput,
    RecordClassificationInput,
    RecordHazardInput,
    RecordReportInput,
    RecordStrategyInput,
    RecordTerminationInput,
    RegisteredRecall,
    RegisterRecallInput,
    ReportClock,
    SampledChecks,
    ScopeRecallInput,
    ScopeVersion,
    SetRecallStatusInput,
    StatusReportInput,
)
from workflows.wording import refuse, said, said_again

REPORT_WORKING_DAYS = 10  # 21 CFR 806.10(b)
TERMINAL = {"closed": "completed", "cancelled": "cancelled"}
IN_HOUSE = ("QUARANTINE", "RELEASED", "ON_HOLD")


def _refused(message: str, kind: str = "RecallRefused") -> ApplicationError:
    """Non-retryable, with the message's template (a `said`) so the page translates it."""
    return refuse(kind, message, non_retryable=True)


async def _recall(session: AsyncSession, process_id: str) -> Recall:
    """The process's recall, locked for this transaction."""
    return await required_process_record(session, Recall, process_id, said("recall"), lock=True)


async def _lots_named(session: AsyncSession, numbers: list[str]) -> dict[str, Lot]:
    found = await session.scalars(select(Lot).where(Lot.lot_number.in_(numbers)))
    return {lot.lot_number: lot for lot in found}


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if end is not None else None


def times_of(recall: Recall) -> RecallTimes:
    return RecallTimes(
        time_to_scope=_seconds(recall.initiated_at, recall.scoped_at),
        time_to_hold=_seconds(recall.initiated_at, recall.held_at),
        time_to_notify=_seconds(recall.initiated_at, recall.notified_at),
    )


def sample_order(number: str, code: str) -> str:
    """Where a consignee falls in the sample: a hash of the recall number and its code, so the
    sample is the same whenever it is drawn, and nobody picks it."""
    return hashlib.sha256(f"{number}:{code}".encode()).hexdigest()


def sample_size(consignees: int, percent: int) -> int:
    """At least one consignee when the level asks for any."""
    if not consignees or not percent:
        return 0
    return min(consignees, max(1, math.ceil(consignees * percent / 100)))


class RecallActivities:
    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], holidays_country: str = "US"
    ) -> None:
        self._sessions = session_factory
        self._country = holidays_country

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.register_recall,
            self.freeze_recall_scope,
            self.hold_recall_lots,
            self.record_health_hazard,
            self.record_classification,
            self.record_strategy_decision,
            self.start_report_clock,
            self.record_recall_report,
            self.record_recall_notified,
            self.measure_effectiveness,
            self.sample_effectiveness_checks,
            self.record_effectiveness_check,
            self.write_recall_status_report,
            self.record_termination,
            self.set_recall_status,
        ]

    # ------------------------------------------------------------ registration

    @activity.defn(name="register_recall")
    async def register_recall(self, data: RegisterRecallInput) -> RegisteredRecall:
        """The recall row (RCL-YYYY-NNNN; DRL-YYYY-NNNN for a drill), initiated now (database
        time). Suspect lots that are not known are refused (non-retryable RecallRefused naming
        them), audited as refused."""
        request, pid = data.request, data.process_id
        async with self._sessions() as session, session.begin():
            existing = await session.scalar(select(Recall).filter_by(process_id=pid))
            if existing is None:
                lots = await _lots_named(session, request.suspect_lots)
                missing = [n for n in dict.fromkeys(request.suspect_lots) if n not in lots]
                if not missing:
                    existing = await self._register(session, data)
                elif not await already_recorded(session, f"{pid}:refused"):
                    await audit(
                        session,
                        actor=request.requester or "system",
                        action="recall.refused",
                        entity_type="recall",
                        entity_id=pid,
                        key=f"{pid}:refused",
                        outcome="refused",
                        reason=said("lot(s) not known: %(lots)s", lots=", ".join(missing)),
                        after=request.model_dump(mode="json"),
                    )
            if existing is not None:
                return RegisteredRecall(
                    number=existing.number,
                    drill=existing.drill,
                    initiated_at=existing.initiated_at,
                    suspect_lots=list(dict.fromkeys(request.suspect_lots)),
                )
        raise _refused(said("lot(s) not known: %(lots)s", lots=", ".join(missing)))

    @staticmethod
    async def _register(session: AsyncSession, data: RegisterRecallInput) -> Recall:
        request = data.request
        number = await next_number(session, "DRL" if request.drill else "RCL", RECALL_NUMBER)
        recall = Recall(
            number=number,
            process_id=data.process_id,
            drill=request.drill,
            reason=request.reason,
            source=request.source.value,
            source_reference=request.source_reference,
            requested_by=request.requester or "system",
            status="scoping",
            initiated_at=await database_now(session),
        )
        session.add(recall)
        await audit(
            session,
            actor=recall.requested_by,
            action="recall.initiated",
            entity_type="recall",
            entity_id=number,
            key=f"{data.process_id}:registered",
            after=request.model_dump(mode="json") | {"number": number},
        )
        return recall

    # ------------------------------------------------------------ scope

    @activity.defn(name="freeze_recall_scope")
    async def freeze_recall_scope(self, data: ScopeRecallInput) -> ScopeVersion:
        """One scope version in one transaction: the forward trace from the suspect lots (for a
        widening: the earlier ones and those named), its snapshot and hash as recall_scope, the
        difference from the version before, the recall_lot and recall_consignee rows it adds
        (a consignee already in scope gets what it received updated), the audit row with the
        hash. Lots that are not known are refused (non-retryable, type Invalid)."""
        key = f"{data.process_id}:scope-{data.version}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, ScopeVersion, "version")
            if earlier is not None:
                return earlier
            recall = await _recall(session, data.process_id)
            if recall.scope_version >= data.version:
                raise _refused(
                    said(
                        "scope version %(version)s of %(number)s exists",
                        version=data.version,
                        number=recall.number,
                    )
                )
            previous = await session.scalar(
                select(RecallScope).where(
                    RecallScope.recall_id == recall.id,
                    RecallScope.version == recall.scope_version,
                )
            )
            before: dict[str, Any] = previous.snapshot if previous else {}
            named = [n.strip() for n in data.lot_numbers if n.strip()]
            wanted = list(dict.fromkeys([*before.get("suspect_lots", []), *named]))
            lots = await _lots_named(session, wanted)
            missing = [n for n in wanted if n not in lots]
            if missing:
                raise _refused(
                    said("lot(s) not known: %(lots)s", lots=", ".join(missing)), "Invalid"
                )
            frozen = await compute_scope(session, list(lots.values()))
            changes = difference(before, frozen.snapshot)
            now = await database_now(session)
            session.add(
                RecallScope(
                    recall_id=recall.id,
                    version=data.version,
                    snapshot=frozen.snapshot,
                    snapshot_hash=frozen.snapshot_hash,
                    difference=changes if data.version > 1 else {},
                    reason=data.reason or recall.reason,
                    created_by=data.actor,
                    created_at=now,
                )
            )
            await self._scope_rows(session, recall, frozen, data.version)
            recall.scope_version, recall.scope_hash = data.version, frozen.snapshot_hash
            if recall.scoped_at is None:
                recall.scoped_at = now
            finished, serials, shipped = scope_figures(frozen.snapshot)
            answer = ScopeVersion(
                version=data.version,
                snapshot_hash=frozen.snapshot_hash,
                lots=len(frozen.snapshot["lots"]),
                finished_lots=finished,
                serials=serials,
                shipped_quantity=shipped,
                consignees=frozen.consignee_codes,
                lots_added=changes["lots_added"] if data.version > 1 else frozen.lot_numbers,
                consignees_added=(
                    changes["consignees_added"] if data.version > 1 else frozen.consignee_codes
                ),
                consignees_changed=changes["consignees_changed"],
                scoped_at=now,
            )
            await audit(
                session,
                actor=data.actor,
                action="recall.scoped" if data.version == 1 else "recall.scope_widened",
                entity_type="recall",
                entity_id=recall.number,
                key=key,
                reason=data.reason,
                after={
                    "version": answer.model_dump(mode="json"),
                    "snapshot_hash": frozen.snapshot_hash,
                    "difference": changes if data.version > 1 else {},
                },
            )
            return answer

    @staticmethod
    async def _scope_rows(
        session: AsyncSession, recall: Recall, frozen: FrozenScope, version: int
    ) -> None:
        """recall_lot rows for the lots this version adds (their status now), recall_consignee
        rows for the consignees it adds; consignees already in scope: what they received now."""
        known_lots = set(
            await session.scalars(select(RecallLot.lot_id).where(RecallLot.recall_id == recall.id))
        )
        lots = await _lots_named(session, frozen.lot_numbers)
        for entry in frozen.snapshot["lots"]:
            lot = lots[entry["lot_number"]]
            if lot.id in known_lots:
                continue
            session.add(
                RecallLot(
                    recall_id=recall.id,
                    lot_id=lot.id,
                    role=entry["role"],
                    scope_version=version,
                    status_before=lot.status,
                    held=False,
                    note="",
                )
            )
        existing = {
            c.customer_id: c
            for c in await session.scalars(
                select(RecallConsignee).where(RecallConsignee.recall_id == recall.id)
            )
        }
        customers = dict(
            (
                await session.execute(
                    select(Customer.code, Customer.id).where(
                        Customer.code.in_(frozen.consignee_codes)
                    )
                )
            )
            .tuples()
            .all()
        )
        for code in frozen.consignee_codes:
            received = frozen.consignee(code)
            row = existing.get(customers[code])
            if row is None:
                session.add(
                    RecallConsignee(
                        recall_id=recall.id,
                        customer_id=customers[code],
                        scope_version=version,
                        shipped_quantity=Decimal(received["quantity"]),
                        shipped=received["lots"],
                        status="pending",
                    )
                )
            else:
                row.shipped_quantity = Decimal(received["quantity"])
                row.shipped = received["lots"]

    # ------------------------------------------------------------ hold

    @activity.defn(name="hold_recall_lots")
    async def hold_recall_lots(self, data: HoldRecallLotsInput) -> RecallHold:
        """Every lot the scope version added that is still in house (QUARANTINE, RELEASED or
        ON_HOLD, with stock) goes ON_HOLD with the reason 'recall RCL-…', in one transaction; a
        lot already held stays held and its hold reason names the recall too. From the commit
        on the database refuses to issue or ship it, naming the recall. recall.held_at is the
        moment of the first hold.

        In a drill nothing is held: a drill must never block real stock. The recall_lot rows
        note what would have been held, and held_at is the moment that was worked out (what a
        drill measures)."""
        key = f"{data.process_id}:hold-{data.version}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, RecallHold)
            if earlier is not None:
                return earlier
            recall = await _recall(session, data.process_id)
            rows = await session.execute(
                select(RecallLot, Lot)
                .join(Lot, Lot.id == RecallLot.lot_id)
                .where(RecallLot.recall_id == recall.id, RecallLot.scope_version == data.version)
                .order_by(Lot.lot_number)
                .with_for_update(of=Lot)
            )
            held: list[str] = []
            already: list[str] = []
            would: list[str] = []
            away: list[str] = []
            reason = said("recall %(number)s", number=recall.number)
            for row, lot in rows.tuples():
                if lot.status not in IN_HOUSE or lot.quantity <= 0:
                    row.note = f"{lot.status}, {lot.quantity} {lot.uom} in house: not held"
                    away.append(lot.lot_number)
                elif recall.drill:
                    row.note = f"drill: would be held (was {lot.status})"
                    would.append(lot.lot_number)
                elif lot.status == "ON_HOLD":
                    earlier_reason = lot.hold_reason or lot.status_reason
                    combined = held_also(earlier_reason, reason) if earlier_reason else reason
                    await change_lot_status(
                        session,
                        lot,
                        "ON_HOLD",
                        reason=combined,
                        actor="system",
                        process_id=recall.process_id,
                    )
                    row.held = True
                    row.note = (
                        f"already ON_HOLD ({earlier_reason or 'no reason given'}); stays held"
                    )
                    already.append(lot.lot_number)
                else:
                    row.note = f"held (was {lot.status})"
                    await change_lot_status(
                        session,
                        lot,
                        "ON_HOLD",
                        reason=reason,
                        actor="system",
                        process_id=recall.process_id,
                    )
                    row.held = True
                    held.append(lot.lot_number)
            now = await database_now(session)
            if recall.held_at is None:
                recall.held_at = now
            answer = RecallHold(
                held=held,
                already_held=already,
                would_hold=would,
                not_in_house=away,
                held_at=recall.held_at,
            )
            await audit(
                session,
                actor="system",
                action="recall.drill_hold_worked_out" if recall.drill else "recall.stock_held",
                entity_type="recall",
                entity_id=recall.number,
                key=key,
                reason=reason,
                after=answer.model_dump(mode="json"),
            )
            return answer

    # ------------------------------------------------------------ decisions

    async def _record(
        self,
        key: str,
        process_id: str,
        write: Callable[[Recall, datetime], dict[str, Any]],
        *,
        actor: str,
        action: str,
        reason: str = "",
    ) -> None:
        """One audited change of the recall row, once under `key`; `write` changes the row and
        says what it changed."""
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            recall = await _recall(session, process_id)
            after = write(recall, await database_now(session))
            await audit(
                session,
                actor=actor,
                action=action,
                entity_type="recall",
                entity_id=recall.number,
                key=key,
                reason=reason,
                after=after,
            )

    @activity.defn(name="record_health_hazard")
    async def record_health_hazard(self, data: RecordHazardInput) -> None:
        def write(recall: Recall, now: datetime) -> dict[str, Any]:
            recall.health_hazard = data.hazard
            return {"health_hazard": data.hazard}

        await self._record(
            f"{data.process_id}:hazard",
            data.process_id,
            write,
            actor=data.actor,
            action="recall.health_hazard_evaluated",
        )

    @activity.defn(name="record_classification")
    async def record_classification(self, data: RecordClassificationInput) -> None:
        if (
            data.classification not in CLASSES
            or data.depth not in DEPTHS
            or data.effectiveness_level not in EFFECTIVENESS_LEVELS
        ):
            raise _refused(said("classification, depth or effectiveness level not known"))

        def write(recall: Recall, now: datetime) -> dict[str, Any]:
            recall.classification = data.classification
            recall.depth = data.depth
            recall.public_warning = data.public_warning
            recall.effectiveness_level = data.effectiveness_level
            return data.model_dump(exclude={"process_id"})

        await self._record(
            f"{data.process_id}:classification-{data.round}",
            data.process_id,
            write,
            actor=data.actor,
            action="recall.classified",
        )

    @activity.defn(name="record_strategy_decision")
    async def record_strategy_decision(self, data: RecordStrategyInput) -> None:
        """The signed approval of the strategy (strategy_approved_at), or its rejection."""

        def write(recall: Recall, now: datetime) -> dict[str, Any]:
            if data.approved:
                recall.strategy_approved_at = now
            return {"round": data.round, "approved": data.approved}

        await self._record(
            f"{data.process_id}:strategy-{data.round}",
            data.process_id,
            write,
            actor=data.actor,
            action="recall.strategy_approved" if data.approved else "recall.strategy_rejected",
            reason=data.reason,
        )

    # ------------------------------------------------------------ the Part 806 clock

    @activity.defn(name="start_report_clock")
    async def start_report_clock(self, data: RecallInput) -> ReportClock:
        """report_due_on: 10 working days after the day of initiation (UTC), in the calendar of
        the configured country; the report is due by the end of that day. A drill records it
        too: what the due date would be."""
        key = f"{data.process_id}:report-clock"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, ReportClock)
            if earlier is not None:
                return earlier
            recall = await _recall(session, data.process_id)
            started_on = recall.initiated_at.astimezone(UTC).date()
            due_on = add_working_days(started_on, REPORT_WORKING_DAYS, self._country)
            recall.report_due_on = due_on
            clock = ReportClock(
                report_due_on=due_on,
                due_at=datetime.combine(due_on + timedelta(days=1), time(0), UTC),
                country=self._country,
            )
            await audit(
                session,
                actor="system",
                action="recall.report_clock_started",
                entity_type="recall",
                entity_id=recall.number,
                key=key,
                after=clock.model_dump(mode="json"),
            )
            return clock

    @activity.defn(name="record_recall_report")
    async def record_recall_report(self, data: RecordReportInput) -> None:
        key = f"{data.process_id}:report"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            recall = await _recall(session, data.process_id)
            recall.report_number = data.report_number
            recall.report_submitted_at = await database_now(session)
            await audit(
                session,
                actor=data.actor,
                action="recall.report_submitted",
                entity_type="recall",
                entity_id=recall.number,
                key=key,
                after={
                    "report_number": data.report_number,
                    "report_due_on": str(recall.report_due_on),
                    "on_time": recall.report_submitted_at.date() <= recall.report_due_on
                    if recall.report_due_on
                    else None,
                },
            )

    # ------------------------------------------------------------ notices and effectiveness

    @activity.defn(name="record_recall_notified")
    async def record_recall_notified(self, data: RecallInput) -> RecallTimes:
        """recall.notified_at: every consignee's notice has gone out (in a drill: would have)."""
        key = f"{data.process_id}:notified"
        async with self._sessions() as session, session.begin():
            recall = await _recall(session, data.process_id)
            if not await already_recorded(session, key):
                recall.notified_at = await database_now(session)
                await audit(
                    session,
                    actor="system",
                    action="recall.consignees_notified",
                    entity_type="recall",
                    entity_id=recall.number,
                    key=key,
                    after=times_of(recall).model_dump(),
                )
            return times_of(recall)

    @activity.defn(name="measure_effectiveness")
    async def measure_effectiveness(self, data: RecallInput) -> Effectiveness:
        """Responded and reconciled shares against the level's target, checks done (read only)."""
        async with self._sessions() as session:
            recall = await required_process_record(session, Recall, data.process_id, said("recall"))
            figures = await effectiveness(session, recall)
        return Effectiveness(
            level=figures.level,
            target_percent=figures.target_percent,
            consignees=figures.consignees,
            notified=figures.notified,
            responded=figures.responded,
            reconciled=figures.reconciled,
            responded_percent=figures.responded_percent,
            reconciled_percent=figures.reconciled_percent,
            checks=figures.checks,
            checks_open=figures.checks_open,
            checks_failed=figures.checks_failed,
            met=figures.met,
        )

    @activity.defn(name="sample_effectiveness_checks")
    async def sample_effectiveness_checks(self, data: RecallInput) -> SampledChecks:
        """Levels B–D: that share of the consignees (at least one), in the order of a hash of
        the recall number and each consignee's code, marked for an effectiveness check. Level A
        is every consignee's own answer (100 % must respond), level E none."""
        key = f"{data.process_id}:sample"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, SampledChecks)
            if earlier is not None:
                return earlier
            recall = await _recall(session, data.process_id)
            rows = list(
                (
                    await session.execute(
                        select(RecallConsignee, Customer.code)
                        .join(Customer, Customer.id == RecallConsignee.customer_id)
                        .where(RecallConsignee.recall_id == recall.id)
                    )
                ).tuples()
            )
            level = recall.effectiveness_level or "E"
            percent = EFFECTIVENESS_TARGETS[level] if level in ("B", "C", "D") else 0
            ordered = sorted(rows, key=lambda r: sample_order(recall.number, r[1]))
            chosen = ordered[: sample_size(len(rows), percent)]
            for row, _ in chosen:
                row.checked = True
            answer = SampledChecks(consignees=sorted(code for _, code in chosen))
            await audit(
                session,
                actor="system",
                action="recall.checks_sampled",
                entity_type="recall",
                entity_id=recall.number,
                key=key,
                reason=said(
                    "level %(level)s: %(percent)s %% of %(consignees)s consignee(s)",
                    level=level,
                    percent=percent,
                    consignees=len(rows),
                ),
                after=answer.model_dump(),
            )
            return answer

    @activity.defn(name="record_effectiveness_check")
    async def record_effectiveness_check(self, data: RecordCheckInput) -> None:
        key = f"{data.process_id}:check-{data.consignee_code}-{data.round}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            recall = await _recall(session, data.process_id)
            row = await session.scalar(
                select(RecallConsignee)
                .join(Customer, Customer.id == RecallConsignee.customer_id)
                .where(RecallConsignee.recall_id == recall.id, Customer.code == data.consignee_code)
                .with_for_update(of=RecallConsignee)
            )
            assert row is not None
            verdict = "verified" if data.verified else "failed"
            row.check_result = f"{verdict} by {data.actor}: {data.note}".rstrip(": ")
            await audit(
                session,
                actor=data.actor,
                action=f"recall.check_{verdict}",
                entity_type="recall",
                entity_id=recall.number,
                key=key,
                reason=data.note,
                after={"consignee": data.consignee_code, "round": data.round, "result": verdict},
            )

    @activity.defn(name="write_recall_status_report")
    async def write_recall_status_report(self, data: StatusReportInput) -> None:
        """The periodic status report (21 CFR 7.53) to regulatory affairs through the outbox:
        where the recall stands and its effectiveness figures."""
        key = f"{data.process_id}:status-report-{data.seq}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            recall = await _recall(session, data.process_id)
            figures = await effectiveness(session, recall)
            report = {
                "recall": recall.number,
                "report": data.seq,
                "status": recall.status,
                "drill": recall.drill,
                "consignees": figures.consignees,
                "notified": figures.notified,
                "responded": figures.responded,
                "responded_percent": round(figures.responded_percent, 1),
                "reconciled": figures.reconciled,
                "reconciled_percent": round(figures.reconciled_percent, 1),
                "target_percent": figures.target_percent,
                "checks": figures.checks,
                "checks_open": figures.checks_open,
                "effectiveness_met": figures.met,
            }
            body = "\n".join(
                [
                    f"Status report {data.seq} of {recall.number} ({recall.status}).",
                    f"Consignees: {figures.consignees}, notified {figures.notified}.",
                    f"Responded: {figures.responded} ({figures.responded_percent:.0f} %), "
                    f"reconciled: {figures.reconciled} ({figures.reconciled_percent:.0f} %), "
                    f"target {figures.target_percent} %.",
                    f"Effectiveness checks: {figures.checks - figures.checks_open} of "
                    f"{figures.checks} done, {figures.checks_failed} failed.",
                    "Effectiveness met." if figures.met else "Effectiveness not met yet.",
                ]
            )
            session.add(
                Outbox(
                    channel="email",
                    recipient="group:ra",
                    subject=f"{recall.number}: status report {data.seq}",
                    body=body,
                    payload=report,
                )
            )
            await audit(
                session,
                actor="system",
                action="recall.status_report",
                entity_type="recall",
                entity_id=recall.number,
                key=key,
                after=report,
            )

    # ------------------------------------------------------------ termination and status

    @activity.defn(name="record_termination")
    async def record_termination(self, data: RecordTerminationInput) -> None:
        """A termination decision: approved (terminated_at), approved with effectiveness waived
        (effectiveness_waived_by, terminated_at), refused (not effective yet) or rejected."""
        ends = data.outcome in ("approved", "waived")

        def write(recall: Recall, now: datetime) -> dict[str, Any]:
            if ends:
                recall.terminated_at = now
            if data.outcome == "waived":
                recall.effectiveness_waived_by = data.decided_by
            return data.model_dump(exclude={"process_id"})

        await self._record(
            f"{data.process_id}:termination-{data.round}",
            data.process_id,
            write,
            actor=data.decided_by,
            action=f"recall.termination_{data.outcome}",
            reason=data.reason,
        )

    @activity.defn(name="set_recall_status")
    async def set_recall_status(self, data: SetRecallStatusInput) -> None:
        """The recall's status, mirrored on its process row (closed: closed_at)."""
        async with self._sessions() as session, session.begin():
            await set_record_status(
                session,
                Recall,
                entity_type="recall",
                terminal=TERMINAL,
                process_id=data.process_id,
                seq=data.seq,
                status=data.status,
                actor=data.actor,
                reason=said_again(data.reason_wording, data.reason),
            )
