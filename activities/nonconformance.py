"""Activities of the nonconformance process (21 CFR 820.90; ISO 13485 §8.3): the NC report, the
containment of its lots (at once, and widened by genealogy), the investigation, the MRB's
dispositions applied to lots and stock, the re-inspection after rework, the recall scope and
decision, and the link to the CAPA.

Each write commits its business rows and its audit rows in one transaction, keyed by the process
id and the step, so a retried activity writes nothing twice (a retry gets the first answer).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit_context import audit
from activities.records import (
    change_lot_status,
    held_also,
    next_number,
    recorded,
    recorded_answer,
    required_process_record,
    set_record_status,
    write_moving_lots,
)
from erp.audit import already_recorded
from erp.containment import extension_candidates, forward_scope, summary
from erp.db import database_now
from erp.lots import LotRefused, move
from erp.master_data import Lot, Supplier
from erp.models import AppUser, Outbox
from erp.production import database_today
from erp.quality import NC_NUMBER, SCAR_NUMBER, Nonconformance, Scar
from erp.quality import NcLot as NcLotRow
from erp.supply import Inspection, SupplierScorecard
from schemas.nonconformance import (
    HOLDABLE,
    AppliedDisposition,
    ApplyDispositionInput,
    ContainLotsInput,
    Containment,
    DispositionAction,
    ExtensionCandidates,
    LinkCapaInput,
    NcInput,
    NcLotState,
    RecallScope,
    RecordCapaDecisionInput,
    RecordDispositionsInput,
    RecordInvestigationInput,
    RecordRecallDecisionInput,
    RecordReinspectionInput,
    RegisteredNc,
    RegisterNcInput,
    SetNcStatusInput,
)
from schemas.production import quantity_text
from workflows.wording import refuse, said, said_again

NC_DUE_DAYS = 30
SCAR_DUE_DAYS = 30
TERMINAL = {"closed": "completed", "cancelled": "cancelled"}
# why a lot in this status cannot be held
NOT_HELD = {
    "SHIPPED": "SHIPPED: no longer in house, cannot be held (see the recall decision)",
    "CONSUMED": "CONSUMED: used up in production, cannot be held; what it went into is found "
    "through the genealogy",
    "REJECTED": "REJECTED: already rejected, cannot be used",
    "EXPIRED": "EXPIRED: cannot be used",
    "RECALLED": "RECALLED: already under a recall",
}
# inspection.kind of a re-inspection after rework, by where the lot came from
REINSPECTION_KIND = {"receipt": "incoming", "production": "final"}


def _refused(message: str) -> ApplicationError:
    return refuse("NcRefused", message, non_retryable=True)  # a `said` keeps its template


async def _nc(session: AsyncSession, process_id: str) -> Nonconformance:
    """The process's nonconformance, locked for this transaction."""
    return await required_process_record(
        session, Nonconformance, process_id, said("nonconformance"), lock=True
    )


async def _supplier_code(session: AsyncSession, supplier_id: int | None) -> str | None:
    if supplier_id is None:
        return None
    return (await session.get_one(Supplier, supplier_id)).code


def _lot_state(lot: Lot, row: NcLotRow, supplier_code: str | None) -> NcLotState:
    return NcLotState(
        **summary(lot, supplier_code).model_dump(),
        role=row.role,
        status_before=row.status_before,
        held=row.held,
        note=row.note,
    )


async def _count_scar(session: AsyncSession, supplier_id: int) -> None:
    """One more SCAR on the supplier's scorecard (the row is made when missing)."""
    await session.execute(
        insert(SupplierScorecard)
        .values(
            supplier_id=supplier_id,
            receipts=0,
            on_time_receipts=0,
            inspections=0,
            accepted_inspections=0,
            scars=1,
        )
        .on_conflict_do_update(
            index_elements=["supplier_id"],
            set_={"scars": SupplierScorecard.scars + 1, "updated_at": func.now()},
        )
    )


# ---------------------------------------------------------------- registration


async def _lots_named(session: AsyncSession, numbers: list[str]) -> dict[str, Lot]:
    found = await session.scalars(select(Lot).where(Lot.lot_number.in_(numbers)))
    return {lot.lot_number: lot for lot in found}


