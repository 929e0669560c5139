"""Charts drawn on the server as inline SVG: horizontal bars (grouped or stacked) and lines.

Each chart is a <figure> holding the SVG (role="img", a <title> and aria-labelledby, so a screen
reader announces what it shows) and, right after it, a table with the same numbers: the table is
the chart's text equivalent and what a reader copies from. Nothing here translates: the caller
passes every word already in the reader's language and a function that writes a number the
reader's way. Colours are SVG attributes (the CSP forbids inline styles) and each reaches at
least 4.5:1 against white."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

Number = Callable[[float], str]
NOTHING = "—"

WIDTH = 640
BAR = 18  # one bar's height
GAP = 10  # between categories
LABEL_WIDTH = 200  # the category names left of the bars
VALUE_WIDTH = 64  # the number right of a bar
LEGEND = 26
LINE_HEIGHT = 240
INK, MUTED, GRID = "#17212b", "#56626e", "#d5dce3"
TONES = {
    "blue": "#0b5cad",
    "green": "#1a7f37",
    "amber": "#8a5a00",
    "red": "#b42318",
    "purple": "#6b3fa0",
    "teal": "#0e6d73",
    "grey": "#56626e",
}


@dataclass(frozen=True)
class Series:
    """One colour of the chart: a value per category; None where nothing was measured (no bar,
    a gap in the line, a dash in the table)."""

    name: str
    values: Sequence[float | None]
    tone: str = "blue"

    @property
    def colour(self) -> str:
        return TONES.get(self.tone, TONES["blue"])


@dataclass(frozen=True)
class Table:
    """The chart's numbers as a table: one row per category, a column per series (and the
    row's total for a stacked chart)."""

    category_heading: str
    total_heading: str | None = None  # a stacked chart's total column
    # columns the table has and the chart does not draw, e.g. how many tasks a median is of:
    # (heading, one text per category), shown after the category
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


def bar_chart(
    *,
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    number: Number,
    table: Table,
    stacked: bool = False,
    empty: str = "",
) -> Markup:
    """Horizontal bars, one group per category: side by side, or stacked into one bar.
    `chart_id` is unique on the page (the SVG's title is named by it)."""
    if not categories:
        return _empty(title, empty)
    fid = chart_id
    group = BAR if stacked else BAR * len(series)
    top = LEGEND if len(series) > 1 else 4
    height = top + len(categories) * (group + GAP) + 4
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(categories))]
    peak = max(totals if stacked else [v or 0 for s in series for v in s.values] or [0]) or 1
    scale = (WIDTH - LABEL_WIDTH - VALUE_WIDTH) / peak
    parts = [_svg_open(fid, title, height), _legend(series) if len(series) > 1 else ""]
    for i, category in enumerate(categories):
        y = top + i * (group + GAP)
        parts.append(_text(LABEL_WIDTH - 8, y + group / 2, _clip(category), anchor="end"))
        parts.append(_bars(series, i, y, scale, stacked, number, totals[i]))
    parts.append("</svg>")
    return _figure(fid, "".join(parts), _table(fid, table, categories, series, number, stacked))


def _bars(
    series: Sequence[Series],
    i: int,
    y: float,
    scale: float,
    stacked: bool,
    number: Number,
    total: float,
) -> str:
    out, x = [], float(LABEL_WIDTH)
    for n, s in enumerate(series):
        width = (s.values[i] or 0) * scale
        top = y if stacked else y + n * BAR
        if width > 0:
            label = f"{s.name}: {_number(number, s.values[i])}"
            out.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{max(width, 1):.1f}" height="{BAR - 2}"'
                f' fill="{s.colour}"><title>{escape(label)}</title></rect>'
            )
        if stacked:
            x += width
        else:
            out.append(_text(LABEL_WIDTH + width + 6, top + BAR / 2, _number(number, s.values[i])))
    if stacked:
        out.append(_text(x + 6, y + BAR / 2, number(total), weight="600"))
    return "".join(out)


def line_chart(
    *,
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    number: Number,
    table: Table,
    empty: str = "",
) -> Markup:
    """Lines over ordered categories (weeks). Every series has a value for every category; what
    stands where nothing was measured (0, or leaving the category out) is the caller's choice."""
    if not categories:
        return _empty(title, empty)
    fid = chart_id
    left, right, top, bottom = 64, 16, LEGEND + 8, 28
    plot_w, plot_h = WIDTH - left - right, LINE_HEIGHT - top - bottom
    peak = max([v or 0 for s in series for v in s.values] or [0]) or 1
    step = plot_w / max(len(categories) - 1, 1)

    def point(i: int, value: float) -> tuple[float, float]:
        return left + i * step, top + plot_h - value / peak * plot_h

    parts = [_svg_open(fid, title, LINE_HEIGHT), _legend(series)]
    for fraction in (0, 0.5, 1):
        y = top + plot_h - fraction * plot_h
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(_text(left - 6, y, number(peak * fraction), anchor="end", fill=MUTED))
    for i in _x_ticks(len(categories)):
        x, _ = point(i, 0)
        parts.append(_text(x, LINE_HEIGHT - 10, categories[i], anchor="middle", fill=MUTED))
    for s in series:
        parts.extend(_line(s, categories, point, number))
    parts.append("</svg>")
    return _figure(fid, "".join(parts), _table(fid, table, categories, series, number, False))


