"""`make verify-audit`: recompute the hash chain of the audit trail and name the first broken row,
check that the chain still reaches its sealed head, and check every e-signature against the
record it signed."""

from __future__ import annotations

from erp.audit import VerifyResult, verify_chain
from erp.db import make_engine, make_session_factory
from erp.signatures import SignatureCheck, verify_signatures
from lotline_run.audit_key import load_audit_key
from lotline_run.console import StartupError, warn
from lotline_run.embedded import start_postgres
from settings import Settings


async def verify(database_url: str) -> int:
    """0 when the audit trail and the signatures are intact, 1 when something does not fit."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            chain = await verify_chain(session)
            signatures = await verify_signatures(session)
    finally:
        await engine.dispose()
    _report_chain(chain)
    _report_signatures(signatures)
    return 0 if chain.ok and signatures.ok else 1


def _report_chain(result: VerifyResult) -> None:
    if not result.keyed:
        warn(
            "LOTLINE_AUDIT_KEY is not set: the MACs were checked with the built-in development "
            "key, which anyone can read in the source"
        )
    if result.ok:
        print(
            f"audit trail intact: {result.rows_checked} rows, head {result.head_hash}, "
            f"sealed at row {result.sealed_id}"
        )
        return
    print(f"AUDIT TRAIL BROKEN at row {result.first_broken_id}: {result.problem}")
    print(f"({result.rows_checked} rows before it verified)")


def _report_signatures(check: SignatureCheck) -> None:
    if check.ok:
        print(f"signatures intact: {check.checked} checked against the records they signed")
        return
    print(f"SIGNATURES BROKEN: {len(check.problems)} of {check.checked} no longer fit")
    for problem in check.problems:
        print(f"  {problem}")


async def verify_audit(settings: Settings) -> int:
    """Verify against DATABASE_URL, or the embedded database (started and stopped only if it was
    not already running). 2 when there is nothing to verify."""
    load_audit_key(settings.data_dir)
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
