"""Tamper evidence (issue 7, item 7): someone with database access — a superuser who lifts the
audit trail's triggers — alters, deletes and inserts audit rows in the middle and at the end of
the chain, rewrites the whole tail with correctly recomputed SHA-256 links, cuts the tail off,
and edits signed records behind the system's back. `GET /api/v1/audit/verify` and
`python -m lotline_run verify-audit` name the first row (or the signature and record) that no
longer fits, and exit 0 intact / 1 broken / 2 nothing to check, as the README says.

The attacker knows everything in the database and the source but not LOTLINE_AUDIT_KEY, which
the `audit_key` fixture sets to a fresh secret for each test, exactly as a deployment does."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy import select

from erp.audit import AuditRecord, append_audit, row_hash, verify_chain
from erp.models import ESignature, Task
from erp.signatures import signed_record_hash
from lotline_run.audit_key import ensure_audit_key, load_audit_key
from tests.api.conftest import Stack
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
APPROVAL = {
    "title": "Approve SOP-QA-021 rev B",
    "description": "Line clearance checklist",
    "approver_groups": ["qa"],
    "sla_hours": 48,
    "signs": True,
}


# ---------------------------------------------------------------- what the attacker can do


def lift_triggers(db: psycopg.Connection, how: str = "replica") -> None:
    """Two ways a superuser gets past the append-only triggers."""
    if how == "replica":
        db.execute("SET session_replication_role = replica")
    else:
        db.execute("ALTER TABLE audit_entry DISABLE TRIGGER ALL")


def one(db: psycopg.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The single value a query answers."""
    row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def audit_rows(db: psycopg.Connection) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cursor:
        return list(cursor.execute("SELECT * FROM audit_entry ORDER BY id"))


def rehash(row: dict[str, Any], prev: str) -> str:
    """The unkeyed SHA-256 of a row, computed exactly as erp/audit.py does (the source is known)."""
    return row_hash(
        prev_hash=prev,
        recorded_at=row["recorded_at"],
        actor=row["actor"],
        on_behalf_of=row["on_behalf_of"],
        action=row["action"],
        entity_type=row["entity_type"],
        entity_id=row["entity_id"],
        outcome=row["outcome"],
        reason=row["reason"],
        before=row["before"],
        after=row["after"],
        workflow_id=row["workflow_id"],
        run_id=row["run_id"],
        activity=row["activity"],
        source=row["source"],
        idempotency_key=row["idempotency_key"],
    )


def rewrite_from(db: psycopg.Connection, start: int, reason: str) -> None:
    """Change row `start` and re-link every row after it, so every prev_hash and row_hash fits
    again: what an unkeyed chain cannot detect. The MACs cannot be recomputed without the key."""
    lift_triggers(db, "alter")
    rows = audit_rows(db)
    index = next(i for i, r in enumerate(rows) if r["id"] == start)
    prev = rows[index - 1]["row_hash"] if index else "0" * 64
    for row in rows[index:]:
        if row["id"] == start:
            row["reason"] = reason
        row["prev_hash"] = prev
        row["row_hash"] = prev = rehash(row, prev)
        db.execute(
            "UPDATE audit_entry SET reason = %s, prev_hash = %s, row_hash = %s, row_mac = %s "
            "WHERE id = %s",
            (row["reason"], row["prev_hash"], row["row_hash"], secrets.token_hex(32), row["id"]),
        )
    db.execute("ALTER TABLE audit_entry ENABLE TRIGGER ALL")


