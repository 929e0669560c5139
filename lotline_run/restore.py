"""`make restore BACKUP=file DATA_DIR=new`: a backup (lotline_run.backup) brought back into a new,
empty data directory (or an empty DATABASE_URL), checked before anything is written and proved
after: the archive's SHA-256 sums, then the restored row counts, Alembic revision and audit chain
against the manifest, then every open record against the restored Temporal.

Exit codes: 0 restored and proved; 1 refused or failed (nothing to use); 3 restored and proved,
but some records fall in the window between the Temporal and the database copy and need a person
(they are listed; docs/operations.md says what to do).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from erp.audit import verify_chain
from erp.db import make_engine
from erp.migrate import alembic_config
from lotline_run.audit_key import KEY_FILE
from lotline_run.backup import (
    DUMP,
    TEMPORAL_DB,
    BackupError,
    LibpqTarget,
    key_fingerprint,
    libpq_target,
    lotline_version,
    read_archive,
)
from lotline_run.children import Child
from lotline_run.console import StartupError, say, warn
from lotline_run.embedded import (
    connect_temporal,
    prepare_data_dir,
    start_postgres,
    temporal_command,
)
from lotline_run.stack import free_port, pg_tool
from settings import AUDIT_KEY_ENV, Settings, audit_key, audit_key_is_set

# records closed this long before the Temporal copy began are still looked at (clock skew)
GAP_SLACK = timedelta(minutes=10)
RESTORED_WITH_FINDINGS = 3


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)  # the restored copy does not match
    findings: list[str] = field(default_factory=list)  # records to reconcile by hand
    audit_line: str = ""


# --- checks before anything is written ----------------------------------------------------------


def check_revision(manifest: dict[str, Any]) -> None:
    """This code must know the archive's schema revision (it migrates older ones on start)."""
    revision = manifest["erp"].get("alembic_revision")
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    known = {r.revision for r in script.walk_revisions()}
    if revision not in known:
        raise BackupError(
            f"the backup's database is at Alembic revision {revision!r}, which this Lotline "
            f"({lotline_version()}) does not know; restore it with the Lotline version that "
            f"made it ({manifest.get('lotline_version')})"
        )


