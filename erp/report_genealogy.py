"""The lot genealogy report: everything a lot was made from (backward, to the suppliers' lots)
and everything it went into (forward, to the finished lots and the consignees they went to)."""

from __future__ import annotations

from erp.reports import Report, Section, Translate, plain, recorded, row
from schemas.supply import TraceResult


def genealogy_report(backward: TraceResult, forward: TraceResult, _: Translate) -> Report:
    """Both traces of one lot (erp.trace.trace_lot), as one report; a lot's status prints as
    recorded, with its label beside it for a reader of another language."""
    _ = plain(_)
    root = next((lot for lot in backward.lots if lot.depth == 0), None)
    facts = [(_("Lot traced"), backward.root)]
    if backward.serial:
        facts.append((_("Serial"), backward.serial))
    if root is not None:
        facts += [
            (_("Part"), f"{root.part_number} {_('revision')} {root.revision}"),
            (_("Status now"), recorded(_, "lot status", root.status)),
        ]
    facts += [
        (_("Lots it came from"), str(sum(1 for lot in backward.lots if lot.depth > 0))),
        (_("Lots it went into"), str(sum(1 for lot in forward.lots if lot.depth > 0))),
        (_("Consignees reached"), str(len({s.consignee_code for s in forward.shipments}))),
    ]
    return Report(
        kind="genealogy",
        title=_("Lot genealogy"),
        subject=backward.root,
        sections=[
            Section(_("The lot"), facts=facts),
            _lots(_("Came from (backward)"), backward, _),
            _edges(_("Backward links: parent lot into child lot"), backward, _),
            _lots(_("Went into (forward)"), forward, _),
            _edges(_("Forward links: parent lot into child lot"), forward, _),
            Section(
                _("Shipments of the lots it went into"),
                columns=[
                    _("Shipment"),
                    _("Lot"),
                    _("Quantity"),
                    _("Consignee"),
                    _("Name"),
                    _("Shipped (UTC)"),
                    _("Delivered (UTC)"),
                ],
                rows=[
                    row(
                        s.shipment,
                        s.lot_number,
                        s.quantity,
                        s.consignee_code,
                        s.consignee_name,
                        s.shipped_at,
                        s.delivered_at,
                    )
                    for s in forward.shipments
                ],
                empty=_("None."),
            ),
        ],
    )


def _lots(title: str, trace: TraceResult, _: Translate) -> Section:
    return Section(
        title,
        columns=[
            _("Depth"),
            _("Lot"),
            _("Part"),
            _("Revision"),
            _("Status"),
            _("On hand"),
            _("Supplier"),
            _("Supplier lot"),
            _("Expires on"),
        ],
        rows=[
            row(
                lot.depth,
                lot.lot_number,
                lot.part_number,
                lot.revision,
                recorded(_, "lot status", lot.status),
                lot.quantity,
                lot.supplier_code,
                lot.supplier_lot,
                lot.expires_on,
            )
            for lot in sorted(trace.lots, key=lambda lot: (lot.depth, lot.lot_number))
        ],
        widths=[0.5, 1.2, 1, 0.6, 0.9, 0.8, 0.9, 1.2, 0.9],
        empty=_("None."),
    )


def _edges(title: str, trace: TraceResult, _: Translate) -> Section:
    return Section(
        title,
        columns=[_("Parent lot"), _("Child lot"), _("Quantity"), _("Work order")],
        rows=[
            row(e.parent, e.child, e.quantity, e.work_order)
            for e in sorted(trace.edges, key=lambda e: (e.parent, e.child, e.work_order or ""))
        ],
        empty=_("None."),
    )