def forge_row(db: psycopg.Connection, *, row_id: int, prev: str) -> None:
    """Insert a well-formed row: correct link to the row before it, correct SHA-256."""
    row = {
        "recorded_at": one(db, "SELECT now()"),
        "actor": "mallory",
        "on_behalf_of": None,
        "action": "lot.released",
        "entity_type": "lot",
        "entity_id": "L-FORGED",
        "outcome": "ok",
        "reason": "",
        "before": None,
        "after": {"status": "RELEASED"},
        "workflow_id": None,
        "run_id": None,
        "activity": None,
        "source": "cli",
        "idempotency_key": None,
    }
    db.execute(
        "INSERT INTO audit_entry (id, recorded_at, actor, action, entity_type, entity_id, outcome,"
        " reason, after, source, prev_hash, row_hash, row_mac) VALUES (%s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s)",
        (
            row_id,
            row["recorded_at"],
            row["actor"],
            row["action"],
            row["entity_type"],
            row["entity_id"],
            row["outcome"],
            row["reason"],
            json.dumps(row["after"]),
            row["source"],
            prev,
            rehash(row, prev),
            secrets.token_hex(32),
        ),
    )


# ---------------------------------------------------------------- the verifiers


@dataclass
class Verdict:
    """What the API and the CLI both said."""

    api: dict[str, Any]
    exit_code: int
    output: str


def cli(database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lotline_run", "verify-audit"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def verdict(
    stack: Stack, database_url: str, headers: dict[str, str], *, with_cli: bool = True
) -> Verdict:
    """The API's answer, and the CLI's (a process of its own, ~3 s: only where it adds)."""
    answer = await stack.http.get("/api/v1/audit/verify", headers=headers)
    assert answer.status_code == 200, answer.text
    if not with_cli:
        return Verdict(answer.json(), -1, "")
    run = await asyncio.to_thread(cli, database_url)
    return Verdict(answer.json(), run.returncode, run.stdout + run.stderr)


async def write_rows(stack: Stack, count: int) -> None:
    for n in range(count):
        async with stack.sessions() as session, session.begin():
            await append_audit(
                session,
                AuditRecord(
                    actor="heidi",
                    action="lot.inspected",
                    entity_type="lot",
                    entity_id=f"L-{n}",
                    source="cli",
                    after={"result": "accept", "n": n},
                ),
            )


# ---------------------------------------------------------------- the chain


async def test_an_intact_trail_verifies_and_a_wrong_key_does_not(
    audit_key: str, stack: Stack, database_url: str, superuser: psycopg.Connection
) -> None:
    carol = await stack.token("carol")
    await write_rows(stack, 3)
    seen = await verdict(stack, database_url, carol)
    last = audit_rows(superuser)[-1]
    assert seen.api["ok"] and seen.api["chain_ok"] and seen.api["keyed"], seen.api
    assert seen.api["sealed_id"] == last["id"] and seen.api["head_hash"] == last["row_hash"]
    assert seen.exit_code == 0 and "audit trail intact" in seen.output, seen.output
    assert f"sealed at row {last['id']}" in seen.output
    assert "signatures intact: 0 checked" in seen.output

    other = await asyncio.to_thread(cli, database_url, LOTLINE_AUDIT_KEY=secrets.token_hex(32))
    assert other.returncode == 1, other.stdout + other.stderr
    assert "the seal of the chain's head" in other.stdout and "LOTLINE_AUDIT_KEY" in other.stdout
    # the built-in development key is not this trail's key either
    unset = await asyncio.to_thread(cli, database_url, LOTLINE_AUDIT_KEY="")
    assert unset.returncode == 1 and "LOTLINE_AUDIT_KEY is not set" in unset.stderr


