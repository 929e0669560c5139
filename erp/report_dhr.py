"""The device history record of a finished lot (21 CFR 820.184): what the lot is, the work order
that made it, the routing, the components consumed with their lots, the inspections, the
signatures of its review and release, the nonconformances that touched it, its status history,
movements and serial numbers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import Lot, WorkOrder
from erp.production import device_history
from erp.quality import NcLot, Nonconformance
from erp.queries import process_signatures
from erp.reports import Report, Section, Translate, plain, recorded, row, text_of
from erp.supply import SerialNumber
from schemas.api import LotDetail
from ui.reason_text import lot_reason_cell, reasons_of_lots


class NotAFinishedLot(ValueError):
    """The lot was not produced by a work order here (e.g. it was received)."""

    def __init__(self, lot_number: str, origin: str) -> None:
        super().__init__(f"lot {lot_number} was not produced by a work order (origin {origin})")
        self.lot_number, self.origin = lot_number, origin


async def device_history_report(
    session: AsyncSession, lot: LotDetail, _: Translate, locale: str | None = None
) -> Report:
    """The DHR of `lot` (its facts as the lot API reads them) from what the ERP holds. A stored
    status or kind prints as recorded, with its label beside it for a reader of another
    language (`erp.reports.recorded`). `locale` is the reader's, for the lot's status and hold
    reasons recorded with their wording (`ui.reason_text.lot_reason_cell`: the translation with
    the recorded English in parentheses)."""
    _ = plain(_)
    row_ = await session.execute(
        select(Lot, WorkOrder)
        .join(WorkOrder, WorkOrder.id == Lot.work_order_id)
        .where(Lot.lot_number == lot.lot_number, Lot.origin == "production")
    )
    found = row_.first()
    if found is None:
        raise NotAFinishedLot(lot.lot_number, lot.origin)
    lot_row, work_order = found
    dhr = await device_history(session, work_order)
    signatures = (
        await process_signatures(session, work_order.process_id) if work_order.process_id else []
    )
    ncs = (
        await session.execute(
            select(Nonconformance, NcLot)
            .join(NcLot, NcLot.nc_id == Nonconformance.id)
            .where(NcLot.lot_id == lot_row.id)
            .order_by(Nonconformance.id)
        )
    ).all()
    wordings = (await reasons_of_lots(session, [lot.lot_number])).get(lot.lot_number)
    serials = list(
        await session.scalars(
            select(SerialNumber)
            .where(SerialNumber.lot_id == lot_row.id)
            .order_by(SerialNumber.serial)
        )
    )
    sections = [
        Section(
            _("The device"),
            facts=[
                (_("Device"), f"{dhr.part_number} {_('revision')} {dhr.revision}"),
                (_("Description"), lot.description),
                (_("Lot"), dhr.lot_number),
                (_("Quantity made (good)"), f"{text_of(dhr.quantity)} {lot.uom}"),
                (_("Scrapped"), f"{text_of(dhr.scrap_quantity)} {lot.uom}"),
                (_("On hand now"), f"{text_of(lot.quantity)} {lot.uom}"),
                (_("Manufactured on"), text_of(dhr.manufactured_on)),
                (_("Expires on"), text_of(dhr.expires_on) or _("no expiry")),
                (_("Status now"), recorded(_, "lot status", lot.status)),
                (_("Hold reason"), lot_reason_cell(lot.hold_reason, wordings, locale=locale)),
                (
                    _("Serial numbers"),
                    f"{dhr.serial_first} … {dhr.serial_last} ({dhr.serial_count})"
                    if dhr.serial_count
                    else _("none"),
                ),
            ],
        ),
        Section(
            _("Work order"),
            facts=[
                (_("Work order"), work_order.number),
                (_("Process"), text_of(work_order.process_id)),
                (_("Planned quantity"), text_of(work_order.quantity)),
                (_("Produced quantity"), text_of(work_order.produced_quantity)),
                (_("Status"), recorded(_, "work order status", work_order.status)),
                (_("Requested by"), text_of(work_order.requested_by)),
                (_("Created"), text_of(work_order.created_at)),
                (_("Released to production"), text_of(work_order.released_at)),
                (_("Closed"), text_of(work_order.closed_at)),
                (_("Due on"), text_of(work_order.due_on)),
            ],
        ),
        Section(
            _("Routing"),
            columns=[_("Operation")],
            rows=[[step] for step in dhr.routing],
        ),
        Section(
            _("Components consumed"),
            columns=[
                _("Part"),
                _("Lot"),
                _("Quantity"),
                _("Unit"),
                _("Supplier lot"),
                _("Expires on"),
            ],
            rows=[
                row(c.part_number, c.lot_number, c.quantity, c.uom, c.supplier_lot, c.expires_on)
                for c in dhr.components
            ],
        ),
        Section(
            _("Inspections"),
            columns=[
                _("Kind"),
                _("Outcome"),
                _("Inspector"),
                _("Sample"),
                _("Accept number"),
                _("Defects"),
                _("When (UTC)"),
                _("Results"),
            ],
            rows=[
                row(
                    recorded(_, "inspection kind", i.kind),
                    recorded(_, "outcome", i.outcome),
                    i.inspector,
                    i.sample_size,
                    i.accept_number,
                    i.defects,
                    i.inspected_at,
                    i.results,
                )
                for i in lot.inspections
            ],
            widths=[1, 0.8, 0.8, 0.6, 0.6, 0.6, 1.2, 2.4],
        ),
        Section(
            _("Review and release signatures"),
            columns=[
                _("Printed name"),
                _("User"),
                _("Meaning"),
                _("Signed at (UTC)"),
                _("What was signed"),
                _("SHA-256 of the signed content"),
            ],
            rows=[
                row(
                    s.printed_name,
                    s.signer,
                    recorded(_, "signature meaning", s.meaning),
                    s.signed_at,
                    (s.signed_content or {}).get("title", ""),
                    s.record_hash,
                )
                for s in signatures
            ],
            widths=[1.1, 0.7, 0.8, 1.2, 1.8, 2],
        ),
        Section(
            _("Deviations and nonconformances"),
            columns=[
                _("NC"),
                _("Title"),
                _("Severity"),
                _("Status"),
                _("Role"),
                _("Disposition"),
                _("Justification"),
                _("Decided by"),
                _("Applied"),
            ],
            rows=[
                row(
                    nc.number,
                    nc.title,
                    recorded(_, "nc severity", nc.severity),
                    recorded(_, "nc status", nc.status),
                    recorded(_, "nc lot role", link.role),
                    recorded(_, "nc disposition", link.disposition),
                    link.justification,
                    link.decided_by,
                    link.applied_at,
                )
                for nc, link in ncs
            ],
        ),
        Section(
            _("Status history"),
            columns=[
                _("From status"),
                _("To status"),
                _("Reason"),
                _("Changed by"),
                _("Process"),
                _("When (UTC)"),
            ],
            rows=[
                row(
                    recorded(_, "lot status", h.from_status),
                    recorded(_, "lot status", h.to_status),
                    lot_reason_cell(h.reason, wordings, locale=locale),
                    h.changed_by,
                    h.process_id,
                    h.changed_at,
                )
                for h in lot.status_history
            ],
        ),
        Section(
            _("Movements"),
            columns=[
                _("Kind"),
                _("Quantity"),
                _("Reference"),
                _("Moved by"),
                _("Process"),
                _("When (UTC)"),
            ],
            rows=[
                row(
                    recorded(_, "movement kind", m.kind),
                    m.quantity,
                    m.reference,
                    m.actor,
                    m.process_id,
                    m.created_at,
                )
                for m in lot.movements
            ],
        ),
        Section(
            _("Serial numbers"),
            columns=[_("Serial"), _("UDI"), _("Status")],
            rows=[row(s.serial, s.udi, recorded(_, "serial status", s.status)) for s in serials],
            widths=[1, 3, 1],
        ),
    ]
    for section in sections:
        section.empty = _("None.")
    return Report(
        kind="dhr", title=_("Device history record"), subject=lot.lot_number, sections=sections
    )
