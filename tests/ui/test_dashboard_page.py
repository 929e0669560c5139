"""The /dashboard page on known rows: every chart is an accessible SVG followed by its table with
the same numbers, the filters are labelled and keep their values, a bad filter answers 422 with
what to send, and a reader whose locale is Simplified Chinese gets the page in Chinese."""

from __future__ import annotations

import re

from sqlalchemy import update

from erp.models import AppUser
from tests.dashboard_rows import RANGE, load_known_rows
from tests.ui.conftest import Site, text_of
from ui import charts
from ui.charts import Series, Table

FIGURE = re.compile(r'<figure class="chart" id="([^"]+)">(.*?)</figure>', re.S)


async def test_the_dashboard_draws_each_figure_with_its_table(site: Site) -> None:
    await load_known_rows(site.sessions)
    page = await site.as_user("heidi")
    response = await page.get("/dashboard", params=RANGE | {"process": "purchase"})
    assert response.status_code == 200, response.text
    html = response.text
    assert '<a href="/dashboard" aria-current="page">Dashboard</a>' in html

    figures = dict(FIGURE.findall(html))
    assert set(figures) == {
        "chart-sla",
        "chart-process-cycle",
        "chart-step-cycle",
        "chart-task-trend",
        "chart-process-trend",
        "chart-capa-aging",
        "chart-nc-source",
        "chart-nc-supplier",
        "chart-suppliers",
        "chart-recalls",
    }
    for chart_id, body in figures.items():
        assert f'role="img" aria-labelledby="{chart_id}-title"' in body
        assert f'<title id="{chart_id}-title">' in body
        assert body.index("</svg>") < body.index("<table"), f"{chart_id}: the table follows"

    def table(chart_id: str) -> str:
        return text_of(figures[chart_id].split("</svg>", 1)[1])

    # the same numbers as the API test: stacked SLA row with its total, medians and p90s
    assert "Process On time Due soon Overdue Escalated Open tasks Purchase 2 1 1 1 5" in table(
        "chart-sla"
    )
    assert "Purchase · approval 2 6 6.8 Purchase · inspection 5 3 7.6" in table("chart-step-cycle")
    assert "2026-01-05 4 2.5 4.4 2026-01-12 3 7 9.4" in table("chart-task-trend")
    assert "0–30 days 1 31–90 days 1 91–180 days 1 More than 180 days 1" in table(
        "chart-capa-aging"
    )
    assert "Incoming inspection 3 Customer complaint 1" in table("chart-nc-source")
    assert re.search(r"SUP-0001 · [^0-9]+ 75 % 75 %", table("chart-suppliers"))
    assert "RCL-T-1 66.7 % 50 % 30 %" in table("chart-recalls")

    text = text_of(html)
    assert "Lots on hold 2" in text
    # every field has its label; the filters keep what was asked
    for field in re.findall(r'<(?:input|select)[^>]*\bid="(d-[a-z]+)"', html):
        assert f'<label for="{field}">' in html
    assert 'name="from" type="date" value="2026-01-05"' in html
    assert '<option value="purchase" selected>' in html


async def test_bad_filters_answer_422_in_the_readers_language(site: Site) -> None:
    page = await site.as_user("bob")
    response = await page.get("/dashboard", params={"from": "2026-02-01", "to": "2026-01-01"})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert "The date range starts (2026-02-01) after it ends (2026-01-01); swap from and to." in (
        text_of(response.text)
    )
    assert "<svg" not in response.text

    async with site.sessions() as session, session.begin():
        await session.execute(
            update(AppUser).where(AppUser.username == "bob").values(locale="zh_Hans")
        )
    chinese = await site.as_user("bob")
    refused = await chinese.get("/dashboard", params={"process": "payroll"})
    assert refused.status_code == 422
    assert "流程须为" in text_of(refused.text)
    shown = await chinese.get("/dashboard")
    assert shown.status_code == 200
    text = text_of(shown.text)
    assert "运营看板" in text and "按服务级别状态的待处理任务" in text
    assert "Open tasks by SLA state" not in text


def test_a_chart_escapes_its_words_and_shows_a_gap_as_a_dash() -> None:
    """No server needed: ui/charts.py on its own."""
    figure = str(
        charts.line_chart(
            chart_id="c",
            title="<b>Weeks</b>",
            categories=["w1", "w2", "w3"],
            series=[Series("A & B", [1.0, None, 3.0])],
            number=lambda v: f"{v:g}",
            table=Table("Week"),
        )
    )
    assert "<b>" not in figure and "&lt;b&gt;Weeks&lt;/b&gt;" in figure
    assert "A &amp; B" in figure
    assert figure.count("<polyline") == 0  # the gap leaves two single points, no line
    assert figure.count("<circle") == 2
    assert text_of(figure.split("</svg>", 1)[1]) == "Week A & B w1 1 w2 — w3 3"
    empty = charts.bar_chart(
        chart_id="e",
        title="t",
        categories=[],
        series=[],
        number=str,
        table=Table("x"),
        empty="Nothing yet.",
    )
    assert str(empty) == '<p class="muted chart-empty">Nothing yet.</p>'
