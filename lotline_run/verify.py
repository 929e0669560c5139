"""`make verify-audit`: recompute the hash chain of the audit trail and name the first broken row."""

from __future__ import annotations

from erp.audit import verify_chain
from erp.db import make_engine, make_session_factory
from lotline_run.console import StartupError, warn
from lotline_run.embedded import start_postgres
from settings import Settings


async def verify(database_url: str) -> int:
    """0 when the audit trail is intact, 1 when a row does not fit the chain."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            result = await verify_chain(session)
    finally:
        await engine.dispose()
    if result.ok:
        print(f"audit trail intact: {result.rows_checked} rows, head {result.head_hash}")
        return 0
    print(f"AUDIT TRAIL BROKEN at row {result.first_broken_id}: {result.problem}")
    print(f"({result.rows_checked} rows before it verified)")
    return 1


async def verify_audit(settings: Settings) -> int:
    """Verify against DATABASE_URL, or the embedded database (started and stopped only if it was
    not already running). 2 when there is nothing to verify."""
    if settings.database_url:
        return await verify(settings.database_url)
    pgdata = settings.data_dir / "pg"
    if not (pgdata / "PG_VERSION").exists():
        warn(f"no embedded database in {pgdata}; run `make run` first or set DATABASE_URL")
        return 2
    try:
        postgres = start_postgres(settings.data_dir)
    except StartupError as err:
        warn(str(err))
        return 2
    try:
        return await verify(postgres.url)
    finally:
        if postgres.started_here:
            postgres.stop()