def check_target_dir(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(
            f"{data_dir} is not empty; restore into a new data directory (--data-dir, or "
            "DATA_DIR= for make restore), so nothing that exists is overwritten"
        )


def check_temporal_target(settings: Settings, manifest: dict[str, Any]) -> bool:
    """True when the archive's Temporal state goes into the data dir; says plainly otherwise."""
    included = bool(manifest["temporal"].get("included"))
    if settings.temporal_address:
        say(
            f"TEMPORAL_ADDRESS is set ({settings.temporal_address}): the archive's Temporal state "
            "is not restored here; an external cluster is restored by its operators"
        )
        return False
    if not included:
        raise BackupError(
            "this archive holds no Temporal state (it was taken with the external Temporal "
            f"{manifest['temporal'].get('address')}); restoring it beside a new embedded "
            "Temporal would orphan every running process. Set TEMPORAL_ADDRESS to that "
            "cluster, restored by its operators"
        )
    return True


def take_audit_key(manifest: dict[str, Any], key_file: Path | None) -> bool:
    """The audit key of the backup, which the archive does not hold: from --audit-key-file or
    LOTLINE_AUDIT_KEY, checked against the manifest's fingerprint before anything is written.
    True when the backup's trail is keyed (the key then goes into the new data dir)."""
    if key_file is not None:
        try:
            os.environ[AUDIT_KEY_ENV] = key_file.read_text().strip()
        except OSError as err:
            raise BackupError(f"cannot read the audit key {key_file}: {err}") from err
    facts = manifest.get("audit_key") or {}
    keyed = bool(facts.get("keyed"))
    if keyed and not audit_key_is_set():
        raise BackupError(
            "the backup's audit trail is keyed and the key is not in the archive (by design): "
            f"give --audit-key-file (the old data dir's {KEY_FILE}; AUDIT_KEY_FILE= for make "
            f"restore) or set {AUDIT_KEY_ENV}"
        )
    if facts and key_fingerprint() != facts.get("fingerprint"):
        what = "this audit key" if audit_key_is_set() else "the development key (no key given)"
        raise BackupError(
            f"{what} is not the backup's (fingerprint {key_fingerprint()}, the backup's "
            f"{facts.get('fingerprint')}); its audit trail could not be verified with it"
        )
    return keyed


def keep_audit_key(data_dir: Path) -> None:
    """Where `make run` looks for the data dir's key, readable by its owner only."""
    fd = os.open(data_dir / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(audit_key().decode() + "\n")


# --- the ERP database ---------------------------------------------------------------------------


@contextmanager
def erp_target(settings: Settings, data_dir: Path) -> Iterator[str]:
    """The SQLAlchemy URL to restore into: DATABASE_URL (which must be empty) or a new embedded
    PostgreSQL in data_dir/pg, stopped again at the end."""
    if settings.database_url:
        yield settings.database_url
        return
    try:
        postgres = start_postgres(data_dir)
    except StartupError as err:
        raise BackupError(str(err)) from err
    try:
        postgres.ensure_database()
        yield postgres.url
    finally:
        postgres.stop()


async def require_empty(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            tables = await conn.scalar(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            )
    finally:
        await engine.dispose()
    if tables:
        raise BackupError(
            f"{libpq_target(database_url).shown} already holds {tables} tables; restore "
            "into an empty database"
        )


def pg_restore(target: LibpqTarget, dump: Path) -> None:
    """All or nothing: one transaction, stopped at the first error."""
    argv = [pg_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner"]
    argv += ["--no-privileges", "--no-password", "--dbname", target.uri, str(dump)]
    done = subprocess.run(argv, env=target.env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore into {target.shown} failed: {done.stderr.strip()}")


async def prove_erp(database_url: str, manifest: dict[str, Any], outcome: Outcome) -> None:
    """Row counts, revision and the audit chain of the restored database against the manifest."""
    erp = manifest["erp"]
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            for table, expected in erp["tables"].items():
                quoted = '"' + table.replace('"', '""') + '"'
                actual = await conn.scalar(text(f"SELECT count(*) FROM {quoted}"))
                if actual != expected:
                    outcome.problems.append(
                        f"table {table}: {actual} rows, the backup had {expected}"
                    )
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        if revision != erp["alembic_revision"]:
            outcome.problems.append(
                f"Alembic revision {revision}, the backup had {erp['alembic_revision']}"
            )
        async with AsyncSession(engine) as session:
            chain = await verify_chain(session)
    finally:
        await engine.dispose()
    _prove_chain(chain.ok, chain.rows_checked, chain.head_hash, chain.problem, erp, outcome)


def _prove_chain(
    ok: bool, rows: int, head: str, problem: str, erp: dict[str, Any], outcome: Outcome
) -> None:
    if not ok and not erp["audit_verified"] and rows == erp["audit_rows"]:
        # restored faithfully: the chain was broken already when it was backed up
        outcome.findings.append(f"the audit trail was broken when backed up: {problem}")
        outcome.audit_line = f"audit trail BROKEN, exactly as when backed up: {problem}"
    elif not ok:
        outcome.problems.append(f"audit trail BROKEN after restore: {problem}")
        outcome.audit_line = f"audit trail BROKEN: {problem}"
    elif (rows, head) != (erp["audit_rows"], erp["audit_head_hash"]):
        outcome.problems.append(
            f"audit trail: {rows} rows, head {head}; the backup had {erp['audit_rows']} rows, "
            f"head {erp['audit_head_hash']}"
        )
        outcome.audit_line = "audit trail intact but NOT the one backed up"
    else:
        outcome.audit_line = f"audit trail intact: {rows} rows, head {head} (as backed up)"


# --- the window between the two copies ----------------------------------------------------------


async def gap_check(
    data_dir: Path, namespace: str, database_url: str, manifest: dict[str, Any], outcome: Outcome
) -> None:
    """Start the restored Temporal on free ports, and look up every open record's workflow (and
    every record closed around the backup): what the database says must be what Temporal does."""
    port = free_port()
    argv = temporal_command(data_dir, port, free_port(), namespace)
    argv += ["--headless", "--http-port", str(free_port())]
    say("starting the restored Temporal to compare it with the restored database")
    server = await Child.start("Temporal", argv, log=data_dir / "temporal.log")
    try:
        client = await connect_temporal(f"127.0.0.1:{port}", namespace, server=server)
        since = datetime.fromisoformat(manifest["temporal"]["copy_started_at"]) - GAP_SLACK
        for kind, record, workflow_id, is_open in await records_to_check(database_url, since):
            finding = await compare(client, kind, record, workflow_id, is_open)
            if finding:
                outcome.findings.append(finding)
    finally:
        await server.stop()


async def records_to_check(database_url: str, since: datetime) -> list[tuple[str, str, str, bool]]:
    """(kind, what, workflow id, open in the database) of open processes and tasks, and of those
    closed since `since`."""
    engine = make_engine(database_url, pool_size=1)
    query = text(
        "SELECT 'process', 'process ' || id, id, closed_at IS NULL FROM process "
        "WHERE closed_at IS NULL OR closed_at >= :since "
        "UNION ALL SELECT 'task', 'task ' || id || ' (' || step || ' of ' || process_id || ')', "
        "workflow_id, status = 'open' FROM task WHERE status = 'open' OR closed_at >= :since "
        "ORDER BY 3"
    )
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query, {"since": since})).all()
    finally:
        await engine.dispose()
    return [(str(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]


async def compare(
    client: Client, kind: str, record: str, workflow_id: str, is_open: bool
) -> str | None:
    """A sentence when the database and Temporal disagree in a way nothing will mend."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        if not is_open:
            return None
        return (
            f"{record} is open in the database, but Temporal has no workflow {workflow_id}: it "
            "started while the backup ran. A repeat of the start with the same Idempotency-Key "
            "starts it again; otherwise cancel the record"
        )
    status = description.status
    running = status == WorkflowExecutionStatus.RUNNING
    if is_open and not running:
        state = status.name.lower() if status is not None else "closed"
        return f"{record} is open in the database, but its workflow {workflow_id} is {state}"
    raw = description.raw_description
    catching_up = bool(raw.pending_activities) or raw.HasField("pending_workflow_task")
    if not is_open and running and not catching_up:
        return (
            f"{record} is closed in the database, but its workflow {workflow_id} still waits "
            f"(the {kind} was decided or closed while the backup ran): reconcile it by hand"
        )
    return None


# --- the command --------------------------------------------------------------------------------


async def restore(
    settings: Settings, archive: Path, data_dir: Path, key_file: Path | None = None
) -> int:
    archive, data_dir = archive.resolve(), data_dir.resolve()
    embedded = not (settings.database_url and settings.temporal_address)
    if embedded:
        check_target_dir(data_dir)
    with tempfile.TemporaryDirectory(prefix="lotline-restore-") as tmp:
        staging = Path(tmp)
        manifest = read_archive(archive, staging)
        say(f"{archive.name}: every member matches its SHA-256 (made {manifest['created_at']})")
        check_revision(manifest)
        temporal_here = check_temporal_target(settings, manifest)
        keyed = take_audit_key(manifest, key_file)
        if settings.database_url:
            await require_empty(settings.database_url)
        try:
            outcome = await _write_and_prove(settings, manifest, staging, data_dir, temporal_here)
            if keyed and embedded:
                keep_audit_key(data_dir)
        except BackupError as err:
            left = f"; {data_dir} is incomplete: delete it before trying again" if embedded else ""
            raise BackupError(f"{err}{left}") from err
    return _report(manifest, data_dir, temporal_here, settings, outcome)


async def _write_and_prove(
    settings: Settings,
    manifest: dict[str, Any],
    staging: Path,
    data_dir: Path,
    temporal_here: bool,
) -> Outcome:
    """Everything that writes: Temporal's file, the database, then the proofs."""
    outcome = Outcome()
    if temporal_here or not settings.database_url:
        prepare_data_dir(data_dir)
    if temporal_here:
        shutil.copyfile(staging / TEMPORAL_DB, data_dir / TEMPORAL_DB)
    with erp_target(settings, data_dir) as database_url:
        say(f"restoring the ERP database into {libpq_target(database_url).shown}")
        pg_restore(libpq_target(database_url), staging / DUMP)
        await prove_erp(database_url, manifest, outcome)
        if temporal_here and not outcome.problems:
            namespace = settings.temporal_namespace
            await gap_check(data_dir, namespace, database_url, manifest, outcome)
    return outcome


def _report(
    manifest: dict[str, Any],
    data_dir: Path,
    temporal_here: bool,
    settings: Settings,
    outcome: Outcome,
) -> int:
    print(outcome.audit_line)
    if outcome.problems:
        for problem in outcome.problems:
            warn(f"restore check failed: {problem}")
        warn(f"the restored copy does NOT match the backup; do not use {data_dir}, delete it")
        return 1
    tables = manifest["erp"]["tables"]
    print(f"restored: {sum(tables.values()):,} rows in {len(tables)} tables, as backed up")
    if manifest["lotline_version"] != lotline_version():
        say(
            f"the backup was made by Lotline {manifest['lotline_version']}, this is {lotline_version()}"
        )
    for finding in outcome.findings:
        warn(f"to reconcile: {finding}")
    if temporal_here:
        print(f"Temporal state restored into {data_dir / TEMPORAL_DB}")
    where = f"LOTLINE_DATA_DIR={data_dir} " if not settings.database_url else ""
    print(f"Start it: {where}make run")
    return RESTORED_WITH_FINDINGS if outcome.findings else 0


async def restore_command(
    settings: Settings, archive: Path, data_dir: Path | None, key_file: Path | None = None
) -> int:
    try:
        return await restore(settings, archive, data_dir or settings.data_dir, key_file)
    except BackupError as err:
        warn(f"restore refused: {err}")
        return 1
