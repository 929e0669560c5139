"""The common framing of every printed report: its content as sections, the CSV that is its
canonical form, the SHA-256 over that content, and the PDF that prints the same content with
when it was produced, by whom and the hash on every page.

A PDF cannot hold its own hash, so the hash is taken over the report's *content* as CSV (UTF-8,
CRLF line ends), which is also what the CSV file carries after its header lines: an auditor
re-computes it from the CSV file (everything after the first empty line) or from the record. The
header lines (produced at, by, hash) are outside the hash, so the same record printed twice
states the same hash. See docs/reports.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from markupsafe import Markup
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from ui import values
from ui.i18n import keyed

Translate = Callable[..., str]  # ui.i18n.gettext_for(locale): English text -> the reader's
FORMATS = ("pdf", "csv")
HEADER_END = b"\r\n\r\n"  # the CSV's header lines end at the first empty line
UTF8_BOM = b"\xef\xbb\xbf"  # so a spreadsheet reads the file as UTF-8 (Chinese, names); not hashed
LATIN = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
CJK = "STSong-Light"  # one of the PDF's standard CJK fonts: readers supply it, nothing embedded
MARGIN = 15 * mm
_SPREADSHEET_FORMULA = re.compile(r"^[=+@\t\r]|^-(?![\d.])")


def english(message: str, **values: Any) -> str:
    """The identity translation, for callers that print in English."""
    return message % values if values else message


def plain(_: Translate) -> Translate:
    """A report's `_` giving plain text: a page's `_` (`ui.i18n.gettext_for`) answers HTML-safe
    markup, whose values are escaped (`O'Brien & Co` → `O&#39;Brien &amp; Co`); a report is
    no HTML (the PDF escapes what it prints itself, a CSV cell is text), so the escaping is
    undone once."""

    def translate(message: str, /, **found: Any) -> str:
        text = _(message, **found)
        return text.unescape() if isinstance(text, Markup) else str(text)

    return translate


def label(_: Translate, context: str, value: object) -> str:
    """A stored value's label in the reader's language, as the pages show it
    (`ui.values.stored`): the entry of its context (`msgctxt "audit action"`), else the label's
    own translation (as it is, or capitalised, as an outcome `reject` finds `Reject`), else the
    English label (`ui.values.VALUE_LABELS`; a value it does not know, `_` read as a space)."""
    english_label = values.english(context, value)
    if not english_label:
        return ""
    capitalised = english_label[:1].upper() + english_label[1:]
    for key in (keyed(context, english_label), english_label, capitalised):
        text = str(_(key))
        if text != key:
            return text
    return english_label


def recorded(_: Translate, context: str, value: object) -> str:
    """A stored value (a status, a kind, a role) as a report prints it: as recorded, and for a
    reader whose language has its label, the label with the recorded value beside it in
    parentheses (`已放行 (RELEASED)`), so an auditor still reads what the database holds. An
    English report prints the value as recorded, as it always has."""
    raw = text_of(value)
    if not raw:
        return raw
    shown = label(_, context, raw)
    return raw if shown in (raw, values.english(context, raw)) else f"{shown} ({raw})"


@dataclass
class Section:
    """One part of a report: facts (label, value) and/or a table (columns, rows)."""

    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    widths: list[float] | None = None  # relative column widths in the PDF
    empty: str = "None."


@dataclass
class Report:
    """What a report states. `kind` names it (audit-trail, dhr, …) and `subject` the record."""

    kind: str
    title: str
    subject: str
    sections: list[Section]
    wide: bool = False  # landscape pages (many columns)


@dataclass(frozen=True)
class Producer:
    """Who asked for the report and when (UTC): printed on it, not part of its hash."""

    username: str
    full_name: str
    at: datetime

    @property
    def by(self) -> str:
        """The printed name and the user name, e.g. "Carol Diaz (carol)"."""
        if not self.full_name or self.full_name == self.username:
            return self.username
        return f"{self.full_name} ({self.username})"


@dataclass(frozen=True)
class ReportFile:
    content: bytes
    media_type: str
    filename: str
    content_sha256: str


# ---------------------------------------------------------------- values


def text_of(value: object) -> str:
    """A value as the report prints it: UTC times, plain decimals, compact JSON, '' for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def row(*values: object) -> list[str]:
    return [text_of(v) for v in values]


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + value if _SPREADSHEET_FORMULA.match(value) else value


