"""The CAPA report: the problem, the root-cause analysis, every plan round with its actions and
effectiveness check, the signatures, what is still open and the timeline (audit trail)."""

from __future__ import annotations

from erp.reports import Report, Section, Translate, plain, recorded, row, text_of
from schemas.api import AuditOut, CapaDetail, SignatureOut, TaskOut


def capa_report(capa: CapaDetail, _: Translate) -> Report:
    """The report of one CAPA as the CAPA API reads it (api.quality_service.capa_detail).
    A stored status or kind prints as recorded, with its label beside it for a reader of
    another language (`erp.reports.recorded`)."""
    _ = plain(_)
    facts = Section(
        _("CAPA"),
        facts=[
            (_("Process"), capa.id),
            (_("Title"), capa.title),
            (_("Status"), recorded(_, "capa status", capa.status)),
            (_("Source"), capa.source),
            (_("Nonconformance"), capa.nc_number or _("none")),
            (_("Owner"), capa.owner),
            (_("Requested by"), capa.requested_by),
            (_("Opened"), text_of(capa.created_at)),
            (_("Closed"), text_of(capa.closed_at)),
            (_("Days open"), str(capa.days_open)),
            (_("Plan round"), str(capa.plan_round)),
            (_("Effectiveness wait (days)"), str(capa.effectiveness_wait_days)),
            (_("Effectiveness due on"), text_of(capa.effectiveness_due_on)),
            (_("Current step"), recorded(_, "capa status", capa.current_step)),
        ],
    )
    analysis = Section(
        _("Problem and root cause"),
        facts=[
            (_("Problem statement"), capa.problem_statement),
            (_("Root-cause method"), capa.rca_method),
            (_("Root-cause findings"), capa.rca_findings),
        ],
    )
    sections = [facts, analysis]
    for plan in capa.rounds:
        sections.append(
            Section(
                _("Plan round %(n)s", n=plan.plan_round)
                + (f" ({_('current')})" if plan.current else ""),
                facts=(
                    [
                        (
                            _("Effectiveness"),
                            recorded(_, "effectiveness", plan.effectiveness.outcome),
                        ),
                        (_("Verifier"), plan.effectiveness.verifier),
                        (_("Checked"), text_of(plan.effectiveness.checked_at)),
                        (_("Evidence"), plan.effectiveness.evidence),
                        (_("Why not effective"), plan.effectiveness.reason),
                    ]
                    if plan.effectiveness
                    else []
                ),
                columns=[
                    _("No."),
                    _("Kind"),
                    _("Action"),
                    _("Owner"),
                    _("Due on"),
                    _("Status"),
                    _("Evidence"),
                    _("Completed by"),
                    _("Completed (UTC)"),
                    _("Change request"),
                ],
                rows=[
                    row(
                        a.seq,
                        recorded(_, "action kind", a.kind),
                        a.description,
                        a.owner,
                        a.due_on,
                        recorded(_, "action status", a.status)
                        + (f" ({_('overdue')})" if a.overdue else ""),
                        a.evidence,
                        a.completed_by,
                        a.completed_at,
                        a.change_process_id,
                    )
                    for a in plan.actions
                ],
                widths=[0.4, 0.8, 2, 0.7, 0.8, 0.8, 1.6, 0.8, 1.1, 1],
            )
        )
    sections += [
        signatures_section(capa.signatures, _),
        open_tasks_section(capa.open_tasks, _),
        timeline_section(capa.timeline, _),
    ]
    return Report(kind="capa", title=_("CAPA report"), subject=capa.number, sections=sections)


def signatures_section(signatures: list[SignatureOut], _: Translate) -> Section:
    return Section(
        _("Signatures"),
        columns=[
            _("Printed name"),
            _("User"),
            _("Meaning"),
            _("Signed at (UTC)"),
            _("SHA-256 of the signed content"),
        ],
        rows=[
            row(
                s.printed_name,
                s.signer,
                recorded(_, "signature meaning", s.meaning),
                s.signed_at,
                s.record_hash,
            )
            for s in signatures
        ],
        widths=[1.2, 0.8, 0.9, 1.2, 2.6],
    )


def open_tasks_section(tasks: list[TaskOut], _: Translate) -> Section:
    return Section(
        _("Open tasks"),
        columns=[_("Task"), _("Kind"), _("Status"), _("Due (UTC)")],
        rows=[row(t.title, recorded(_, "task kind", t.kind), t.status, t.due_at) for t in tasks],
        widths=[3, 1, 1, 1.3],
    )


def timeline_section(timeline: list[AuditOut], _: Translate) -> Section:
    return Section(
        _("Timeline (audit trail)"),
        columns=[_("Row"), _("When (UTC)"), _("Who"), _("Action"), _("Record"), _("Why")],
        rows=[
            row(
                a.id,
                a.recorded_at,
                a.actor,
                recorded(_, "audit action", a.action),
                a.entity_id,
                a.reason or recorded(_, "audit outcome", a.outcome),
            )
            for a in timeline
        ],
        widths=[0.5, 1.3, 0.8, 1.4, 1.6, 2.4],
    )