async def _nc_supplier(
    session: AsyncSession, code: str | None, lots: list[Lot]
) -> tuple[int | None, str]:
    """(supplier id, problem): the supplier named, else the one every affected lot came from."""
    if code:
        supplier = await session.scalar(select(Supplier).where(Supplier.code == code))
        return (
            (supplier.id, "")
            if supplier
            else (None, said("supplier %(code)s is not known", code=code))
        )
    suppliers = {lot.supplier_id for lot in lots}
    if len(suppliers) == 1:
        return suppliers.pop(), ""
    return None, ""


def _common_part(lots: list[Lot]) -> str | None:
    parts = {lot.part_number for lot in lots}
    return parts.pop() if len(parts) == 1 else None


# ---------------------------------------------------------------- containment


async def _hold(
    session: AsyncSession, lot: Lot, nc: Nonconformance, actor: str
) -> tuple[bool, str, str]:
    """Hold the lot for the NC where it can be: (held, note, hold reason)."""
    reason = said("%(number)s %(title)s", number=nc.number, title=nc.title)
    before = lot.status
    if before in HOLDABLE:
        await change_lot_status(
            session, lot, "ON_HOLD", reason=reason, actor=actor, process_id=nc.process_id
        )
        return True, f"held (was {before})", reason
    if before == "ON_HOLD":
        # it stays held; its hold reason names this NC too, so a refusal names every hold
        earlier = lot.hold_reason or lot.status_reason
        combined = held_also(earlier, reason) if earlier else reason
        await change_lot_status(
            session, lot, "ON_HOLD", reason=combined, actor=actor, process_id=nc.process_id
        )
        return True, f"already ON_HOLD ({earlier or 'no reason given'}); stays held", combined
    return False, NOT_HELD.get(before, f"{before}: cannot be held"), ""


# ---------------------------------------------------------------- dispositions


async def _other_holds(session: AsyncSession, lot: Lot, nc: Nonconformance) -> list[str]:
    """The other open NCs that hold this lot and have not applied a disposition to it."""
    rows = await session.scalars(
        select(Nonconformance.number)
        .join(NcLotRow, NcLotRow.nc_id == Nonconformance.id)
        .where(
            NcLotRow.lot_id == lot.id,
            NcLotRow.held.is_(True),
            NcLotRow.applied_at.is_(None),
            Nonconformance.id != nc.id,
            Nonconformance.status.not_in(("closed", "cancelled")),
        )
        .order_by(Nonconformance.number)
    )
    return list(rows)


async def _use_as_is_status(session: AsyncSession, lot: Lot, row: NcLotRow) -> str:
    """Where a lot used as is goes: RELEASED; but a lot that was in QUARANTINE when contained
    and has never been inspected goes back to QUARANTINE, where its own incoming or final
    inspection (still to come) decides. A lot inspected and failed — the usual NC — is released
    by the signed use-as-is: that decision, with QA's and engineering's signatures, is its
    acceptance (a concession)."""
    if row.status_before != "QUARANTINE":
        return "RELEASED"
    inspected = await session.scalar(
        select(func.count()).select_from(Inspection).where(Inspection.lot_id == lot.id)
    )
    return "RELEASED" if inspected else "QUARANTINE"


class NonconformanceActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.register_nonconformance,
            self.contain_lots,
            self.find_extension_lots,
            self.set_nonconformance_status,
            self.record_investigation,
            self.record_dispositions,
            self.apply_disposition,
            self.record_reinspection,
            self.compute_recall_scope,
            self.record_recall_decision,
            self.record_capa_decision,
            self.link_capa,
        ]

    # ------------------------------------------------------------ registration

    @activity.defn(name="register_nonconformance")
    async def register_nonconformance(self, data: RegisterNcInput) -> RegisteredNc:
        """The NC report (NC-YYYY-NNNN, due in 30 days). Lot numbers or a supplier that are not
        known are refused (non-retryable NcRefused naming them), audited as refused."""
        async with self._sessions() as session, session.begin():
            existing = await session.scalar(
                select(Nonconformance).filter_by(process_id=data.process_id)
            )
            if existing is not None:
                assert existing.due_on is not None
                return RegisteredNc(
                    number=existing.number,
                    supplier_code=await _supplier_code(session, existing.supplier_id),
                    due_on=existing.due_on,
                )
            registered = await self._register(session, data)
        if isinstance(registered, str):
            raise _refused(registered)
        return registered

    @staticmethod
    async def _register(session: AsyncSession, data: RegisterNcInput) -> RegisteredNc | str:
        """The NC row and its audit row; or why not (the refusal audited)."""
        request, pid = data.request, data.process_id
        lots = await _lots_named(session, request.lots)
        missing = [n for n in dict.fromkeys(request.lots) if n not in lots]
        supplier_id, problem = await _nc_supplier(
            session, request.supplier_code, list(lots.values())
        )
        if missing:
            unknown = said("lot(s) not known: %(lots)s", lots=", ".join(missing))
            problem = (
                said("%(first)s; %(then)s", first=unknown, then=problem) if problem else unknown
            )
        if problem:
            if not await already_recorded(session, f"{pid}:refused"):
                await audit(
                    session,
                    actor=request.reporter or "system",
                    action="nonconformance.refused",
                    entity_type="nonconformance",
                    entity_id=pid,
                    key=f"{pid}:refused",
                    outcome="refused",
                    reason=problem,
                    after=request.model_dump(mode="json"),
                )
            return problem
        number = await next_number(session, "NC", NC_NUMBER)
        due_on = await database_today(session) + timedelta(days=NC_DUE_DAYS)
        nc = Nonconformance(
            number=number,
            process_id=pid,
            source=request.source.value,
            severity=request.severity.value,
            title=request.title,
            description=request.description,
            part_number=request.part_number or _common_part(list(lots.values())),
            quantity=request.quantity,
            evidence=request.evidence,
            supplier_id=supplier_id,
            reported_by=request.reporter or "system",
            origin_process_id=request.origin_process_id,
            status="containment",
            investigation="",
            recall_requested=False,
            recall_scope={},
            due_on=due_on,
        )
        session.add(nc)
        code = await _supplier_code(session, supplier_id)
        await audit(
            session,
            actor=nc.reported_by,
            action="nonconformance.reported",
            entity_type="nonconformance",
            entity_id=number,
            key=f"{pid}:registered",
            after=request.model_dump(mode="json")
            | {"supplier_code": code, "due_on": due_on.isoformat()},
        )
        return RegisteredNc(number=number, supplier_code=code, due_on=due_on)

    # ------------------------------------------------------------ containment

    @activity.defn(name="contain_lots")
    async def contain_lots(self, data: ContainLotsInput) -> Containment:
        """Hold every lot named for the NC in one transaction: QUARANTINE and RELEASED lots go
        ON_HOLD (reason 'NC-… <title>'), an ON_HOLD lot stays held (its hold reason names this NC
        too), a lot consumed, shipped, rejected, expired or recalled cannot be held (recorded
        with held = False and why). Each lot gets its nc_lot row (status before) and audit row.
        From the commit on, the database refuses to issue or ship a held lot, whoever asks."""
        key = f"{data.process_id}:{data.step}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, Containment)
            if earlier is not None:
                return earlier
            nc = await _nc(session, data.process_id)
            known = set(
                await session.scalars(select(NcLotRow.lot_id).where(NcLotRow.nc_id == nc.id))
            )
            locked = await session.scalars(
                select(Lot)
                .where(Lot.lot_number.in_(data.lot_numbers))
                .order_by(Lot.id)  # one lock order for every caller: no deadlock
                .with_for_update()
            )
            by_number = {lot.lot_number: lot for lot in locked}
            states: list[NcLotState] = []
            for number in dict.fromkeys(data.lot_numbers):
                lot = by_number.get(number)
                if lot is None or lot.id in known:
                    continue
                states.append(await self._contain(session, nc, lot, data, key))
            answer = Containment(lots=states)
            await audit(
                session,
                actor=data.actor,
                action="nonconformance.contained"
                if data.role == "affected"
                else "nonconformance.extended",
                entity_type="nonconformance",
                entity_id=nc.number,
                key=key,
                reason=said(
                    "%(held)s of %(lots)s lot(s) held",
                    held=sum(s.held for s in states),
                    lots=len(states),
                ),
                after=answer.model_dump(mode="json"),
            )
            return answer

    @staticmethod
    async def _contain(
        session: AsyncSession, nc: Nonconformance, lot: Lot, data: ContainLotsInput, key: str
    ) -> NcLotState:
        before = lot.status
        held, note, reason = await _hold(session, lot, nc, data.actor)
        row = NcLotRow(
            nc_id=nc.id,
            lot_id=lot.id,
            role=data.role,
            status_before=before,
            held=held,
            note=note,
            justification="",
        )
        session.add(row)
        await audit(
            session,
            actor=data.actor,
            action="lot.held" if held else "lot.not_held",
            entity_type="lot",
            entity_id=lot.lot_number,
            key=f"{key}:{lot.lot_number}",
            outcome="ok" if held else "refused",
            reason=reason or note,
            before={"status": before},
            after={"status": lot.status, "nonconformance": nc.number, "role": data.role}
            | {"held": held, "note": note},
        )
        return _lot_state(lot, row, await _supplier_code(session, lot.supplier_id))

    @activity.defn(name="find_extension_lots")
    async def find_extension_lots(self, data: NcInput) -> ExtensionCandidates:
        """Lots made from the same component lots as the NC's affected lots (erp.containment)."""
        async with self._sessions() as session:
            nc = await required_process_record(
                session, Nonconformance, data.process_id, said("nonconformance")
            )
            rows = list(await session.scalars(select(NcLotRow).where(NcLotRow.nc_id == nc.id)))
            candidates, components = await extension_candidates(
                session,
                affected=[r.lot_id for r in rows if r.role == "affected"],
                known=[r.lot_id for r in rows],
            )
            return ExtensionCandidates(
                lots=candidates, component_lots=[c.lot_number for c in components]
            )

    # ------------------------------------------------------------ status and investigation

    @activity.defn(name="set_nonconformance_status")
    async def set_nonconformance_status(self, data: SetNcStatusInput) -> None:
        """The NC's status (containment, investigation, disposition, capa_decision, closure,
        closed, cancelled), mirrored on its process row."""
        async with self._sessions() as session, session.begin():
            await set_record_status(
                session,
                Nonconformance,
                entity_type="nonconformance",
                terminal=TERMINAL,
                process_id=data.process_id,
                seq=data.seq,
                status=data.status,
                actor=data.actor,
                reason=said_again(data.reason_wording, data.reason),
            )

    @activity.defn(name="record_investigation")
    async def record_investigation(self, data: RecordInvestigationInput) -> None:
        key = f"{data.process_id}:investigation"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            nc = await _nc(session, data.process_id)
            nc.investigation = data.findings + (
                f"\n\nRoot cause: {data.root_cause_summary}" if data.root_cause_summary else ""
            )
            await audit(
                session,
                actor=data.investigated_by,
                action="nonconformance.investigated",
                entity_type="nonconformance",
                entity_id=nc.number,
                key=key,
                after={
                    "findings": data.findings,
                    "root_cause_summary": data.root_cause_summary,
                },
            )

    # ------------------------------------------------------------ dispositions

    @activity.defn(name="record_dispositions")
    async def record_dispositions(self, data: RecordDispositionsInput) -> None:
        """The MRB's dispositions on the NC's lots, with the justification and who decided."""
        key = f"{data.process_id}:dispositions"
        decided_by = data.decided_by + (
            f"; use as is approved by {', '.join(data.approved_by)}" if data.approved_by else ""
        )
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            nc = await _nc(session, data.process_id)
            rows = await session.execute(
                select(NcLotRow, Lot.lot_number)
                .join(Lot, Lot.id == NcLotRow.lot_id)
                .where(NcLotRow.nc_id == nc.id)
            )
            for row, lot_number in rows:
                disposition = data.dispositions.get(lot_number)
                if disposition is not None:
                    row.disposition = disposition.value
                    row.justification = data.justification
                    row.decided_by = decided_by[:200]
            await audit(
                session,
                actor=data.decided_by,
                action="nonconformance.dispositioned",
                entity_type="nonconformance",
                entity_id=nc.number,
                key=key,
                reason=data.justification,
                after={
                    "round": data.round,
                    "dispositions": {n: d.value for n, d in data.dispositions.items()},
                    "approved_by": data.approved_by,
                },
            )

    @activity.defn(name="apply_disposition")
    async def apply_disposition(self, data: ApplyDispositionInput) -> AppliedDisposition:
        """Apply one lot's disposition to the lot and its stock, audited, once:
        - use_as_is: RELEASED (see _use_as_is_status for a lot that came from QUARANTINE);
        - scrap: a `scrap` movement of what is on hand, then REJECTED;
        - return_to_supplier: a `return` movement of what is on hand, REJECTED, a SCAR opened
          against the lot's supplier with the NC's description, counted on its scorecard, and
          sent to `supplier:<code>` through the outbox;
        - rework: back to QUARANTINE ('rework under NC-…'); release_after_rework: RELEASED.
        A lot another open NC still holds is not released (it stays ON_HOLD, the answer says
        by which NC). A lot the database refuses comes back as LotRefused, audited."""
        key = f"{data.process_id}:apply:{data.lot_number}:{data.action.value}"
        return await write_moving_lots(
            self._sessions,
            key,
            lambda session: self._apply(session, data, key),
            lambda session, refusal, refused_key: self._audit_refusal(
                session, data, refusal, refused_key
            ),
        )

    async def _apply(
        self, session: AsyncSession, data: ApplyDispositionInput, key: str
    ) -> AppliedDisposition:
        earlier = await recorded_answer(session, key, AppliedDisposition, "applied")
        if earlier is not None:
            return earlier
        nc = await _nc(session, data.process_id)
        found = await session.execute(
            select(Lot, NcLotRow)
            .join(NcLotRow, NcLotRow.lot_id == Lot.id)
            .where(Lot.lot_number == data.lot_number, NcLotRow.nc_id == nc.id)
            .with_for_update(of=Lot)
        )
        pair = found.first()
        if pair is None:
            raise _refused(
                said("lot %(lot)s is not a lot of %(nc)s", lot=data.lot_number, nc=nc.number)
            )
        lot, row = pair
        before = lot.status
        applied = await self._action(session, data, nc, lot, row)
        if data.action is not DispositionAction.REWORK:
            row.applied_at = await database_now(session)
        await audit(
            session,
            actor=data.actor,
            action=f"lot.{data.action.value}",
            entity_type="lot",
            entity_id=lot.lot_number,
            key=key,
            reason=data.reason or applied.note,
            before={"status": before},
            after={"applied": applied.model_dump(mode="json"), "nonconformance": nc.number},
        )
        return applied

    async def _action(
        self,
        session: AsyncSession,
        data: ApplyDispositionInput,
        nc: Nonconformance,
        lot: Lot,
        row: NcLotRow,
    ) -> AppliedDisposition:
        action, actor, pid = data.action, data.actor, data.process_id
        if action is DispositionAction.SCRAP:
            moved = await self._take_out(session, lot, "scrap", nc, actor)
            reason = said("scrapped under %(number)s", number=nc.number)
            await change_lot_status(
                session, lot, "REJECTED", reason=reason, actor=actor, process_id=pid
            )
            return AppliedDisposition(
                lot_number=lot.lot_number, status=lot.status, moved=moved, note=reason
            )
        if action is DispositionAction.RETURN_TO_SUPPLIER:
            return await self._return(session, nc, lot, actor)
        if action is DispositionAction.REWORK:
            reason = said("rework under %(number)s", number=nc.number)
            await change_lot_status(
                session, lot, "QUARANTINE", reason=reason, actor=actor, process_id=pid
            )
            return AppliedDisposition(lot_number=lot.lot_number, status=lot.status, note=reason)
        if action is DispositionAction.USE_AS_IS:
            target = await _use_as_is_status(session, lot, row)
            why = said("use as is under %(number)s", number=nc.number)
        else:
            target = "RELEASED"
            why = said("released after rework under %(number)s", number=nc.number)
        return await self._release(session, nc, lot, target, why, actor)

    @staticmethod
    async def _release(
        session: AsyncSession, nc: Nonconformance, lot: Lot, target: str, why: str, actor: str
    ) -> AppliedDisposition:
        others = await _other_holds(session, lot, nc)
        if others:
            note = said("%(why)s, but still held by %(others)s", why=why, others=", ".join(others))
            if lot.status != "ON_HOLD":
                await change_lot_status(
                    session, lot, "ON_HOLD", reason=note, actor=actor, process_id=nc.process_id
                )
            return AppliedDisposition(lot_number=lot.lot_number, status=lot.status, note=note)
        await change_lot_status(
            session, lot, target, reason=why, actor=actor, process_id=nc.process_id
        )
        return AppliedDisposition(lot_number=lot.lot_number, status=lot.status, note=why)

    @staticmethod
    async def _take_out(
        session: AsyncSession, lot: Lot, kind: str, nc: Nonconformance, actor: str
    ) -> Decimal:
        """A scrap or return movement of everything on hand; what was moved."""
        on_hand = lot.quantity
        if on_hand > 0:
            await move(
                session,
                lot,
                kind=kind,
                quantity=on_hand,
                reference=nc.number,
                actor=actor,
                process_id=nc.process_id,
                idempotency_key=f"{nc.process_id}:{kind}:{lot.lot_number}",
            )
        return on_hand

    async def _return(
        self, session: AsyncSession, nc: Nonconformance, lot: Lot, actor: str
    ) -> AppliedDisposition:
        if lot.supplier_id is None:
            raise _refused(
                said(
                    "lot %(lot)s was made in house: it has no supplier to return it to",
                    lot=lot.lot_number,
                )
            )
        supplier = await session.get_one(Supplier, lot.supplier_id)
        moved = await self._take_out(session, lot, "return", nc, actor)
        reason = said(
            "returned to %(supplier)s under %(number)s", supplier=supplier.code, number=nc.number
        )
        await change_lot_status(
            session, lot, "REJECTED", reason=reason, actor=actor, process_id=nc.process_id
        )
        today = await database_today(session)
        scar = Scar(
            number=await next_number(session, "SCAR", SCAR_NUMBER),
            supplier_id=supplier.id,
            nc_id=nc.id,
            lot_id=lot.id,
            description=nc.description,
            status="open",
            due_on=today + timedelta(days=SCAR_DUE_DAYS),
            opened_by=actor,
        )
        session.add(scar)
        await _count_scar(session, supplier.id)
        session.add(_scar_message(scar, supplier, nc, lot, moved))
        await audit(
            session,
            actor=actor,
            action="scar.opened",
            entity_type="scar",
            entity_id=scar.number,
            key=f"{nc.process_id}:scar:{lot.lot_number}",
            reason=nc.description,
            after={
                "supplier_code": supplier.code,
                "nonconformance": nc.number,
                "lot_number": lot.lot_number,
                "returned": str(moved),
                "due_on": scar.due_on.isoformat() if scar.due_on else None,
                "outbox": f"supplier:{supplier.code}",
            },
        )
        return AppliedDisposition(
            lot_number=lot.lot_number,
            status=lot.status,
            moved=moved,
            scar_number=scar.number,
            note=reason,
        )

    @staticmethod
    async def _audit_refusal(
        session: AsyncSession, data: ApplyDispositionInput, refusal: LotRefused, key: str
    ) -> None:
        await audit(
            session,
            actor=data.actor,
            action=f"lot.{data.action.value}",
            entity_type="lot",
            entity_id=data.lot_number,
            key=key,
            outcome="refused",
            reason=refusal.message,
        )

    @activity.defn(name="record_reinspection")
    async def record_reinspection(self, data: RecordReinspectionInput) -> None:
        """The inspection of a reworked lot (kind by the lot's origin: incoming for a purchased
        lot, final for a made one, else in_process)."""
        key = f"{data.process_id}:reinspection:{data.lot_number}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            nc = await _nc(session, data.process_id)
            lot = await session.scalar(select(Lot).where(Lot.lot_number == data.lot_number))
            if lot is None:
                raise _refused(said("lot %(lot)s is not known", lot=data.lot_number))
            results = {
                "nonconformance": nc.number,
                "rework": data.rework,
                "reworked_by": data.reworked_by,
                "results": data.results,
                "reason": data.reason,
            }
            session.add(
                Inspection(
                    lot_id=lot.id,
                    kind=REINSPECTION_KIND.get(lot.origin, "in_process"),
                    outcome=data.outcome,
                    inspector=data.inspector,
                    results=results,
                    process_id=data.process_id,
                    idempotency_key=key,
                )
            )
            await audit(
                session,
                actor=data.inspector,
                action="lot.reinspected",
                entity_type="lot",
                entity_id=lot.lot_number,
                key=key,
                outcome="ok" if data.outcome == "pass" else "refused",
                reason=data.reason,
                after={"outcome": data.outcome} | results,
            )

    # ------------------------------------------------------------ recall

    @activity.defn(name="compute_recall_scope")
    async def compute_recall_scope(self, data: NcInput) -> RecallScope:
        """Forward from every lot of the NC: the lots reached, the shipments with their serials,
        the consignees and the quantities (read only)."""
        async with self._sessions() as session:
            nc = await required_process_record(
                session, Nonconformance, data.process_id, said("nonconformance")
            )
            rows = await session.execute(
                select(NcLotRow.lot_id, Lot.lot_number)
                .join(Lot, Lot.id == NcLotRow.lot_id)
                .where(NcLotRow.nc_id == nc.id)
                .order_by(NcLotRow.id)
            )
            ids, numbers = [], []
            for lot_id, number in rows:
                ids.append(lot_id)
                numbers.append(number)
            lots, shipments, consignees = await forward_scope(session, ids)
            return RecallScope(
                nc_number=nc.number,
                nc_process_id=nc.process_id,
                reason=f"{nc.number}: {nc.title}",
                suspect_lots=numbers,
                lots=lots,
                shipments=shipments,
                consignees=consignees,
            )

    @activity.defn(name="record_recall_decision")
    async def record_recall_decision(self, data: RecordRecallDecisionInput) -> None:
        """Escalate: recall_requested and the scope the recall starts from; or why not."""
        key = f"{data.process_id}:recall-decision"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            nc = await _nc(session, data.process_id)
            scope = data.scope.model_dump(mode="json") | {
                "shipped_quantity": quantity_text(data.scope.shipped_quantity),
                "serial_count": data.scope.serial_count,
                "decided_by": data.decided_by,
            }
            if data.escalate:
                nc.recall_requested = True
                nc.recall_scope = scope
            await audit(
                session,
                actor=data.decided_by,
                action="nonconformance.recall_requested"
                if data.escalate
                else "nonconformance.recall_not_needed",
                entity_type="nonconformance",
                entity_id=nc.number,
                key=key,
                reason=data.reason,
                after={
                    "recall_requested": data.escalate,
                    "consignees": [c.code for c in data.scope.consignees],
                    "shipments": sorted({s.shipment for s in data.scope.shipments}),
                },
            )

    # ------------------------------------------------------------ CAPA

    @activity.defn(name="record_capa_decision")
    async def record_capa_decision(self, data: RecordCapaDecisionInput) -> str:
        """Record whether a CAPA is needed; answers why the owner named cannot own it ('' when
        fine): the owner must be an active person, not a system account."""
        key = f"{data.process_id}:capa-decision:{data.attempt}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded(session, key)
            if earlier is not None:
                return earlier.reason if earlier.outcome == "refused" else ""
            nc = await _nc(session, data.process_id)
            problem = ""
            if data.capa_needed:
                owner = await session.scalar(
                    select(AppUser).where(AppUser.username == data.owner.strip())
                )
                if owner is None or not owner.is_active or owner.is_system:
                    problem = f"'{data.owner}' is not an active user who can own the CAPA"
            await audit(
                session,
                actor=data.decided_by,
                action="nonconformance.capa_decided",
                entity_type="nonconformance",
                entity_id=nc.number,
                key=key,
                outcome="refused" if problem else "ok",
                reason=problem or data.reason,
                after={
                    "capa_needed": data.capa_needed,
                    "owner": data.owner.strip(),
                    "problem": data.problem,
                },
            )
            return problem

    @activity.defn(name="link_capa")
    async def link_capa(self, data: LinkCapaInput) -> None:
        key = f"{data.process_id}:capa-linked"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            nc = await _nc(session, data.process_id)
            nc.capa_process_id = data.capa_process_id
            await audit(
                session,
                actor=data.linked_by,
                action="nonconformance.capa_started",
                entity_type="nonconformance",
                entity_id=nc.number,
                key=key,
                after={"capa_process_id": data.capa_process_id},
            )


