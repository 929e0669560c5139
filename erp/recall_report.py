"""The recall report (PDF): what a recall did, for the file and for the regulator — scope
(version, hash, lots, consignees), classification and strategy, the report clock, reconciliation
per consignee, effectiveness against the target, drill times, signatures and the timeline.

Every page says when the report was produced, by whom, and the SHA-256 of its content: the
canonical JSON of the recall as read (schemas.api.RecallDetail), so anyone holding the same
record can recompute it and see that the report states that record and nothing else."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from schemas.api import RecallDetail

MARGIN = 18 * mm
STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=STYLES["BodyText"], fontSize=8.5, leading=10.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9)
H1 = ParagraphStyle("h1", parent=STYLES["Heading1"], fontSize=15, spaceAfter=4)
H2 = ParagraphStyle("h2", parent=STYLES["Heading2"], fontSize=11.5, spaceBefore=8, spaceAfter=3)
GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf3")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
)


def content_hash(recall: RecallDetail) -> str:
    """SHA-256 of the recall's canonical JSON (sorted keys): what the report states."""
    canonical = json.dumps(
        recall.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_recall_report(
    recall: RecallDetail,
    *,
    produced_by: str,
    produced_at: datetime | None = None,
    compress: bool = True,
) -> tuple[bytes, str]:
    """The report as PDF bytes and its content hash."""
    produced_at = produced_at or datetime.now(UTC)
    digest = content_hash(recall)
    buffer = io.BytesIO()
    kind = "Recall drill report" if recall.drill else "Recall report"
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + 6 * mm,
        bottomMargin=MARGIN + 6 * mm,
        title=f"{kind} {recall.number}",
        author=produced_by,
        subject=f"content SHA-256 {digest}",
        creator="Lotline",
        pageCompression=1 if compress else 0,
    )
    header = f"{kind} {recall.number} · produced {_when(produced_at)} by {produced_by}"

    def frame(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        width, height = A4
        canvas.drawString(MARGIN, height - MARGIN, header)
        canvas.drawString(MARGIN, MARGIN - 2 * mm, f"Content SHA-256: {digest}")
        canvas.drawRightString(width - MARGIN, MARGIN - 2 * mm, f"page {doc.page}")
        canvas.restoreState()

    document.build(_story(recall, kind), onFirstPage=frame, onLaterPages=frame)
    return buffer.getvalue(), digest


def _story(recall: RecallDetail, kind: str) -> list[Flowable]:
    story: list[Flowable] = [Paragraph(_t(f"{kind} {recall.number}"), H1)]
    story += _facts(
        [
            ("Process", recall.id),
            (
                "Status",
                recall.status + (" (drill: nothing left the house)" if recall.drill else ""),
            ),
            ("Reason", recall.reason),
            ("Source", f"{recall.source} {recall.source_reference}".strip()),
            ("Initiated", f"{_when(recall.initiated_at)} by {recall.requested_by}"),
            ("Health hazard", recall.health_hazard or "—"),
            ("Classification", f"Class {recall.classification}" if recall.classification else "—"),
            ("Depth", recall.depth or "—"),
            ("Public warning", _yes_no(recall.public_warning)),
            ("Effectiveness level", recall.effectiveness_level or "—"),
            ("Strategy approved", _when(recall.strategy_approved_at)),
            ("Terminated", _when(recall.terminated_at)),
            ("Closed", _when(recall.closed_at)),
        ]
    )
    story += _scope(recall)
    story += _clock(recall)
    story += _reconciliation(recall)
    story += _effectiveness(recall)
    story += _signatures(recall)
    story += _timeline(recall)
    return story


def _scope(recall: RecallDetail) -> list[Flowable]:
    scope = recall.scope
    story: list[Flowable] = [Paragraph("Scope", H2)]
    story += _facts(
        [
            ("Version", str(scope.version)),
            ("SHA-256", scope.hash or "—"),
            ("Frozen", _when(scope.frozen_at)),
            ("Lots", str(len(scope.lots))),
            ("Consignees", str(len(recall.consignee_board))),
        ]
    )
    story.append(Spacer(1, 3 * mm))
    story.append(
        _table(
            ["Lot", "Part", "Role", "Added in", "Status before", "Status now", "Held"],
            [
                [
                    lot.lot_number,
                    lot.part_number,
                    lot.role,
                    f"v{lot.scope_version}",
                    lot.status_before,
                    lot.status,
                    _yes_no(lot.held),
                ]
                for lot in scope.lots
            ],
        )
    )
    if len(scope.versions) > 1:
        story.append(Spacer(1, 3 * mm))
        story.append(
            _table(
                ["Version", "SHA-256", "Frozen", "By", "Reason", "Difference"],
                [
                    [
                        f"v{v.version}",
                        v.hash,
                        _when(v.created_at),
                        v.created_by,
                        v.reason,
                        _difference(v.difference),
                    ]
                    for v in scope.versions
                ],
            )
        )
    return story


def _clock(recall: RecallDetail) -> list[Flowable]:
    clock = recall.clock
    return [Paragraph("Correction and removal report (21 CFR 806)", H2)] + _facts(
        [
            ("Due", clock.report_due_on.isoformat() if clock.report_due_on else "—"),
            ("Submitted", _when(clock.report_submitted_at) if clock.submitted else "not yet"),
            ("Report number", clock.report_number or "—"),
        ]
    )


def _reconciliation(recall: RecallDetail) -> list[Flowable]:
    rows = [
        [
            f"{c.code} {c.name}",
            _qty(c.shipped_quantity),
            _when(c.notified_at),
            _when(c.acknowledged_at),
            _qty(c.quantity_on_hand),
            _qty(c.quantity_returned),
            _qty(c.quantity_corrected),
            _qty(c.quantity_received_back),
            str(c.reminders),
            "yes" if c.reconciled else "no",
        ]
        for c in recall.consignee_board
    ]
    header = ["Consignee", "Shipped", "Notified", "Answered", "On hand", "Returned"]
    header += ["Corrected", "Received back", "Reminders", "Reconciled"]
    return [Paragraph("Reconciliation per consignee", H2), _table(header, rows)]


def _effectiveness(recall: RecallDetail) -> list[Flowable]:
    e = recall.effectiveness
    d = recall.drill_times
    target = f"{e.target_percent} %" if e.target_percent is not None else "—"
    story: list[Flowable] = [Paragraph("Effectiveness", H2)]
    story += _facts(
        [
            ("Level and target", f"{e.level or '—'} · target {target} responded"),
            ("Responded", f"{e.responded} of {e.consignees} ({e.responded_percent:.1f} %)"),
            ("Reconciled", f"{e.reconciled} of {e.consignees} ({e.reconciled_percent:.1f} %)"),
            (
                "Target met",
                "yes" if e.met else ("waived by " + e.waived_by if e.waived_by else "no"),
            ),
            ("Time to scope", _duration(d.time_to_scope)),
            ("Time to hold", _duration(d.time_to_hold)),
            ("Time to notify", _duration(d.time_to_notify)),
        ]
    )
    return story


def _signatures(recall: RecallDetail) -> list[Flowable]:
    rows = [
        [s.printed_name, s.signer, s.meaning, _when(s.signed_at), s.record_hash]
        for s in recall.signatures
    ]
    return [
        Paragraph("Signatures", H2),
        _table(["Printed name", "User", "Meaning", "Signed", "Hash of the signed record"], rows),
    ]


def _timeline(recall: RecallDetail) -> list[Flowable]:
    rows = [
        [_when(a.recorded_at), a.actor, a.action, a.entity_id, a.reason or a.outcome]
        for a in recall.timeline
    ]
    return [
        Paragraph("Timeline (audit trail)", H2),
        _table(["When", "Who", "What", "On", "Why"], rows),
    ]


# ---------------------------------------------------------------- pieces


def _t(text: object) -> str:
    return escape(str(text))


def _facts(pairs: Sequence[tuple[str, str]]) -> list[Flowable]:
    table = LongTable(
        [[Paragraph(f"<b>{_t(k)}</b>", BODY), Paragraph(_t(v), BODY)] for k, v in pairs],
        colWidths=[38 * mm, None],
    )
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [table]


def _table(header: list[str], rows: list[list[str]]) -> Flowable:
    if not rows:
        return Paragraph("None.", BODY)
    cells = [[Paragraph(f"<b>{_t(h)}</b>", SMALL) for h in header]]
    cells += [[Paragraph(_t(value), SMALL) for value in row] for row in rows]
    table = LongTable(cells, repeatRows=1)
    table.setStyle(GRID)
    return table


def _difference(difference: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(difference.items()):
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{key.replace('_', ' ')}: {shown or '—'}")
    return "; ".join(parts) or "—"


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _qty(value: Decimal | None) -> str:
    return "—" if value is None else f"{Decimal(value).normalize():,f}"


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