def test_nothing_to_check_exits_2(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "lotline_run", "verify-audit"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": "", "LOTLINE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "no embedded database" in run.stderr, run.stderr


def test_make_run_keeps_its_key_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No LOTLINE_AUDIT_KEY: `make run` generates one into the data dir (owner-only), uses it
    on every start, and `verify-audit` finds it there; a key in the environment wins."""
    monkeypatch.delenv("LOTLINE_AUDIT_KEY", raising=False)
    load_audit_key(tmp_path)  # nothing generated yet: nothing to load
    assert "LOTLINE_AUDIT_KEY" not in os.environ
    ensure_audit_key(tmp_path)
    key_file = tmp_path / "audit.key"
    generated = os.environ["LOTLINE_AUDIT_KEY"]
    assert len(generated) == 64 and key_file.read_text().strip() == generated
    assert key_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv("LOTLINE_AUDIT_KEY")
    ensure_audit_key(tmp_path)  # the next start: the same key
    assert os.environ["LOTLINE_AUDIT_KEY"] == generated
    monkeypatch.delenv("LOTLINE_AUDIT_KEY")
    load_audit_key(tmp_path)  # verify-audit on that data dir
    assert os.environ["LOTLINE_AUDIT_KEY"] == generated
    monkeypatch.setenv("LOTLINE_AUDIT_KEY", "set-by-the-deployment")
    ensure_audit_key(tmp_path)
    assert os.environ["LOTLINE_AUDIT_KEY"] == "set-by-the-deployment"
    assert key_file.read_text().strip() == generated


@dataclass(frozen=True)
class Tamper:
    """One change behind the system's back, and the row the verifier must name."""

    name: str
    where: str  # middle | end


TAMPERING = [
    Tamper("alter", "middle"),
    Tamper("alter", "end"),
    Tamper("delete", "middle"),
    Tamper("delete", "end"),
    Tamper("insert", "middle"),
    Tamper("insert", "end"),
]


def tamper(db: psycopg.Connection, case: Tamper, ids: list[int]) -> tuple[int, str]:
    """Do it; answer the row id the verifier must name and a word of its problem."""
    target = ids[len(ids) // 2] if case.where == "middle" else ids[-1]
    lift_triggers(db)
    if case.name == "alter":
        db.execute("UPDATE audit_entry SET actor = 'mallory' WHERE id = %s", (target,))
        return target, "altered"
    if case.name == "delete":
        db.execute("DELETE FROM audit_entry WHERE id = %s", (target,))
        if case.where == "middle":
            return ids[ids.index(target) + 1], "deleted or inserted"
        return target, "deleted"  # the sealed head itself is gone
    # insert: into the gap left in the ids, or after the head
    rows = {r["id"]: r for r in audit_rows(db)}
    if case.where == "middle":
        before = next(a for a, b in zip(ids, ids[1:], strict=False) if b - a > 1)  # the gap
        forged = before + 1
    else:  # the next id of the sequence, as any insert would take
        before = ids[-1]
        forged = one(db, "SELECT nextval('audit_entry_id_seq')")
    forge_row(db, row_id=forged, prev=rows[before]["row_hash"])
    return forged, "MAC"


@pytest.mark.parametrize("case", TAMPERING, ids=[f"{c.name}-{c.where}" for c in TAMPERING])
async def test_the_first_bad_row_is_named(
    audit_key: str,
    stack: Stack,
    database_url: str,
    superuser: psycopg.Connection,
    case: Tamper,
) -> None:
    carol = await stack.token("carol")
    await write_rows(stack, 4)
    superuser.execute("SELECT setval('audit_entry_id_seq', (SELECT max(id) FROM audit_entry) + 20)")
    await write_rows(stack, 4)  # a gap of 20 ids in the middle, where a row can be slipped in
    ids = [r["id"] for r in audit_rows(superuser)]
    assert (await verdict(stack, database_url, carol, with_cli=False)).api["ok"]

    named, word = tamper(superuser, case, ids)
    seen = await verdict(stack, database_url, carol)
    assert not seen.api["ok"] and not seen.api["chain_ok"], seen.api
    assert seen.api["first_broken_id"] == named, seen.api
    assert word in seen.api["problem"], seen.api
    assert seen.exit_code == 1, seen.output
    assert f"AUDIT TRAIL BROKEN at row {named}:" in seen.output and word in seen.output

    await write_rows(stack, 2)  # the system writes on: the damage stays named
    again = await verdict(stack, database_url, carol, with_cli=False)
    assert again.api["first_broken_id"] == named and not again.api["ok"], again.api


@pytest.mark.parametrize("start", ["middle", "first"])
async def test_rewriting_the_whole_tail_is_detected(
    audit_key: str, stack: Stack, database_url: str, superuser: psycopg.Connection, start: str
) -> None:
    """The known limit of an unkeyed chain: every link after the change recomputed."""
    carol = await stack.token("carol")
    await write_rows(stack, 6)
    ids = [r["id"] for r in audit_rows(superuser)]
    target = ids[len(ids) // 2] if start == "middle" else ids[0]
    rewrite_from(superuser, target, "nothing happened here")

    rows = audit_rows(superuser)  # the SHA-256 chain alone is consistent again ...
    prev = "0" * 64
    for row in rows:
        assert row["prev_hash"] == prev and rehash(row, prev) == row["row_hash"]
        prev = row["row_hash"]
    seen = await verdict(stack, database_url, carol)  # ... but not under the key
    assert seen.api["first_broken_id"] == target and "MAC" in seen.api["problem"], seen.api
    assert seen.exit_code == 1 and f"BROKEN at row {target}:" in seen.output


async def test_cutting_off_the_tail_is_detected_however_it_is_dressed_up(
    audit_key: str, stack: Stack, database_url: str, superuser: psycopg.Connection
) -> None:
    """Rows removed from the end leave an unkeyed chain perfectly valid; the seal remembers the
    head. Moving the seal needs the key; deleting it is reported; and a legitimate append after
    the cut does not move the seal onto the shortened chain."""
    carol = await stack.token("carol")
    await write_rows(stack, 6)
    ids = [r["id"] for r in audit_rows(superuser)]
    lift_triggers(superuser)
    superuser.execute("DELETE FROM audit_entry WHERE id > %s", (ids[-4],))

    seen = await verdict(stack, database_url, carol)
    assert seen.api["first_broken_id"] == ids[-1], seen.api
    assert f"the chain ends at row {ids[-4]}" in seen.api["problem"]
    assert f"sealed head is row {ids[-1]}" in seen.api["problem"]
    assert seen.exit_code == 1 and f"BROKEN at row {ids[-1]}:" in seen.output

    await write_rows(stack, 1)  # the system appends after the cut: the seal must not follow
    after = await verdict(stack, database_url, carol, with_cli=False)
    assert after.api["first_broken_id"] == ids[-1], after.api
    assert "sealed head of the chain, was deleted" in after.api["problem"]

    head = audit_rows(superuser)[-1]  # the seal moved onto the new head by hand: no key, no MAC
    superuser.execute(
        "UPDATE audit_seal SET last_id = %s, head_hash = %s", (head["id"], head["row_hash"])
    )
    moved = await verdict(stack, database_url, carol, with_cli=False)
    assert "seal of the chain's head" in moved.api["problem"] and "altered" in moved.api["problem"]
    assert moved.api["first_broken_id"] == head["id"] and not moved.api["ok"]

    superuser.execute("DELETE FROM audit_seal")
    gone = await verdict(stack, database_url, carol)
    assert "audit_seal) was deleted" in gone.api["problem"] and gone.exit_code == 1, gone.api


async def test_the_migration_keys_the_rows_written_before_it(
    pg_socket_dir: str, audit_key: str, superuser: psycopg.Connection
) -> None:
    """Migration 0007 on a trail written before it: every row gets its MAC, the head its seal,
    and the result verifies under the key (and not under another)."""
    from alembic import command

    from erp.db import make_engine, make_session_factory
    from erp.migrate import alembic_config

    name = f"m0007_{secrets.token_hex(3)}"
    superuser.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@/{name}?host={pg_socket_dir}"
    try:
        command.upgrade(alembic_config(url), "0006")
        with psycopg.connect(f"host={pg_socket_dir} user=postgres dbname={name}") as old:
            prev = "0" * 64
            for n in range(3):
                row = {
                    "recorded_at": one(old, "SELECT clock_timestamp()"),
                    "actor": "bob",
                    "on_behalf_of": None,
                    "action": "lot.released",
                    "entity_type": "lot",
                    "entity_id": f"L-{n}",
                    "outcome": "ok",
                    "reason": "",
                    "before": None,
                    "after": None,
                    "workflow_id": None,
                    "run_id": None,
                    "activity": None,
                    "source": "cli",
                    "idempotency_key": None,
                }
                digest = rehash(row, prev)
                old.execute(
                    "INSERT INTO audit_entry (recorded_at, actor, action, entity_type, entity_id,"
                    " outcome, reason, source, prev_hash, row_hash) VALUES (%s, %s, %s, %s, %s,"
                    " %s, %s, %s, %s, %s)",
                    (
                        row["recorded_at"],
                        "bob",
                        "lot.released",
                        "lot",
                        f"L-{n}",
                        "ok",
                        "",
                        "cli",
                        prev,
                        digest,
                    ),
                )
                prev = digest
        command.upgrade(alembic_config(url), "head")
        engine = make_engine(url, pool_size=1)
        async with make_session_factory(engine)() as session:
            result = await verify_chain(session)
        await engine.dispose()
        assert result.ok and result.rows_checked == 3 and result.head_hash == prev, result
        assert result.sealed_id is not None and result.keyed
        assert (await asyncio.to_thread(cli, url)).returncode == 0
        other_key = {"LOTLINE_AUDIT_KEY": secrets.token_hex(32)}
        assert (await asyncio.to_thread(cli, url, **other_key)).returncode == 1
    finally:
        superuser.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------- signatures


async def signed_decision(stack: Stack) -> tuple[int, int, str]:
    """A real signed approval: (signature id, task id, the signature's record id)."""
    alice, bob = await stack.token("alice"), await stack.token("bob")
    started = await stack.http.post("/api/v1/processes/approval", json=APPROVAL, headers=alice)
    assert started.status_code == 201, started.text

    async def open_task() -> Task | None:
        async with stack.sessions() as session:
            return await session.scalar(
                select(Task).where(Task.process_id == started.json()["id"], Task.status == "open")
            )

    task = await eventually(open_task, what="the approval's task")
    decided = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": "approve", "password": "lotline-demo", "comment": "checklist complete"},
        headers=bob,
    )
    assert decided.status_code == 200, decided.text
    signature = decided.json()["signature"]
    async with stack.sessions() as session:
        row = await session.get_one(ESignature, signature["id"])
    return row.id, task.id, row.record_id


@dataclass(frozen=True)
class SignedEdit:
    name: str
    change: list[str]  # SQL run by the attacker; %(sig)s, %(task)s, %(seq)s filled in
    undo: list[str]
    says: str  # part of the problem reported


SIGNED_EDITS = [
    SignedEdit(
        "decision outcome",
        ["UPDATE task_decision SET outcome = 'reject' WHERE task_id = %(task)s"],
        ["UPDATE task_decision SET outcome = 'approve' WHERE task_id = %(task)s"],
        "the decision's outcome is now 'reject', but 'approve' was signed",
    ),
    SignedEdit(
        "decision comment",
        ["UPDATE task_decision SET comment = 'not checked' WHERE task_id = %(task)s"],
        ["UPDATE task_decision SET comment = 'checklist complete' WHERE task_id = %(task)s"],
        "the decision's comment is now 'not checked'",
    ),
    SignedEdit(
        "signed content",
        [
            "UPDATE e_signature SET signed_content = jsonb_set(signed_content, '{comment}',"
            " '\"not checked\"') WHERE id = %(sig)s"
        ],
        [
            "UPDATE e_signature SET signed_content = jsonb_set(signed_content, '{comment}',"
            " '\"checklist complete\"') WHERE id = %(sig)s"
        ],
        "record_hash does not match its signed content",
    ),
    SignedEdit(
        "printed name",
        ["UPDATE e_signature SET printed_name = 'Carol Diaz' WHERE id = %(sig)s"],
        ["UPDATE e_signature SET printed_name = 'Bob Okafor' WHERE id = %(sig)s"],
        "the signature's printed_name is now 'Carol Diaz', but 'Bob Okafor' was signed",
    ),
    SignedEdit(
        "task title",
        ["UPDATE task SET title = 'Approve SOP-QA-099' WHERE id = %(task)s"],
        ["UPDATE task SET title = 'Approve SOP-QA-021 rev B' WHERE id = %(task)s"],
        "the task's title is now 'Approve SOP-QA-099'",
    ),
    SignedEdit(
        "business key",
        ["UPDATE task SET business_key = 'other' WHERE id = %(task)s"],
        ["UPDATE task SET business_key = %(key)s WHERE id = %(task)s"],
        "the task's business_key is now 'other'",
    ),
    SignedEdit(
        "decision removed",
        ["UPDATE task_decision SET seq = 99 WHERE task_id = %(task)s"],
        ["UPDATE task_decision SET seq = %(seq)s WHERE task_id = %(task)s"],
        "no longer exists",
    ),
]


def resign(db: psycopg.Connection, signature_id: int, outcome: str) -> None:
    """The thorough forger: decision, signed content and record_hash changed together."""
    db.execute(
        "UPDATE task_decision SET outcome = %s WHERE signature_id = %s", (outcome, signature_id)
    )
    content = one(db, "SELECT signed_content FROM e_signature WHERE id = %s", (signature_id,))
    content["outcome"] = outcome
    db.execute(
        "UPDATE e_signature SET signed_content = %s, record_hash = %s WHERE id = %s",
        (json.dumps(content), signed_record_hash(content), signature_id),
    )


async def test_a_signed_record_changed_behind_the_systems_back_is_reported(
    audit_key: str, stack: Stack, database_url: str, superuser: psycopg.Connection
) -> None:
    carol = await stack.token("carol")
    signature_id, task_id, record_id = await signed_decision(stack)
    seq = int(record_id.split(":")[1])
    key = one(superuser, "SELECT business_key FROM task WHERE id = %s", (task_id,))
    params = {"sig": signature_id, "task": task_id, "seq": seq, "key": key}
    intact = await verdict(stack, database_url, carol)
    assert intact.api["ok"] and intact.api["signatures_checked"] == 1, intact.api
    assert intact.exit_code == 0 and "signatures intact: 1 checked" in intact.output

    wrong: list[str] = []
    for number, edit in enumerate(SIGNED_EDITS):
        for statement in edit.change:
            superuser.execute(statement, params)
        seen = await verdict(stack, database_url, carol, with_cli=number < 3)
        problems = seen.api["signature_problems"]
        named = [p for p in problems if p["signature_id"] == signature_id]
        if seen.api["ok"] or not seen.api["chain_ok"] or len(named) != 1:
            wrong.append(f"{edit.name}: {seen.api}")
        elif named[0]["record_id"] != record_id or edit.says not in named[0]["problem"]:
            wrong.append(f"{edit.name}: {named[0]}")
        expected_line = f"signature {signature_id} on task_decision {record_id}: "
        if number < 3 and (
            seen.exit_code != 1 or expected_line not in seen.output or edit.says not in seen.output
        ):
            wrong.append(f"{edit.name}: CLI {seen.exit_code} {seen.output}")
        for statement in edit.undo:
            superuser.execute(statement, params)
        if not (await stack.http.get("/api/v1/audit/verify", headers=carol)).json()["ok"]:
            wrong.append(f"{edit.name}: not intact again after the undo")
    assert not wrong, "\n".join(wrong)

    resign(superuser, signature_id, "reject")  # consistent with itself: caught by the trail
    seen = await verdict(stack, database_url, carol)
    (problem,) = seen.api["signature_problems"]
    assert problem["signature_id"] == signature_id and problem["record_id"] == record_id
    assert "the audit trail's outcome of the decision" in problem["problem"], problem
    assert "is 'approve', but 'reject' was signed" in problem["problem"]
    assert seen.exit_code == 1 and "SIGNATURES BROKEN: 1 of 1" in seen.output
