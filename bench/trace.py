"""trace: forward trace of a typical recall scope (≤ 1,000 lots) and of a hub lot (≥ 100,000
descendants) over 1,000,000 lots and 3,000,000 genealogy edges, through the product's own code:
`erp.trace.trace_lot` (what `/api/v1/lots/{lot}/trace` and the lot and recall pages answer with)
and `erp.recall_scope.compute_scope` (the recall's frozen scope, on `erp.containment.forward_scope`,
which the NC containment uses too).

The ceiling is a breadth-first search in Python over the same edges, loaded into a dict beforehand:
no database, no lot details, ids only; nothing that answers the question can be faster. For
reference, the walk common in ERPs: level by level, one SELECT of a lot's children per lot.

The genealogy is layered as a device maker's is, each lot made from lots made shortly before it:
purchased resin, colour masterbatch, tubing, connector and pouch lots; moulded component lots (a
resin and a masterbatch lot each); sub-assembly lots (two moulded components, a tubing and a
connector lot); finished lots (a pouch lot and as many sub-assembly lots as make up the edge
count), each shipped in one line to one of the consignees. One resin lot, a silo lot the moulding
shop ran on for weeks, is the hub: it also went into a run of consecutive moulded lots, enough
for its forward trace to reach `hub_descendants` lots.

Everything is generated in the real tables of a migrated embedded PostgreSQL with INSERT … SELECT
over generate_series, ids computed, every edge with the `issue` movement that made it and every
shipment line with its `ship` movement. The loading transaction runs with
session_replication_role = replica (bench database only): the row triggers (the lot status
history, the issue movement's RELEASED check and stock decrement) and the foreign-key triggers
are off while loading; the data is consistent by construction, and a query checks the edges'
foreign keys afterwards. Unique and check constraints hold throughout.
"""

from __future__ import annotations

import asyncio
import functools
import math
import shutil
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.common import Row, Sizes, Stopwatch, p50, p95, say
from erp.db import make_engine, make_session_factory
from erp.master_data import Lot
from erp.migrate import upgrade
from erp.recall_scope import compute_scope
from erp.trace import trace_lot
from lotline_run.embedded import start_postgres

SCENARIO = "trace"
TYPICAL_LIMIT = 1_000  # lots a typical recall scope reaches at most (the words)
TYPICAL_TARGET_MS = 100.0
HUB_FACTOR = 5.0  # the hub's target: at most this many times the in-memory search
HUB_RUNS = 5  # at most: a hub trace takes seconds, and the machine is shared
LEVEL_WALK_BUDGET_S = 60.0  # the one-query-per-lot walk from the hub stops here (extrapolated)


@dataclass(frozen=True)
class Kind:
    """A kind of lot: its part, the share of all lots, and where it comes from."""

    code: str
    part_number: str
    description: str
    share: float  # of all lots; the finished lots take what is left
    supplier: str | None = None  # purchased lots only


KINDS = (
    Kind("RS", "RS-0010", "PVC compound, medical grade", 0.010, "SUP-B001"),
    Kind("CB", "CB-0020", "Colour masterbatch", 0.005, "SUP-B002"),
    Kind("TB", "TB-0150", "Tubing 3 mm", 0.015, "SUP-B003"),
    Kind("LC", "LC-0110", "Luer connector", 0.010, "SUP-B004"),
    Kind("PK", "PK-0550", "Sterile barrier pouch", 0.005, "SUP-B005"),
    Kind("MC", "MC-0300", "Moulded drip chamber", 0.140),
    Kind("SA", "SA-0100", "Tubing sub-assembly with connector", 0.300),
    Kind("IS", "IS-2000", "Infusion set, sterile", 0.0),
)
PRODUCED = ("MC", "SA", "IS")
# (child kind, parent kind, parents of that kind per child lot); IS's SA count is computed
RECIPES = (("MC", "RS", 1), ("MC", "CB", 1), ("SA", "MC", 2), ("SA", "TB", 1), ("SA", "LC", 1))
LINES_PER_SHIPMENT = 10
DAYS = 1_095  # three years of production