def _csv_lines(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([[_cell(v) for v in r] for r in rows])
    return buffer.getvalue().encode()


# ---------------------------------------------------------------- the content and its hash


def content_csv(report: Report) -> bytes:
    """The report's canonical content: a title row, then each section as its title, its facts,
    its column headings and rows, with an empty row between sections."""
    rows: list[list[str]] = [[report.title, report.subject]]
    for section in report.sections:
        rows.append([])
        rows.append([f"# {section.title}"])
        rows += [[label, value] for label, value in section.facts]
        if section.columns:
            rows.append(section.columns)
            rows += section.rows
    return _csv_lines(rows)


def content_sha256(report: Report) -> str:
    return hashlib.sha256(content_csv(report)).hexdigest()


def produced_lines(report: Report, producer: Producer, digest: str, _: Translate) -> list[str]:
    """The header of every report, as (label, value) lines: what, when, by whom, hash."""
    return [
        _("Report"),
        f"{report.title} {report.subject}",
        _("Produced at (UTC)"),
        producer.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        _("Produced by"),
        producer.by,
        _("Content SHA-256"),
        digest,
    ]


def render_csv(report: Report, producer: Producer, _: Translate = english) -> ReportFile:
    """The CSV file: a UTF-8 byte order mark, four header lines (report, produced at, by,
    content hash), an empty line, then the content the hash is taken over."""
    content = content_csv(report)
    digest = hashlib.sha256(content).hexdigest()
    header = produced_lines(report, producer, digest, _)
    head = _csv_lines([header[i : i + 2] for i in range(0, len(header), 2)])
    return ReportFile(
        content=UTF8_BOM + head + b"\r\n" + content,
        media_type="text/csv; charset=utf-8",
        filename=f"{_filename(report)}.csv",
        content_sha256=digest,
    )


def hash_of_csv_file(csv_file: bytes) -> str:
    """What an auditor does: SHA-256 over everything after the CSV's first empty line."""
    _head, found, content = csv_file.partition(HEADER_END)
    if not found:
        raise ValueError("this is not a Lotline report CSV: it has no empty line after its header")
    return hashlib.sha256(content).hexdigest()


def _filename(report: Report) -> str:
    subject = re.sub(r"[^A-Za-z0-9._-]+", "_", report.subject).strip("_")[:80]
    return f"{report.kind}-{subject}" if subject else report.kind


# ---------------------------------------------------------------- PDF


@cache
def _cjk_font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(CJK))
    return CJK


