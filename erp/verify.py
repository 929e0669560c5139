"""`make verify-audit`: recompute the audit chain and name the first broken row."""

from __future__ import annotations

import asyncio
import sys

from erp.audit import verify_chain
from erp.db import make_engine, make_session_factory
from settings import Settings


async def _main() -> int:
    engine = make_engine(Settings.from_env().require_database_url(), pool_size=1)
    async with make_session_factory(engine)() as session:
        result = await verify_chain(session)
    await engine.dispose()
    if result.ok:
        print(f"audit trail intact: {result.rows_checked} rows, head {result.head_hash}")
        return 0
    print(f"AUDIT TRAIL BROKEN at row {result.first_broken_id}: {result.problem}")
    print(f"({result.rows_checked} rows before it verified)")
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