@dataclass
class Shape:
    """How many lots of each kind, their ids, and the edge plan that hits `edges` exactly."""

    counts: dict[str, int]
    first_id: dict[str, int]  # lot id of lot 1 of the kind, minus one
    hub_children: int  # consecutive moulded lots the hub lot also went into
    hub_start: int
    finished_sa: int  # sub-assembly parents of every finished lot …
    finished_extra: int  # … and one more for the first `finished_extra` finished lots
    customers: int

    @classmethod
    def plan(cls, sizes: Sizes) -> Shape:
        counts = {k.code: max(20, round(sizes.lots * k.share)) for k in KINDS if k.share}
        counts["IS"] = sizes.lots - sum(counts.values())
        first_id: dict[str, int] = {}
        at = 0
        for k in KINDS:
            first_id[k.code] = at
            at += counts[k.code]
        # a run of consecutive moulded lots shares many sub-assemblies and finished lots: each
        # adds ~7 lots to the hub's reach (checked by the in-memory search afterwards)
        hub_children = min(counts["MC"] // 2, math.ceil(sizes.hub_descendants / 6))
        fixed = sum(counts[child] * n for child, _, n in RECIPES) + hub_children + counts["IS"]
        rest = max(sizes.edges - fixed, counts["IS"])
        return cls(
            counts=counts,
            first_id=first_id,
            hub_children=hub_children,
            hub_start=counts["MC"] // 2,
            finished_sa=rest // counts["IS"],
            finished_extra=rest % counts["IS"],
            customers=max(20, sizes.lots // 500),
        )

    @property
    def hub_id(self) -> int:
        return self.first_id["RS"] + 1

    def lot_id(self, code: str, n: int) -> int:
        return self.first_id[code] + n

    def lot_number(self, code: str, n: int) -> str:
        return f"{code}-{n:07d}"

    @property
    def edges(self) -> int:
        recipes = sum(self.counts[child] * n for child, _, n in RECIPES)
        finished = self.counts["IS"] * (1 + self.finished_sa) + self.finished_extra
        return recipes + self.hub_children + finished


# ------------------------------------------------------------------------------ generation

SETUP = [
    """
    INSERT INTO supplier (code, name, country, status)
    SELECT format('SUP-B%s', lpad(n::text, 3, '0')), format('Bench supplier %s', n), 'DE', 'active'
    FROM generate_series(1, 5) n
    """,
    """
    INSERT INTO customer (code, name, country, address, email, webhook_url, min_shelf_life_days)
    SELECT format('CUS-B%s', lpad(n::text, 5, '0')), format('Hospital %s', n), 'DE',
           format('Klinikstrasse %s, Berlin', n), format('recalls%s@hospital.example', n), '', 180
    FROM generate_series(1, :customers) n
    """,
]

ITEM = """
INSERT INTO item (part_number, revision, description, device_class, gtin, shelf_life_days,
                  storage_condition, lot_controlled, serial_controlled, status, effective_on,
                  standard_cost)
VALUES (:part, 'A', :description, :device_class, NULL, 1095, '', true, false, 'effective',
        current_date - 1200, 1)
"""

WORK_ORDERS = """
INSERT INTO work_order (id, number, item_id, part_number, quantity, status, created_at,
                        produced_quantity, due_on, released_at, closed_at)
SELECT :first - :wo_base + n, format('WO-B%s', lpad((:first - :wo_base + n)::text, 8, '0')),
       i.id, i.part_number, 1000, 'closed', d, 1000, CAST(d AS date), d, d + interval '1 day'
FROM generate_series(1, :count) n
CROSS JOIN LATERAL (SELECT now() - make_interval(days => :days - n * :days / :count) AS d) t
JOIN item i ON i.part_number = :part
"""

# lots of one kind: consumed (the finished ones shipped), made or received over three years
LOTS = """
INSERT INTO lot (id, lot_number, item_id, part_number, supplier_id, supplier_lot, quantity, uom,
                 status, manufactured_on, expires_on, hold_reason, created_at, status_reason,
                 status_changed_by, origin, work_order_id, received_quantity)
SELECT :first + n, format('%s-%s', CAST(:code AS text), lpad(n::text, 7, '0')), i.id,
       i.part_number, s.id,
       CASE WHEN s.id IS NOT NULL THEN format('L%s', lpad((n * 7919)::text, 9, '0')) END,
       0, 'ea', :status, CAST(d AS date), CAST(d AS date) + 1095, '', d, 'all issued', 'bench',
       CASE WHEN s.id IS NULL THEN 'production' ELSE 'receipt' END,
       CASE WHEN s.id IS NULL THEN :first - :wo_base + n END, 1000
FROM generate_series(1, :count) n
CROSS JOIN LATERAL (SELECT now() - make_interval(days => :days - n * :days / :count) AS d) t
JOIN item i ON i.part_number = :part
LEFT JOIN supplier s ON s.code = CAST(:supplier AS text)
"""


def _parents(shape: Shape, child: str, parent: str, slots: int, salt: int) -> str:
    """Child lot n (1-based) of `child` takes `slots` lots of `parent`, each from its own window
    of the parent lots made shortly before it (the last 1 % of them): time-local, as a plant
    issues what it received or made recently, and spread within the window by a hash. For
    the finished lots' sub-assemblies, the first `finished_extra` take one more."""
    count, total = shape.counts[child], shape.counts[parent]
    first = shape.first_id[parent]
    if parent == "RS":  # resin lot 1 is the hub, reached only through its own run below
        first, total = first + 1, total - 1
    window = max(3, total // 100)
    where = ""
    if child == "IS" and parent == "SA":
        where = f"WHERE j < {shape.finished_sa} + CASE WHEN c.n <= {shape.finished_extra} THEN 1 ELSE 0 END"
        slots = shape.finished_sa + 1
    return f"""
    SELECT {shape.first_id[child]} + c.n AS child_id,
           {first} + 1 + (CAST(c.n - 1 AS bigint) * {total} / {count} - j * {window}
                          - (hashint4(c.n * 16 + j + {salt}) & 2147483647) % {window}
                          + CAST({total} AS bigint) * 64) % {total} AS parent_id
    FROM generate_series(1, {count}) c(n) CROSS JOIN generate_series(0, {slots - 1}) j {where}
    """


EDGES = """
WITH plan AS MATERIALIZED (
    SELECT nextval('inventory_movement_id_seq') AS movement_id, p.parent_id, p.child_id,
           p.child_id - {wo_base} AS work_order_id
    FROM ({parents}) p
), issued AS (
    INSERT INTO inventory_movement (id, lot_id, kind, quantity, reference, actor, created_at)
    SELECT movement_id, parent_id, 'issue', 10,
           format('WO-B%s', lpad(work_order_id::text, 8, '0')), 'bench', now()
    FROM plan
)
INSERT INTO genealogy_edge (parent_lot_id, child_lot_id, quantity, work_order_id, movement_id,
                            created_at)
SELECT parent_id, child_id, 10, work_order_id, movement_id, now() FROM plan
"""

# finished lot n is shipped in shipment (n - 1) / 10 + 1, to that shipment's consignee
SHIPMENTS = [
    """
    INSERT INTO shipment (id, number, customer_id, status, carrier, tracking, created_at,
                          shipped_at, delivered_at, delivery_note)
    SELECT s, format('SH-B%s', lpad(s::text, 7, '0')),
           1 + (hashint4(s) & 2147483647) % :customers, 'delivered', 'DHL',
           format('JD%s', lpad(s::text, 12, '0')), d, d, d + interval '2 days', ''
    FROM generate_series(1, :shipments) s
    CROSS JOIN LATERAL (SELECT now() - make_interval(days => :days - s * :days / :shipments)
                        AS d) t
    """,
    """
    WITH plan AS MATERIALIZED (
        SELECT nextval('inventory_movement_id_seq') AS movement_id, :first + n AS lot_id,
               (n - 1) / :per + 1 AS shipment_id
        FROM generate_series(1, :count) n
    ), shipped AS (
        INSERT INTO inventory_movement (id, lot_id, kind, quantity, reference, actor, created_at)
        SELECT movement_id, lot_id, 'ship', 1000, format('SH-B%s', lpad(shipment_id::text, 7, '0')),
               'bench', now()
        FROM plan
    )
    INSERT INTO shipment_line (shipment_id, lot_id, part_number, quantity, consignee_id,
                               movement_id)
    SELECT p.shipment_id, p.lot_id, :part, 1000, s.customer_id, p.movement_id
    FROM plan p JOIN shipment s ON s.id = p.shipment_id
    """,
]

CHECK_EDGES = """
SELECT count(*) FROM genealogy_edge e
WHERE NOT EXISTS (SELECT 1 FROM lot l WHERE l.id = e.parent_lot_id)
   OR NOT EXISTS (SELECT 1 FROM lot l WHERE l.id = e.child_lot_id)
   OR NOT EXISTS (SELECT 1 FROM work_order w WHERE w.id = e.work_order_id)
   OR NOT EXISTS (SELECT 1 FROM inventory_movement m WHERE m.id = e.movement_id)
"""

TABLES = (
    "item",
    "supplier",
    "customer",
    "work_order",
    "lot",
    "inventory_movement",
    "genealogy_edge",
    "shipment",
    "shipment_line",
)


async def generate(sessions: async_sessionmaker[AsyncSession], shape: Shape) -> tuple[float, int]:
    """Load the genealogy; (seconds, rows written)."""
    wo_base = shape.first_id["MC"]
    shipments = math.ceil(shape.counts["IS"] / LINES_PER_SHIPMENT)
    common = {"days": DAYS, "wo_base": wo_base}
    with Stopwatch() as clock:
        async with sessions() as session, session.begin():
            await session.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in SETUP:
                await session.execute(text(statement), {"customers": shape.customers})
            for k in KINDS:
                await session.execute(
                    text(ITEM),
                    {
                        "part": k.part_number,
                        "description": k.description,
                        "device_class": "II" if k.code == "IS" else "none",
                    },
                )
            for k in KINDS:
                params = common | {
                    "first": shape.first_id[k.code],
                    "count": shape.counts[k.code],
                    "part": k.part_number,
                }
                if k.code in PRODUCED:
                    await session.execute(text(WORK_ORDERS), params)
                status = "SHIPPED" if k.code == "IS" else "CONSUMED"
                await session.execute(
                    text(LOTS), params | {"code": k.code, "status": status, "supplier": k.supplier}
                )
                say(f"trace: {shape.counts[k.code]:,} {k.code} lots")
            hub = (
                f"SELECT {shape.first_id['MC']} + n AS child_id, {shape.hub_id} AS parent_id "
                f"FROM generate_series({shape.hub_start}, "
                f"{shape.hub_start + shape.hub_children - 1}) n"
            )
            for child in PRODUCED:
                parts = [
                    _parents(shape, child, parent, slots, salt)
                    for salt, (c, parent, slots) in enumerate(RECIPES)
                    if c == child
                ]
                if child == "MC":
                    parts.append(hub)
                if child == "IS":
                    parts += [
                        _parents(shape, "IS", "PK", 1, 11),
                        _parents(shape, "IS", "SA", 0, 13),
                    ]
                query = EDGES.format(wo_base=wo_base, parents=" UNION ALL ".join(parts))
                await session.execute(text(query))
                say(f"trace: edges into the {child} lots")
            for statement in SHIPMENTS:
                await session.execute(
                    text(statement),
                    common
                    | {
                        "customers": shape.customers,
                        "shipments": shipments,
                        "first": shape.first_id["IS"],
                        "count": shape.counts["IS"],
                        "per": LINES_PER_SHIPMENT,
                        "part": "IS-2000",
                    },
                )
            for table in ("lot", "work_order", "shipment"):
                await session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                    )
                )
        rows = 0
        async with sessions() as session:
            for table in TABLES:
                rows += await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0
    return clock.seconds, rows


# ------------------------------------------------------------------------------ the walks


def load_children(dsn: str) -> dict[int, list[int]]:
    """Every edge, parent → children, for the in-memory search."""
    children: dict[int, list[int]] = {}
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT parent_lot_id, child_lot_id FROM genealogy_edge")
        for parent, child in cur:
            children.setdefault(parent, []).append(child)
    return children


def bfs(children: dict[int, list[int]], root: int) -> int:
    """Lots reached forward from `root`, itself included."""
    seen = {root}
    queue = deque([root])
    while queue:
        for child in children.get(queue.popleft(), ()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return len(seen)


CHILDREN = text("SELECT child_lot_id FROM genealogy_edge WHERE parent_lot_id = :lot")


async def level_walk(session: AsyncSession, root: int, budget_s: float) -> tuple[int, bool]:
    """Level by level, one query per lot: (lots reached, whether it finished within budget)."""
    deadline = time.perf_counter() + budget_s
    seen = {root}
    level = [root]
    while level:
        following: list[int] = []
        for lot_id in level:
            for (child,) in await session.execute(CHILDREN, {"lot": lot_id}):
                if child not in seen:
                    seen.add(child)
                    following.append(child)
            if time.perf_counter() > deadline:
                return len(seen), False
        level = following
    return len(seen), True


async def timed(runs: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    """`runs` timings of `call()` in ms, after one warm-up call."""
    await call()
    times = []
    for _ in range(runs):
        with Stopwatch() as clock:
            await call()
        times.append(clock.ms)
    return times


def _timed_bfs(children: dict[int, list[int]], roots: list[int], runs: int) -> list[float]:
    times = []
    for root in roots:
        bfs(children, root)
        for _ in range(runs):
            with Stopwatch() as clock:
                bfs(children, root)
            times.append(clock.ms)
    return times


# ------------------------------------------------------------------------------ the scenario


def typical_roots(shape: Shape) -> list[tuple[str, int]]:
    """Lots a recall typically starts from, made in the middle of the three years: two resin
    lots, two masterbatch lots, a tubing, connector, pouch and moulded component lot."""
    picks = [
        ("RS", 0.4),
        ("RS", 0.6),
        ("CB", 0.5),
        ("TB", 0.5),
        ("LC", 0.5),
        ("PK", 0.5),
        ("MC", 0.3),
        ("CB", 0.3),
    ]
    return [(code, max(2, int(shape.counts[code] * at))) for code, at in picks]


async def run(sizes: Sizes) -> list[Row]:
    shape = Shape.plan(sizes)
    root_dir = Path(tempfile.mkdtemp(prefix="lotline-bench-trace-"))
    root_dir.chmod(0o755)
    postgres = None
    try:
        postgres = start_postgres(root_dir / "data")
        postgres.ensure_database()
        await asyncio.to_thread(upgrade, postgres.url)
        engine = make_engine(postgres.url, pool_size=2)
        try:
            sessions = make_session_factory(engine)
            return await _measure(sessions, postgres.socket_dir, shape, sizes)
        finally:
            await engine.dispose()
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(root_dir, ignore_errors=True)


async def _measure(
    sessions: async_sessionmaker[AsyncSession], socket_dir: Path, shape: Shape, sizes: Sizes
) -> list[Row]:
    say(f"trace: generating {sizes.lots:,} lots and {shape.edges:,} edges …")
    load_s, rows_written = await generate(sessions, shape)
    dsn = f"host={socket_dir} user=postgres dbname=lotline"
    with Stopwatch() as vacuum:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"VACUUM (ANALYZE) {', '.join(TABLES)}")
    async with sessions() as session:
        broken = await session.scalar(text(CHECK_EDGES))
        edges = await session.scalar(text("SELECT count(*) FROM genealogy_edge")) or 0
        lots = await session.scalar(text("SELECT count(*) FROM lot")) or 0
    if broken:
        raise RuntimeError(f"{broken} generated edges break a foreign key")
    say(
        f"trace: loaded {rows_written:,} rows in {load_s:.1f} s, VACUUM ANALYZE {vacuum.seconds:.1f} s"
    )

    with Stopwatch() as loading:
        children = await asyncio.to_thread(load_children, dsn)
    candidates = typical_roots(shape)
    reach = {(code, n): bfs(children, shape.lot_id(code, n)) for code, n in candidates}
    typical = [c for c in candidates if reach[c] <= TYPICAL_LIMIT]
    too_big = [c for c in candidates if reach[c] > TYPICAL_LIMIT]
    hub_reach = bfs(children, shape.hub_id)
    say(
        f"trace: typical reach {sorted(reach.values())}, hub {hub_reach:,}; "
        f"edges in memory in {loading.seconds:.1f} s"
    )
    typical_ids = [shape.lot_id(code, n) for code, n in typical]
    typical_numbers = [shape.lot_number(code, n) for code, n in typical]
    hub_number = shape.lot_number("RS", 1)
    runs = sizes.trace_runs

    bfs_typical = _timed_bfs(children, typical_ids, runs)
    hub_runs = min(runs, HUB_RUNS)
    bfs_hub = _timed_bfs(children, [shape.hub_id], hub_runs)
    del children

    async def trace(number: str, expect: int) -> None:
        async with sessions() as session:
            result = await trace_lot(session, number, "forward")
        if len(result.lots) != expect:
            raise RuntimeError(f"trace of {number}: {len(result.lots)} lots, the search {expect}")

    async def scope(number: str, expect: int) -> None:
        async with sessions() as session:
            lot = await session.scalar(select(Lot).where(Lot.lot_number == number))
            assert lot is not None
            frozen = await compute_scope(session, [lot])
        if len(frozen.snapshot["lots"]) != expect:
            raise RuntimeError(f"scope of {number}: {len(frozen.snapshot['lots'])} lots")

    figures: dict[str, tuple[list[float], list[float]]] = {}
    for name, call in (("trace_lot", trace), ("compute_scope", scope)):
        say(f"trace: {name}, typical lots …")
        on_typical: list[float] = []
        for (code, n), number in zip(typical, typical_numbers, strict=True):
            on_typical += await timed(runs, functools.partial(call, number, reach[(code, n)]))
        say(f"trace: {name}, hub lot …")
        on_hub = await timed(hub_runs, functools.partial(call, hub_number, hub_reach))
        figures[name] = (on_typical, on_hub)

    say("trace: level-by-level walk …")
    walk_typical: list[float] = []
    async with sessions() as session:
        for lot_id in typical_ids:
            for _ in range(runs):
                with Stopwatch() as clock:
                    await level_walk(session, lot_id, LEVEL_WALK_BUDGET_S)
                walk_typical.append(clock.ms)
        with Stopwatch() as clock:
            walked, finished = await level_walk(session, shape.hub_id, LEVEL_WALK_BUDGET_S)
    walk_hub = clock.ms if finished else clock.ms * hub_reach / walked

    shape_note = (
        f"data: {lots:,} lots ({', '.join(f'{shape.counts[k.code]:,} {k.code}' for k in KINDS)}: "
        "resin, masterbatch, tubing, connector, pouch lots → moulded components → "
        "sub-assemblies → finished infusion sets), "
        f"{edges:,} genealogy edges each with its issue movement, "
        f"{shape.counts['IS']:,} shipment lines to {shape.customers:,} consignees; "
        f"loaded set-based in {load_s:.1f} s ({rows_written / load_s:,.0f} rows/s, triggers off "
        f"for the loading transaction), VACUUM ANALYZE {vacuum.seconds:.1f} s"
    )
    typical_note = (
        f"typical: {len(typical)} lots ({', '.join(typical_numbers)}), reaching "
        f"{min(reach[c] for c in typical)}–{max(reach[c] for c in typical)} lots "
        f"(median {statistics.median(reach[c] for c in typical):.0f}), {runs} runs each"
        + (
            f"; left out as over {TYPICAL_LIMIT:,} lots: "
            f"{', '.join(f'{shape.lot_number(*c)} ({reach[c]:,})' for c in too_big)}"
            if too_big
            else ""
        )
    )
    hub_note = (
        f"hub: resin lot {hub_number} (into {shape.hub_children:,} consecutive moulded lots), "
        f"reaching {hub_reach:,} lots, {hub_runs} runs (p95 of {hub_runs} is their slowest)"
    )
    trace_t, trace_h = figures["trace_lot"]
    scope_t, scope_h = figures["compute_scope"]
    walk_note = (
        "level-by-level walk: ids only (no lot details), one SELECT per lot on one session; "
        + (
            "hub walked once"
            if finished
            else f"hub stopped after {LEVEL_WALK_BUDGET_S:.0f} s at {walked:,} of {hub_reach:,} lots, "
            "time extrapolated by lots reached"
        )
    )
    p50_note = (
        f"p50 (ms): trace_lot typical {p50(trace_t):.1f}, hub {p50(trace_h):.0f}; "
        f"compute_scope typical {p50(scope_t):.1f}, hub {p50(scope_h):.0f}; in-memory search "
        f"typical {p50(bfs_typical):.2f}, hub {p50(bfs_hub):.1f} (edges loaded in "
        f"{loading.seconds:.1f} s, not counted); level walk typical {p50(walk_typical):.1f}"
    )
    ceiling_t, ceiling_h = p95(bfs_typical), p95(bfs_hub)

    def typical_row(figure: str, times: list[float], notes: list[str]) -> Row:
        value = p95(times)
        return Row(
            SCENARIO,
            figure,
            value,
            "ms",
            ceiling_t,
            "lower",
            "≤ 100 ms",
            value <= TYPICAL_TARGET_MS,
            notes,
        )

    def hub_row(figure: str, times: list[float]) -> Row:
        value = p95(times)
        return Row(
            SCENARIO,
            figure,
            value,
            "ms",
            ceiling_h,
            "lower",
            "≤ 5 × in-memory BFS",
            value <= HUB_FACTOR * ceiling_h,
        )

    return [
        typical_row(
            "forward trace (trace_lot, API), typical scope, p95",
            trace_t,
            [shape_note, typical_note, hub_note, p50_note, walk_note],
        ),
        hub_row(f"forward trace (trace_lot, API), hub lot ({hub_reach:,} lots), p95", trace_h),
        typical_row("recall scope (compute_scope → forward_scope), typical, p95", scope_t, []),
        hub_row("recall scope (compute_scope → forward_scope), hub lot, p95", scope_h),
        Row(
            SCENARIO,
            "reference: level walk, one query per lot, typical, p95",
            p95(walk_typical),
            "ms",
            ceiling_t,
            "lower",
            "reference",
        ),
        Row(
            SCENARIO,
            "reference: level walk, one query per lot, hub lot"
            + ("" if finished else " (extrapolated)"),
            walk_hub,
            "ms",
            ceiling_h,
            "lower",
            "reference",
        ),
    ]