def _scar_message(
    scar: Scar, supplier: Supplier, nc: Nonconformance, lot: Lot, returned: Decimal
) -> Outbox:
    due = scar.due_on.isoformat() if scar.due_on else "as agreed"
    theirs = f" (your lot {lot.supplier_lot})" if lot.supplier_lot else ""
    return Outbox(
        channel="email",
        recipient=f"supplier:{supplier.code}",
        subject=f"{scar.number}: corrective action requested for lot {lot.lot_number}",
        body="\n".join(
            [
                f"Supplier corrective action request {scar.number} to {supplier.name}.",
                f"Nonconformance {nc.number}: {nc.title}",
                nc.description,
                f"Lot {lot.lot_number}{theirs}, {lot.part_number}: "
                f"{quantity_text(returned)} {lot.uom} returned to you.",
                f"Please answer with the root cause and your corrective action by {due}.",
            ]
        ),
        payload={
            "event": "scar.opened",
            "scar": scar.number,
            "supplier_code": supplier.code,
            "nonconformance": nc.number,
            "lot_number": lot.lot_number,
            "supplier_lot": lot.supplier_lot,
            "part_number": lot.part_number,
            "returned_quantity": str(returned),
            "uom": lot.uom,
            "due_on": scar.due_on.isoformat() if scar.due_on else None,
        },
    )
