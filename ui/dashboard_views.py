"""The operations dashboard page: the figures of erp/dashboard.py (the same the API answers at
GET /api/v1/dashboard), each chart drawn by ui/charts.py with its table, in the reader's
language. Filters: a date range and a process kind (the data model has no site)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from api.deps import DbSession
from api.errors import Message
from erp import dashboard as figures
from schemas.dashboard import PROCESS_KINDS, CycleTime, Dashboard, WeeklyCycleTime
from ui import charts, i18n, pages, reason_text
from ui.charts import Series, Table
from ui.i18n import N_
from ui.pages import User
from ui.quality_views import SOURCE_LABELS

router = APIRouter(include_in_schema=False)

READ_SCOPE = "dashboard:read"
PROCESS_LABELS = {
    "approval": N_("Approval"),
    "change-control": N_("Change control"),
    "procure-to-deliver": N_("Customer order"),
    "purchase": N_("Purchase"),
    "work-order": N_("Work order"),
    "shipment": N_("Shipment"),
    "nonconformance": N_("Nonconformance"),
    "capa": N_("CAPA"),
    "recall": N_("Recall"),
    "recall-notice": N_("Recall notice"),
}
SLA_SERIES = (
    ("on_time", N_("On time"), "green"),
    ("due_soon", N_("Due soon"), "amber"),
    ("overdue", N_("Overdue"), "red"),
    ("escalated", N_("Escalated"), "purple"),
)
CAPA_AGE_LABELS = {
    "0-30": N_("0–30 days"),
    "31-90": N_("31–90 days"),
    "91-180": N_("91–180 days"),
    "over-180": N_("More than 180 days"),
}
TREND_TONES = ("blue", "teal", "amber", "purple", "red", "green", "grey")
NC_SOURCE_LABELS = {source.value: label for source, label in SOURCE_LABELS.items()}
FIELD_LABELS = {"from": N_("Start date"), "to": N_("End date")}  # how a refusal names the field


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(
    request: Request,
    user: User,
    session: DbSession,
    date_from: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=20)] = None,
    process: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    user.require(READ_SCOPE)
    given = {"from": date_from or "", "to": date_to or "", "process": process or ""}
    try:
        filters = figures.parse_filters(
            date_from=date_from,
            date_to=date_to,
            process=process,
            today=datetime.now(UTC).date(),
        )
    except figures.FilterRefused as refused:
        values = dict(refused.values)
        if values.get("name") in FIELD_LABELS:
            values["name"] = Message(FIELD_LABELS[str(values["name"])])
        error = Message(refused.message, **values)  # the page's `sentence` translates it
        return pages.render(
            request, "dashboard.html", 422, board=None, form=given, error=error, **_choices(user)
        )
    board = await figures.dashboard(session, filters=filters)
    form = {
        "from": filters.date_from.isoformat(),
        "to": filters.date_to.isoformat(),
        "process": filters.process_kind or "",
    }
    return pages.render(
        request,
        "dashboard.html",
        board=board,
        form=form,
        chart=DashboardCharts(board, user.locale).all(),
        # the hold reasons' wordings, for every lot listed in one query:
        # {{ lot.hold_reason|lot_reason(lot_reasons.get(lot.lot_number)) }}
        lot_reasons=await reason_text.reasons_of_lots(
            session, [lot.lot_number for lot in board.lots_on_hold]
        ),
        process_label=partial(process_label, locale=user.locale),
        hours=partial(hours_text, locale=user.locale),
        **_choices(user),
    )


def _choices(user: Any) -> dict[str, Any]:
    return {
        "process_choices": [
            (kind, i18n.translate(user.locale, PROCESS_LABELS[kind])) for kind in PROCESS_KINDS
        ]
    }


# ---------------------------------------------------------------- words and numbers as the page writes them


def process_label(kind: str, locale: str | None = None) -> str:
    return i18n.translate(locale, PROCESS_LABELS.get(kind, kind))


def hours_text(value: float | None, locale: str | None = None) -> str:
    """Hours with at most one decimal, as the locale writes numbers: 3.25 → '3.3'."""
    return "—" if value is None else pages.qty(Decimal(str(round(value, 1))), locale)


def share_text(value: float | None, locale: str | None = None) -> str:
    """A percentage with at most one decimal: '66.7 %' (English), '66.7%' (Chinese)."""
    if value is None:
        return "—"
    number = pages.qty(Decimal(str(round(value, 1))), locale)
    return f"{number}%" if i18n.supported(locale) == "zh_Hans" else f"{number} %"


def count_text(value: float, locale: str | None = None) -> str:
    return pages.qty(int(round(value)), locale)


# ---------------------------------------------------------------- the charts


class DashboardCharts:
    """Every chart of the page, its words in the reader's language."""

    def __init__(self, board: Dashboard, locale: str) -> None:
        self.board = board
        self.locale = locale
        self.hours = partial(hours_text, locale=locale)
        self.share = partial(share_text, locale=locale)
        self.count = partial(count_text, locale=locale)

    def _(self, message: str) -> str:
        """Plain text (not markup): the chart module escapes what it draws."""
        return i18n.translate(self.locale, message)

    def all(self) -> dict[str, Markup]:
        return {
            "sla": self.sla(),
            "process_cycle": self.process_cycle(),
            "step_cycle": self.step_cycle(),
            "task_trend": self.task_trend(),
            "process_trend": self.process_trend(),
            "capa_aging": self.capa_aging(),
            "nc_source": self.nc_source(),
            "nc_supplier": self.nc_supplier(),
            "suppliers": self.suppliers(),
            "recalls": self.recalls(),
        }

    def counts(self, rows: Sequence[CycleTime | WeeklyCycleTime]) -> tuple[str, ...]:
        return tuple(self.count(r.count) for r in rows)

    def process(self, kind: str | None) -> str:
        return process_label(kind or "", self.locale)

    def sla(self) -> Markup:
        rows = self.board.open_tasks
        return charts.bar_chart(
            chart_id="chart-sla",
            title=self._("Open tasks by process and SLA state"),
            categories=[self.process(r.process_kind) for r in rows],
            series=[
                Series(self._(name), [getattr(r, key) for r in rows], tone)
                for key, name, tone in SLA_SERIES
            ],
            number=self.count,
            table=Table(self._("Process"), total_heading=self._("Open tasks")),
            stacked=True,
            empty=self._("No task is open."),
        )

    def _median_p90(self) -> tuple[str, str]:
        return self._("Median (hours)"), self._("90th percentile (hours)")

    def process_cycle(self) -> Markup:
        rows = self.board.process_cycle_times
        median, p90 = self._median_p90()
        return charts.bar_chart(
            chart_id="chart-process-cycle",
            title=self._("Cycle time per process, in hours"),
            categories=[self.process(r.process_kind) for r in rows],
            series=[
                Series(median, [r.median_hours for r in rows], "blue"),
                Series(p90, [r.p90_hours for r in rows], "amber"),
            ],
            number=self.hours,
            table=Table(self._("Process"), extra=((self._("Processes"), self.counts(rows)),)),
            empty=self._("No process was completed in this date range."),
        )

    def step_cycle(self) -> Markup:
        rows = self.board.step_cycle_times
        median, p90 = self._median_p90()
        return charts.bar_chart(
            chart_id="chart-step-cycle",
            title=self._("Cycle time per step, in hours"),
            categories=[f"{self.process(r.process_kind)} · {r.step}" for r in rows],
            series=[
                Series(median, [r.median_hours for r in rows], "blue"),
                Series(p90, [r.p90_hours for r in rows], "amber"),
            ],
            number=self.hours,
            table=Table(self._("Process and step"), extra=((self._("Tasks"), self.counts(rows)),)),
            empty=self._("No task was completed in this date range."),
        )

    def task_trend(self) -> Markup:
        rows = self.board.task_trend
        median, p90 = self._median_p90()
        return charts.line_chart(
            chart_id="chart-task-trend",
            title=self._("Task cycle time by week, in hours"),
            categories=[pages.show_date(r.week, self.locale) for r in rows],
            series=[
                Series(median, [r.median_hours for r in rows], "blue"),
                Series(p90, [r.p90_hours for r in rows], "amber"),
            ],
            number=self.hours,
            table=Table(self._("Week of"), extra=((self._("Tasks"), self.counts(rows)),)),
            empty=self._("No task was completed in this date range."),
        )

    def process_trend(self) -> Markup:
        rows = self.board.process_trend
        weeks = sorted({r.week for r in rows})
        kinds = sorted({r.process_kind or "" for r in rows})
        median = {(r.week, r.process_kind or ""): r.median_hours for r in rows}
        return charts.line_chart(
            chart_id="chart-process-trend",
            title=self._("Median process cycle time by week, in hours"),
            categories=[pages.show_date(w, self.locale) for w in weeks],
            series=[
                Series(
                    self.process(kind),
                    [median.get((w, kind)) for w in weeks],
                    TREND_TONES[i % len(TREND_TONES)],
                )
                for i, kind in enumerate(kinds)
            ],
            number=self.hours,
            table=Table(self._("Week of")),
            empty=self._("No process was completed in this date range."),
        )

    def capa_aging(self) -> Markup:
        rows = self.board.capa_aging
        return charts.bar_chart(
            chart_id="chart-capa-aging",
            title=self._("Open CAPAs by age"),
            categories=[self._(CAPA_AGE_LABELS.get(b.key, b.key)) for b in rows],
            series=[Series(self._("Open CAPAs"), [b.count for b in rows], "purple")],
            number=self.count,
            table=Table(self._("Days open")),
        )

    def nc_source(self) -> Markup:
        rows = self.board.nc_by_source
        return charts.bar_chart(
            chart_id="chart-nc-source",
            title=self._("Nonconformances by source"),
            categories=[self._(NC_SOURCE_LABELS.get(r.key, r.key)) for r in rows],
            series=[Series(self._("Nonconformances"), [r.count for r in rows], "red")],
            number=self.count,
            table=Table(self._("Source")),
            empty=self._("No nonconformance was reported in this date range."),
        )

    def nc_supplier(self) -> Markup:
        rows = self.board.nc_by_supplier
        return charts.bar_chart(
            chart_id="chart-nc-supplier",
            title=self._("Nonconformances by supplier"),
            categories=[f"{r.key} · {r.label}" for r in rows],
            series=[Series(self._("Nonconformances"), [r.count for r in rows], "red")],
            number=self.count,
            table=Table(self._("Supplier")),
            empty=self._("No nonconformance in this date range names a supplier."),
        )

    def suppliers(self) -> Markup:
        rows = self.board.supplier_scorecards
        return charts.bar_chart(
            chart_id="chart-suppliers",
            title=self._("Supplier scorecards: on-time delivery and acceptance rate"),
            categories=[f"{r.supplier_code} · {r.supplier_name}" for r in rows],
            series=[
                Series(self._("On time (%)"), [r.on_time_percent for r in rows], "blue"),
                Series(self._("Accepted (%)"), [r.acceptance_percent for r in rows], "green"),
            ],
            number=self.share,
            table=Table(self._("Supplier")),
            empty=self._("No receipt, incoming inspection or nonconformance in this date range."),
        )

    def recalls(self) -> Markup:
        rows = self.board.recalls
        return charts.bar_chart(
            chart_id="chart-recalls",
            title=self._("Recall effectiveness: consignees responded against the target"),
            categories=[r.number for r in rows],
            series=[
                Series(self._("Responded (%)"), [r.responded_percent for r in rows], "blue"),
                Series(
                    self._("Target (%)"),
                    [None if r.target_percent is None else r.target_percent for r in rows],
                    "grey",
                ),
                Series(self._("Units recovered (%)"), [r.recovered_percent for r in rows], "teal"),
            ],
            number=self.share,
            table=Table(self._("Recall")),
            empty=self._("No recall was open in this date range."),
        )
