"""The recall report (PDF), kept for its callers: it is now the common report framing
(erp/reports.py) over erp/report_recall.py, so every page says when it was produced, by whom and
the SHA-256 of its content (its CSV form; docs/reports.md says how to re-compute it)."""

from __future__ import annotations

from datetime import UTC, datetime

from erp.report_recall import recall_report
from erp.reports import Producer, content_sha256, english, render_pdf
from schemas.api import RecallDetail


def content_hash(recall: RecallDetail) -> str:
    """SHA-256 of what the report states (its content as CSV, in English)."""
    return content_sha256(recall_report(recall, english))


def build_recall_report(
    recall: RecallDetail,
    *,
    produced_by: str,
    produced_at: datetime | None = None,
    compress: bool = True,
) -> tuple[bytes, str]:
    """The report in English as PDF bytes and its content hash."""
    producer = Producer(
        username=produced_by, full_name=produced_by, at=produced_at or datetime.now(UTC)
    )
    pdf = render_pdf(recall_report(recall, english), producer, english, compress=compress)
    return pdf.content, pdf.content_sha256
