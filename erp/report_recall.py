"""The recall report, for the file and for the regulator: scope (version, hash, lots,
consignees), classification and strategy, the Part 806 report clock, reconciliation per
consignee, effectiveness against the target, drill times, signatures and the timeline."""

from __future__ import annotations

from typing import Any

from erp.report_capa import open_tasks_section, signatures_section, timeline_section
from erp.reports import Report, Section, Translate, plain, recorded, row, text_of
from schemas.api import RecallDetail


def recall_report(recall: RecallDetail, _: Translate) -> Report:
    """The report of one recall (or drill) as the recall API reads it. A stored status or role
    prints as recorded, with its label beside it for a reader of another language."""
    _ = plain(_)
    yes_no = {True: _("yes"), False: _("no"), None: ""}
    status = recorded(_, "recall status", recall.status)
    if recall.drill:
        status = _("%(status)s (drill: nothing left the house)", status=status)
    facts = Section(
        _("Recall"),
        facts=[
            (_("Process"), recall.id),
            (_("Status"), status),
            (_("Reason"), recall.reason),
            (_("Source"), f"{recall.source} {recall.source_reference}".strip()),
            (
                _("Initiated"),
                _(
                    "%(when)s by %(who)s",
                    when=text_of(recall.initiated_at),
                    who=recall.requested_by,
                ),
            ),
            (_("Health hazard"), recall.health_hazard),
            (
                _("Recall class"),
                _("Class %(c)s", c=recall.classification) if recall.classification else "",
            ),
            (_("Depth"), text_of(recall.depth)),
            (_("Public warning"), yes_no[recall.public_warning]),
            (_("Effectiveness level"), text_of(recall.effectiveness_level)),
            (_("Strategy approved"), text_of(recall.strategy_approved_at)),
            (_("Terminated"), text_of(recall.terminated_at)),
            (_("Closed"), text_of(recall.closed_at)),
        ],
    )
    scope = recall.scope
    scope_section = Section(
        _("Scope"),
        facts=[
            (_("Version"), str(scope.version)),
            (_("SHA-256"), scope.hash),
            (_("Frozen"), text_of(scope.frozen_at)),
            (_("Lots"), str(len(scope.lots))),
            (_("Consignees"), str(len(recall.consignee_board))),
        ],
        columns=[
            _("Lot"),
            _("Part"),
            _("Role"),
            _("Added in"),
            _("Status before"),
            _("Status now"),
            _("Held"),
        ],
        rows=[
            row(
                lot.lot_number,
                lot.part_number,
                recorded(_, "recall lot role", lot.role),
                f"v{lot.scope_version}",
                recorded(_, "lot status", lot.status_before),
                recorded(_, "lot status", lot.status),
                yes_no[lot.held],
            )
            for lot in scope.lots
        ],
    )
    versions = Section(
        _("Scope versions"),
        columns=[
            _("Version"),
            _("SHA-256"),
            _("Frozen"),
            _("Frozen by"),
            _("Reason"),
            _("Difference"),
        ],
        rows=[
            row(
                f"v{v.version}",
                v.hash,
                v.created_at,
                v.created_by,
                v.reason,
                _difference(v.difference),
            )
            for v in scope.versions
        ],
        widths=[0.5, 2.2, 1.2, 0.7, 1.3, 1.8],
    )
    clock = recall.clock
    clock_section = Section(
        _("Correction and removal report (21 CFR 806)"),
        facts=[
            (_("Due on"), text_of(clock.report_due_on)),
            (
                _("Submitted"),
                text_of(clock.report_submitted_at) if clock.submitted else _("not yet"),
            ),
            (_("Report number"), clock.report_number),
        ],
    )
    board = Section(
        _("Reconciliation per consignee"),
        columns=[
            _("Consignee"),
            _("Shipped"),
            _("Notified"),
            _("Answered"),
            _("On hand"),
            _("Returned"),
            _("Corrected"),
            _("Received back"),
            _("Reminders"),
            _("Reconciled"),
        ],
        rows=[
            row(
                f"{c.code} {c.name}",
                c.shipped_quantity,
                c.notified_at,
                c.acknowledged_at,
                c.quantity_on_hand,
                c.quantity_returned,
                c.quantity_corrected,
                c.quantity_received_back,
                c.reminders,
                yes_no[c.reconciled],
            )
            for c in recall.consignee_board
        ],
        widths=[1.6, 0.7, 1.2, 1.2, 0.7, 0.7, 0.7, 0.8, 0.7, 0.7],
    )
    e, d = recall.effectiveness, recall.drill_times
    if e.met:
        met = _("yes")
    elif e.waived_by:
        met = _("waived by %(who)s", who=e.waived_by)
    else:
        met = _("no")
    effectiveness = Section(
        _("Effectiveness"),
        facts=[
            (_("Level"), text_of(e.level)),
            (_("Target responded (%)"), text_of(e.target_percent)),
            (
                _("Responded"),
                _(
                    "%(n)s of %(of)s (%(pct)s %%)",
                    n=e.responded,
                    of=e.consignees,
                    pct=f"{e.responded_percent:.1f}",
                ),
            ),
            (
                _("Reconciled"),
                _(
                    "%(n)s of %(of)s (%(pct)s %%)",
                    n=e.reconciled,
                    of=e.consignees,
                    pct=f"{e.reconciled_percent:.1f}",
                ),
            ),
            (_("Target met"), met),
            (_("Time to scope (s)"), _seconds(d.time_to_scope)),
            (_("Time to hold (s)"), _seconds(d.time_to_hold)),
            (_("Time to notify (s)"), _seconds(d.time_to_notify)),
        ],
    )
    return Report(
        kind="recall",
        title=_("Recall drill report") if recall.drill else _("Recall report"),
        subject=recall.number,
        sections=[
            facts,
            scope_section,
            versions,
            clock_section,
            board,
            effectiveness,
            signatures_section(recall.signatures, _),
            open_tasks_section(recall.open_tasks, _),
            timeline_section(recall.timeline, _),
        ],
    )


def _difference(difference: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(difference.items()):
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return "; ".join(parts)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
