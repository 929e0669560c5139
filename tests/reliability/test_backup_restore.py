"""Issue 7, item 8: backup and restore on a LocalStack, through the commands an operator runs.

Processes are brought to waiting points (an approval waiting for its decision, a k-of-n approval
with one of two decisions, a purchase approved and confirmed, waiting for its ship notice), the
stack is backed up with `python -m lotline_run backup`, changed afterwards, stopped, restored
with `python -m lotline_run restore` into a new data dir, and started there: every waiting
process is decided over REST and completes, the change made after the backup is not there, the
row counts are the backup's, and the audit chain verifies. An archive made by hand with a
decision and a start between the Temporal copy and the database dump shows that restore names
what falls in that window. Damaged archives and non-empty targets are refused.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from lotline_run.audit_key import KEY_FILE
from lotline_run.backup import (
    DUMP,
    MANIFEST,
    TEMPORAL_DB,
    build_manifest,
    dump_erp,
    temporal_section,
    write_archive,
)
from lotline_run.restore import restore_command
from lotline_run.stack import LocalStack, run_sql
from settings import AUDIT_KEY_ENV, Settings

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "lotline-demo"
APPROVAL: dict[str, Any] = {
    "title": "Approve SOP-QA-014 rev D",
    "approver_groups": ["qa"],
    "sla_hours": 48,
    "reminder_hours": None,
}
BOARD = APPROVAL | {
    "title": "Approve DWG-2207 rev C",
    "approver_groups": ["ccb"],
    "rule": "k_of_n",
    "k": 2,
    "signs": False,
}
PURCHASE: dict[str, Any] = {  # 840 EUR: one buyer approves, signed
    "supplier_code": "SUP-0001",
    "lines": [{"part_number": "TB-0150", "quantity": "2000", "unit_price": "0.42"}],
    "due_on": (date.today() + timedelta(days=30)).isoformat(),
}
SPARE = APPROVAL | {"title": "Approve WI-PRD-007 rev B", "signs": False}
TAMPER = (  # someone with superuser access lifts the triggers and edits one audit row
    "SET session_replication_role = replica; UPDATE audit_entry SET reason = 'edited' WHERE id = 3"
)


# --- driving the stack over REST ----------------------------------------------------------------


async def poll(probe: Any, what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := await probe():
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def start(
    stack: LocalStack, kind: str, body: dict[str, Any], headers: dict[str, str], key: str
) -> str:
    response = await stack.http.post(
        f"/api/v1/processes/{kind}", json=body, headers=headers | {"Idempotency-Key": key}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def open_task(stack: LocalStack, who: str, process_id: str, step: str) -> int:
    headers = await stack.token(who)

    async def probe() -> int | None:
        response = await stack.http.get(
            "/api/v1/tasks", params={"process_id": process_id, "scope": "all"}, headers=headers
        )
        found = [t["id"] for t in response.json()["items"] if t["step"] == step]
        return found[0] if found else None

    return int(await poll(probe, f"{step} of {process_id} in {who}'s inbox"))


async def decide(
    stack: LocalStack,
    who: str,
    process_id: str,
    step: str,
    outcome: str,
    *,
    sign: bool = False,
    **fields: str,
) -> None:
    task = await open_task(stack, who, process_id, step)
    body = {"outcome": outcome, "fields": fields} | ({"password": PASSWORD} if sign else {})
    response = await stack.http.post(
        f"/api/v1/tasks/{task}/decision", json=body, headers=await stack.token(who)
    )
    assert response.status_code == 200, (process_id, step, response.text)


async def event(
    stack: LocalStack, process_id: str, name: str, key: str, **data: str
) -> dict[str, Any]:
    """Send as the MES, once the process is at the step that takes it (404/409 until then)."""

    async def attempt() -> dict[str, Any] | None:
        response = await stack.http.post(
            f"/api/v1/processes/{process_id}/events/{name}",
            json=data,
            headers=stack.mes | {"Idempotency-Key": key},
        )
        if response.status_code in (404, 409):
            return None
        assert response.status_code == 200, (name, response.text)
        return dict(response.json())

    return dict(await poll(attempt, f"{name} accepted by {process_id}"))


async def process_status(stack: LocalStack, process_id: str) -> str:
    response = await stack.http.get(f"/api/v1/processes/{process_id}", headers=stack.mes)
    return (
        str(response.json()["status"])
        if response.status_code == 200
        else f"http {response.status_code}"
    )


async def completed(stack: LocalStack, process_id: str) -> None:
    async def probe() -> bool:
        return await process_status(stack, process_id) == "completed"

    await poll(probe, f"{process_id} completed", timeout=120)


async def settled(stack: LocalStack) -> None:
    """Nothing in flight: every running workflow waits for a person or an event."""
    client = await stack.client()

    async def probe() -> bool:
        async for listed in client.list_workflows("ExecutionStatus='Running'"):
            raw = (await client.get_workflow_handle(listed.id).describe()).raw_description
            if raw.pending_activities or raw.HasField("pending_workflow_task"):
                return False
        return True

    await poll(probe, "every workflow waiting")


def row_counts(stack: LocalStack) -> dict[str, int]:
    tables = run_sql(stack, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").split()
    union = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
    rows = [line.split("|") for line in run_sql(stack, union).splitlines()]
    return {name: int(count) for name, count in rows}


async def outbox_drained(stack: LocalStack, timeout: float = 60.0) -> None:
    """Wait until the worker's outbox dispatcher has delivered what the processes wrote."""
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
    while int(run_sql(stack, query).strip() or 0):
        assert time.monotonic() < deadline, "the outbox was not delivered in time"
        await asyncio.sleep(0.5)