def _line(
    s: Series,
    categories: Sequence[str],
    point: Callable[[int, float], tuple[float, float]],
    number: Number,
) -> list[str]:
    """One series: a polyline per run of measured values, a dot (with its value) on each."""
    out: list[str] = []
    runs: list[list[tuple[float, float]]] = [[]]
    for i, (category, value) in enumerate(zip(categories, s.values, strict=True)):
        if value is None:
            runs.append([])
            continue
        x, y = point(i, value)
        runs[-1].append((x, y))
        label = f"{s.name}, {category}: {number(value)}"
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{s.colour}">'
            f"<title>{escape(label)}</title></circle>"
        )
    lines = [
        f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in run)}" fill="none"'
        f' stroke="{s.colour}" stroke-width="2.5"/>'
        for run in runs
        if len(run) > 1
    ]
    return lines + out


def _number(number: Number, value: float | None) -> str:
    return NOTHING if value is None else number(value)


def _x_ticks(count: int) -> list[int]:
    """At most seven labels under the x axis, always the first and the last."""
    if count <= 7:
        return list(range(count))
    every = -(-count // 6)
    return sorted({*range(0, count, every), count - 1})


def _svg_open(fid: str, title: str, height: float) -> str:
    return (
        f'<svg class="chart-svg" role="img" aria-labelledby="{fid}-title"'
        f' viewBox="0 0 {WIDTH} {height:.0f}" width="100%" preserveAspectRatio="xMinYMin meet"'
        f' xmlns="http://www.w3.org/2000/svg" font-size="13" font-family="inherit">'
        f'<title id="{fid}-title">{escape(title)}</title>'
    )


def _legend(series: Sequence[Series]) -> str:
    out, x = [], float(LABEL_WIDTH)
    for s in series:
        out.append(f'<rect x="{x:.1f}" y="4" width="12" height="12" fill="{s.colour}"/>')
        out.append(_text(x + 16, 10, s.name))
        x += 28 + _width(s.name)
    return f'<g aria-hidden="true">{"".join(out)}</g>'


def _text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    fill: str = INK,
    weight: str = "400",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" dominant-baseline="central" text-anchor="{anchor}"'
        f' fill="{fill}" font-weight="{weight}">{escape(content)}</text>'
    )


def _width(text: str) -> float:
    """About how wide a text is drawn at 13 px: CJK characters are about twice a Latin one."""
    return sum(13.0 if ord(c) >= 0x2E80 else 7.5 for c in text)


def _clip(label: str, room: float = LABEL_WIDTH - 12) -> str:
    """A category name that fits left of the bars; the table below carries it whole."""
    if _width(label) <= room:
        return label
    while label and _width(label + "…") > room:
        label = label[:-1]
    return label + "…"


def _table(
    fid: str,
    table: Table,
    categories: Sequence[str],
    series: Sequence[Series],
    number: Number,
    stacked: bool,
) -> str:
    head = "".join(f'<th scope="col" class="num">{escape(name)}</th>' for name, _ in table.extra)
    head += "".join(f'<th scope="col" class="num">{escape(s.name)}</th>' for s in series)
    if stacked and table.total_heading:
        head += f'<th scope="col" class="num">{escape(table.total_heading)}</th>'
    rows = []
    for i, category in enumerate(categories):
        cells = "".join(f'<td class="num">{escape(texts[i])}</td>' for _, texts in table.extra)
        cells += "".join(
            f'<td class="num">{escape(_number(number, s.values[i]))}</td>' for s in series
        )
        if stacked and table.total_heading:
            total = sum(s.values[i] or 0 for s in series)
            cells += f'<td class="num"><strong>{escape(number(total))}</strong></td>'
        rows.append(f'<tr><th scope="row">{escape(category)}</th>{cells}</tr>')
    return (
        f'<div class="table-wrap"><table class="list chart-table" aria-labelledby="{fid}-title">'
        f'<thead><tr><th scope="col">{escape(table.category_heading)}</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _figure(fid: str, svg: str, table: str) -> Markup:
    return Markup(f'<figure class="chart" id="{fid}">{svg}{table}</figure>')


def _empty(title: str, message: str) -> Markup:
    return Markup(f'<p class="muted chart-empty">{escape(message or title)}</p>')