def _needs_cjk(text: str) -> bool:
    """True when Helvetica (WinAnsi, i.e. cp1252) has no glyph for some character of `text`."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return True
    return False


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()["BodyText"]
    body = ParagraphStyle("report-body", parent=base, fontName=LATIN, fontSize=8, leading=10)
    return {
        "body": body,
        "small": ParagraphStyle("report-small", parent=body, fontSize=7, leading=8.6),
        "h1": ParagraphStyle(
            "report-h1", parent=body, fontName=LATIN_BOLD, fontSize=14, leading=17, spaceAfter=4
        ),
        "h2": ParagraphStyle(
            "report-h2",
            parent=body,
            fontName=LATIN_BOLD,
            fontSize=10.5,
            leading=13,
            spaceBefore=8,
            spaceAfter=3,
        ),
    }


STYLES = _styles()
GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf3")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
    ]
)


def _para(text: str, style: str, *, bold: bool = False) -> Paragraph:
    """A paragraph of plain text; a CJK font when the text needs one (a Chinese heading, a
    name), since Helvetica has no glyphs for it."""
    marked = escape(text).replace("\n", "<br/>")
    if bold:
        marked = f"<b>{marked}</b>"
    if _needs_cjk(text):
        marked = f'<font name="{_cjk_font()}">{marked}</font>'
    return Paragraph(marked, STYLES[style])


def _draw(canvas: Canvas, x: float, y: float, text: str, *, right: bool = False) -> None:
    canvas.setFont(_cjk_font() if _needs_cjk(text) else LATIN, 7)
    (canvas.drawRightString if right else canvas.drawString)(x, y, text)


def render_pdf(
    report: Report, producer: Producer, _: Translate = english, *, compress: bool = True
) -> ReportFile:
    """The report as PDF: on every page its title, when and by whom it was produced, the content
    hash and the page number; on the first page the same facts and how to check the hash."""
    digest = content_sha256(report)
    pagesize = landscape(A4) if report.wide else A4
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=pagesize,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + 5 * mm,
        bottomMargin=MARGIN + 5 * mm,
        title=f"{report.title} {report.subject}",
        author=producer.by,
        subject=f"content SHA-256 {digest}",
        creator="Lotline",
        pageCompression=1 if compress else 0,
    )
    produced = producer.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    top = _(
        "%(report)s · produced %(when)s by %(who)s",
        report=f"{report.title} {report.subject}",
        when=produced,
        who=producer.by,
    )
    bottom = _("Content SHA-256: %(hash)s", hash=digest)
    width, height = pagesize

    def frame(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        _draw(canvas, MARGIN, height - MARGIN, top)
        _draw(canvas, MARGIN, MARGIN - 2 * mm, bottom)
        _draw(canvas, width - MARGIN, MARGIN - 2 * mm, _("page %(n)s", n=doc.page), right=True)
        canvas.restoreState()

    available = width - 2 * MARGIN
    document.build(
        _story(report, producer, digest, _, available), onFirstPage=frame, onLaterPages=frame
    )
    return ReportFile(
        content=buffer.getvalue(),
        media_type="application/pdf",
        filename=f"{_filename(report)}.pdf",
        content_sha256=digest,
    )


def _story(
    report: Report, producer: Producer, digest: str, _: Translate, available: float
) -> list[Flowable]:
    story: list[Flowable] = [_para(f"{report.title} {report.subject}", "h1")]
    story.append(
        _facts(
            [
                (_("Produced at (UTC)"), producer.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")),
                (_("Produced by"), producer.by),
                (_("Content SHA-256"), digest),
                (
                    _("How to check"),
                    _(
                        "SHA-256 over the CSV form of this report after its first empty line "
                        "(see docs/reports.md)"
                    ),
                ),
            ]
        )
    )
    for section in report.sections:
        story.append(_para(section.title, "h2"))
        if section.facts:
            story.append(_facts(section.facts))
        if section.columns:
            if section.facts:
                story.append(Spacer(1, 2 * mm))
            story.append(_table(section, available, _))
    return story


def _facts(pairs: Sequence[tuple[str, str]]) -> Flowable:
    table = LongTable(
        [[_para(k, "body", bold=True), _para(v, "body")] for k, v in pairs],
        colWidths=[45 * mm, None],
        splitInRow=1,  # a long value (signed content, a comment) may run over a page
    )
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _table(section: Section, available: float, _: Translate) -> Flowable:
    if not section.rows:
        return _para(_(section.empty), "body")
    weights = section.widths or [1.0] * len(section.columns)
    total = sum(weights)
    cells = [[_para(h, "small", bold=True) for h in section.columns]]
    cells += [[_para(value, "small") for value in r] for r in section.rows]
    table = LongTable(
        cells, repeatRows=1, colWidths=[available * w / total for w in weights], splitInRow=1
    )
    table.setStyle(GRID)
    return table


def render(report: Report, producer: Producer, fmt: str, _: Translate = english) -> ReportFile:
    """The report in the format asked for (pdf or csv)."""
    if fmt == "csv":
        return render_csv(report, producer, _)
    if fmt == "pdf":
        return render_pdf(report, producer, _)
    raise ValueError(f"format is pdf or csv, not {fmt!r}")