def lotline(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m lotline_run ...` as an operator runs it: no DATABASE_URL, TEMPORAL_ADDRESS or
    LOTLINE_AUDIT_KEY unless given (`make run` keeps the key in the data dir)."""
    unset = ("DATABASE_URL", "TEMPORAL_ADDRESS", AUDIT_KEY_ENV)
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "lotline_run", *args],
        env=base | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def restore_args(backed_up: BackedUp, archive: Path, target: Path) -> list[str]:
    return ["restore", str(archive), "--data-dir", str(target)] + [
        "--audit-key-file",
        str(backed_up.key_file),
    ]


def manifest_of(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(MANIFEST)
        assert member is not None
        return dict(json.loads(member.read()))


# --- the stack that is backed up ----------------------------------------------------------------


@dataclass
class BackedUp:
    root: Path
    archive: Path  # `backup` of the embedded stack
    external: Path  # `backup` with DATABASE_URL and TEMPORAL_ADDRESS set
    gapped: Path  # made by hand with a decision and a start between the two copies
    external_output: str
    key: str  # the audit key, never in an archive
    key_file: Path
    backup_output: str
    broken: Path  # `backup` after an audit row was altered by a superuser
    broken_output: str
    counts: dict[str, int]  # every table's rows when `archive` was taken
    audit_rows: int
    waiting: dict[str, str]  # name -> process id, at a waiting point in `archive`
    after_backup: str  # started after `archive`
    gap_decided: str  # decided between the copies of `gapped`
    gap_started: str  # started between the copies of `gapped`


async def bring_to_waiting_points(stack: LocalStack) -> dict[str, str]:
    alice = await stack.token("alice")
    waiting = {
        "approval": await start(stack, "approval", APPROVAL, alice, "bk-apr-1"),
        "board": await start(stack, "approval", BOARD, alice, "bk-ccb-1"),
        "purchase": await start(stack, "purchase", PURCHASE, stack.mes, "bk-po-1"),
        "spare": await start(stack, "approval", SPARE, alice, "bk-apr-2"),
    }
    await decide(stack, "carol", waiting["board"], "approval", "approve")  # 1 of 2
    await decide(stack, "judy", waiting["purchase"], "approval", "approve", sign=True)
    soon = (date.today() + timedelta(days=10)).isoformat()
    await event(stack, waiting["purchase"], "supplier-confirmed", "bk-conf-1", promised_on=soon)
    await open_task(stack, "bob", waiting["approval"], "approval")
    await open_task(stack, "bob", waiting["spare"], "approval")
    await settled(stack)
    return waiting


async def gapped_archive(stack: LocalStack, spare: str, out: Path) -> str:
    """Temporal copied, then a decision and a start, then the database dumped: the window an
    online backup has, made wide on purpose."""
    settings = Settings(data_dir=stack.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        temporal, temporal_file = temporal_section(settings, staging)
        assert temporal_file is not None
        await decide(stack, "bob", spare, "approval", "approve")
        await completed(stack, spare)
        started = await start(stack, "approval", SPARE, await stack.token("alice"), "bk-gap-1")
        await open_task(stack, "bob", started, "approval")
        facts = await dump_erp(stack.database_url, staging / DUMP)
        manifest = build_manifest("the LocalStack's PostgreSQL", facts, temporal)
        write_archive(out, manifest, {DUMP: staging / DUMP, TEMPORAL_DB: temporal_file})
    return started


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def backed_up(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BackedUp]:
    """The stack is keyed as `make run` keys it: a secret audit key in <data dir>/audit.key, in
    the environment of every process that writes the trail (this one included)."""
    root = tmp_path_factory.mktemp("backup")
    key = secrets.token_hex(32)
    (root / "a").mkdir()
    (root / "a" / KEY_FILE).write_text(key + "\n")
    before = os.environ.get(AUDIT_KEY_ENV)
    os.environ[AUDIT_KEY_ENV] = key
    try:
        async for made in _backed_up(root, key):
            yield made
    finally:
        if before is None:
            os.environ.pop(AUDIT_KEY_ENV, None)
        else:
            os.environ[AUDIT_KEY_ENV] = before


async def _backed_up(root: Path, key: str) -> AsyncIterator[BackedUp]:
    async with LocalStack(root / "a", env={AUDIT_KEY_ENV: key}) as stack:
        await stack.start(workers=1)
        waiting = await bring_to_waiting_points(stack)
        await outbox_drained(stack)  # else the dispatcher adds mailbox rows after the count
        counts = row_counts(stack)
        made = lotline(
            "backup", "--out", str(root / "a.tar.gz"), LOTLINE_DATA_DIR=str(stack.data_dir)
        )
        assert made.returncode == 0, made.stdout + made.stderr + str(stack.logs())
        after = await start(stack, "approval", SPARE, await stack.token("alice"), "bk-after-1")
        await open_task(stack, "bob", after, "approval")
        gap_started = await gapped_archive(stack, waiting["spare"], root / "gap.tar.gz")
        external = lotline(
            "backup",
            "--out",
            str(root / "ext.tar.gz"),
            DATABASE_URL=stack.database_url,
            TEMPORAL_ADDRESS=stack.temporal_address,
            LOTLINE_AUDIT_KEY=key,  # a production deployment sets it
        )
        assert external.returncode == 0, external.stdout + external.stderr
        run_sql(stack, TAMPER)
        broken = lotline(
            "backup", "--out", str(root / "broken.tar.gz"), LOTLINE_DATA_DIR=str(root / "a")
        )
        assert broken.returncode == 0, broken.stdout + broken.stderr
    yield BackedUp(
        root=root,
        archive=root / "a.tar.gz",
        external=root / "ext.tar.gz",
        gapped=root / "gap.tar.gz",
        external_output=external.stdout,
        key=key,
        key_file=root / "a" / KEY_FILE,
        backup_output=made.stdout,
        broken=root / "broken.tar.gz",
        broken_output=broken.stderr,
        counts=counts,
        audit_rows=counts["audit_entry"],
        waiting=waiting,
        after_backup=after,
        gap_decided=waiting["spare"],
        gap_started=gap_started,
    )


# --- the tests ----------------------------------------------------------------------------------


async def test_the_manifest_describes_the_snapshot(backed_up: BackedUp) -> None:
    manifest = manifest_of(backed_up.archive)
    assert manifest["erp"]["tables"] == backed_up.counts
    assert (
        manifest["erp"]["audit_rows"] == backed_up.audit_rows and manifest["erp"]["audit_verified"]
    )
    assert len(manifest["erp"]["audit_head_hash"]) == 64
    assert manifest["erp"]["alembic_revision"]
    assert manifest["lotline_version"] and manifest["created_at"]
    assert set(manifest["members"]) == {DUMP, TEMPORAL_DB}
    assert all(len(m["sha256"]) == 64 for m in manifest["members"].values())
    assert manifest["temporal"]["included"] and "Temporal first" in manifest["order"]
    assert manifest["temporal"]["journal_mode"] == "wal"  # the copy never blocks Temporal
    assert manifest["audit_key"]["keyed"] and len(manifest["audit_key"]["fingerprint"]) == 16
    assert "audit key      NOT in this archive" in backed_up.backup_output
    for archive in (backed_up.archive, backed_up.external, backed_up.gapped):
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                body = tar.extractfile(member)
                assert body is not None and backed_up.key.encode() not in body.read()


async def test_a_restored_stack_carries_on(backed_up: BackedUp) -> None:
    target = backed_up.root / "restored"
    restored = lotline(*restore_args(backed_up, backed_up.archive, target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"audit trail intact: {backed_up.audit_rows} rows" in restored.stdout
    assert "(as backed up)" in restored.stdout and "to reconcile" not in restored.stderr
    kept = target / KEY_FILE  # where `make run` finds it
    assert kept.read_text().strip() == backed_up.key and kept.stat().st_mode & 0o077 == 0
    async with LocalStack(target, env={AUDIT_KEY_ENV: backed_up.key}) as stack:
        stack.start_postgres()
        assert row_counts(stack) == backed_up.counts
        await stack.start(workers=1)
        assert await process_status(stack, backed_up.after_backup) == "http 404"
        with pytest.raises(RPCError) as missing:
            await (await stack.client()).get_workflow_handle(backed_up.after_backup).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND
        await finish_every_waiting_process(stack, backed_up.waiting)
        verify = await stack.http.get("/api/v1/audit/verify", headers=await stack.token("carol"))
        assert verify.json()["ok"], verify.text
        assert verify.json()["rows_checked"] > backed_up.audit_rows


async def finish_every_waiting_process(stack: LocalStack, waiting: dict[str, str]) -> None:
    purchase = waiting["purchase"]
    await decide(stack, "bob", waiting["approval"], "approval", "approve", sign=True)
    await decide(stack, "dave", waiting["board"], "approval", "approve")  # 2 of 2
    await decide(stack, "carol", waiting["spare"], "approval", "approve")
    soon = (date.today() + timedelta(days=2)).isoformat()
    await event(stack, purchase, "asn", "bk-asn-1", asn_reference="ASN-1", expected_on=soon)
    receipt = await event(
        stack,
        purchase,
        "goods-received",
        "bk-gr-1",
        part_number="TB-0150",
        quantity="2000",
        supplier_lot="NK-77",
    )
    assert receipt["data"]["lot_number"]
    await decide(stack, "heidi", purchase, "inspect-1", "pass", defects="0")
    await decide(stack, "bob", purchase, "release-1", "release", sign=True)
    for process_id in waiting.values():
        await completed(stack, process_id)
    client = await stack.client()
    for process_id in waiting.values():
        described = await client.get_workflow_handle(process_id).describe()
        assert described.status == WorkflowExecutionStatus.COMPLETED, process_id


async def test_restore_names_what_fell_between_the_two_copies(backed_up: BackedUp) -> None:
    restored = lotline(*restore_args(backed_up, backed_up.gapped, backed_up.root / "gap"))
    assert restored.returncode == 3, restored.stdout + restored.stderr
    findings = [line for line in restored.stderr.splitlines() if "to reconcile:" in line]
    decided = [f for f in findings if backed_up.gap_decided in f]
    assert {f.split(" is ")[0].split(": ")[-1].split()[0] for f in decided} == {"process", "task"}
    assert all("closed in the database, but its workflow" in f for f in decided), findings
    started = [f for f in findings if backed_up.gap_started in f]
    assert started and all("Temporal has no workflow" in f for f in started), findings
    assert len(findings) == len(decided) + len(started), findings
    assert "(as backed up)" in restored.stdout


async def test_restore_refuses_damaged_archives_and_non_empty_targets(
    backed_up: BackedUp, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the CLI once; the damaged variants in-process (the same command, without
    paying Python's start-up for each)."""
    root = backed_up.root
    whole = backed_up.archive.read_bytes()
    middle = len(whole) // 2
    damages = {
        "zeroed": whole[:middle] + bytes(64) + whole[middle + 64 :],
        "truncated": whole[:middle],
        "empty": b"",
    }
    for name, data in damages.items():
        (root / f"{name}.tar.gz").write_bytes(data)
        code = await restore_command(Settings(), root / f"{name}.tar.gz", root / name)
        said = capsys.readouterr().err
        assert code == 1, (name, said)
        assert "damaged or not a Lotline backup" in said or "is corrupted: the SHA-256" in said
        assert not (root / name).exists() or not any((root / name).iterdir())

    tampered = root / "tampered.tar.gz"
    retar(backed_up.archive, tampered, TEMPORAL_DB, lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    refused = lotline("restore", str(tampered), "--data-dir", str(root / "from-tampered"))
    assert refused.returncode == 1, refused.stderr
    assert f"is corrupted: the SHA-256 of {TEMPORAL_DB}" in refused.stderr
    assert not (root / "from-tampered").exists() or not any((root / "from-tampered").iterdir())

    no_key = lotline("restore", str(backed_up.archive), "--data-dir", str(root / "no-key"))
    assert no_key.returncode == 1 and "the key is not in the archive" in no_key.stderr
    (root / "wrong.key").write_text(secrets.token_hex(32))
    wrong = lotline(
        "restore",
        str(backed_up.archive),
        "--data-dir",
        str(root / "wrong-key"),
        "--audit-key-file",
        str(root / "wrong.key"),
    )
    assert wrong.returncode == 1 and "this audit key is not the backup's" in wrong.stderr
    assert not (root / "no-key").exists() and not (root / "wrong-key").exists()

    occupied = root / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    refused = lotline("restore", str(backed_up.archive), "--data-dir", str(occupied))
    assert refused.returncode == 1 and "is not empty" in refused.stderr, refused.stderr
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]


def retar(source: Path, out: Path, name: str, change: Any) -> None:
    """A copy of the archive with one member's bytes changed and the manifest left as it was."""
    with tarfile.open(source, "r:gz") as old, tarfile.open(out, "w:gz") as new:
        for member in old.getmembers():
            extracted = old.extractfile(member)
            assert extracted is not None
            body = extracted.read()
            if member.name == name:
                body = change(body)
            member.size = len(body)
            new.addfile(member, io.BytesIO(body))


async def test_external_services_are_said_plainly(backed_up: BackedUp, pg_socket_dir: str) -> None:
    out = backed_up.external_output
    assert "pg_dump of DATABASE_URL" in out
    assert "NOT in this archive" in out and "its operators back it up" in out
    manifest = manifest_of(backed_up.external)
    assert set(manifest["members"]) == {DUMP} and not manifest["temporal"]["included"]

    refused = lotline("restore", str(backed_up.external), "--data-dir", str(backed_up.root / "ext"))
    assert refused.returncode == 1 and "holds no Temporal state" in refused.stderr, refused.stderr

    name = "restored_from_external"
    with psycopg.connect(
        f"host={pg_socket_dir} user=postgres dbname=postgres", autocommit=True
    ) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    env = {
        "DATABASE_URL": f"postgresql+psycopg://postgres@/{name}?host={pg_socket_dir}",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # never contacted: an external cluster is not ours
        AUDIT_KEY_ENV: backed_up.key,
    }
    restored = lotline("restore", str(backed_up.external), **env)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "is not restored here" in restored.stdout and "(as backed up)" in restored.stdout
    again = lotline("restore", str(backed_up.external), **env)
    assert again.returncode == 1 and "restore into an empty database" in again.stderr
    assert not (backed_up.root / "ext").exists()
    with psycopg.connect(
        f"host={pg_socket_dir} user=postgres dbname=postgres", autocommit=True
    ) as c:
        c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_a_broken_audit_trail_is_backed_up_and_restored_as_it_is(backed_up: BackedUp) -> None:
    assert "the audit trail is BROKEN in this backup: row 3 was altered" in backed_up.broken_output
    manifest = manifest_of(backed_up.broken)
    assert not manifest["erp"]["audit_verified"] and manifest["erp"]["audit_rows"] == 2
    restored = lotline(*restore_args(backed_up, backed_up.broken, backed_up.root / "broken"))
    assert restored.returncode == 3, restored.stdout + restored.stderr
    assert "audit trail BROKEN, exactly as when backed up: row 3 was altered" in restored.stdout
    assert "to reconcile: the audit trail was broken when backed up" in restored.stderr
