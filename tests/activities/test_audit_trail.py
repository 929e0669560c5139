"""The audit trail on real PostgreSQL: append-only in the database itself, chained, verifiable."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from erp.audit import AuditRecord, append_audit, verify_chain
from erp.models import AuditEntry


async def write_rows(sessions, count: int) -> None:
    for n in range(count):
        async with sessions() as session, session.begin():
            await append_audit(
                session,
                AuditRecord(
                    actor="bob",
                    action="lot.released",
                    entity_type="lot",
                    entity_id=f"L-{n}",
                    source="cli",
                    after={"status": "RELEASED", "n": n},
                ),
            )


def _raw(database_url: str) -> psycopg.Connection:
    socket = database_url.split("host=")[1]
    name = database_url.split("/")[3].split("?")[0]
    return psycopg.connect(f"host={socket} user=postgres dbname={name}", autocommit=True)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET reason = 'edited' WHERE id = (SELECT min(id) FROM audit_entry)",
        "DELETE FROM audit_entry WHERE id = (SELECT min(id) FROM audit_entry)",
        "TRUNCATE audit_entry",
    ],
)
async def test_database_refuses_to_change_audit_rows(sessions, statement):
    await write_rows(sessions, 2)
    async with sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(statement))
        await session.rollback()
    async with sessions() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        assert [r.reason for r in rows] == ["", ""]
        assert (await verify_chain(session)).ok


async def test_chain_links_each_row_to_the_one_before(sessions):
    await write_rows(sessions, 3)
    async with sessions() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        result = await verify_chain(session)
    assert rows[0].prev_hash == "0" * 64
    assert rows[1].prev_hash == rows[0].row_hash and rows[2].prev_hash == rows[1].row_hash
    assert result.ok and result.rows_checked == 3 and result.head_hash == rows[2].row_hash


async def test_verify_names_an_altered_row(sessions, database_url):
    await write_rows(sessions, 5)
    async with sessions() as session:
        third = await session.scalars(select(AuditEntry.id).order_by(AuditEntry.id))
        target = list(third)[2]
    with _raw(database_url) as raw:  # a database superuser bypassing the trigger
        raw.execute("SET session_replication_role = replica")
        raw.execute("UPDATE audit_entry SET actor = 'mallory' WHERE id = %s", (target,))
    async with sessions() as session:
        result = await verify_chain(session)
    assert not result.ok and result.first_broken_id == target
    assert "altered" in result.problem and result.rows_checked == 2


async def test_verify_names_the_row_after_a_deleted_one(sessions, database_url):
    await write_rows(sessions, 5)
    async with sessions() as session:
        ids = list(await session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)))
    with _raw(database_url) as raw:
        raw.execute("SET session_replication_role = replica")
        raw.execute("DELETE FROM audit_entry WHERE id = %s", (ids[1],))
    async with sessions() as session:
        result = await verify_chain(session)
    assert not result.ok and result.first_broken_id == ids[2]
    assert "deleted or inserted" in result.problem


async def test_verify_names_an_inserted_row(sessions, database_url):
    await write_rows(sessions, 3)
    with _raw(database_url) as raw:
        raw.execute(
            "INSERT INTO audit_entry (recorded_at, actor, action, entity_type, entity_id, outcome,"
            " reason, source, prev_hash, row_hash) VALUES (now(), 'mallory', 'lot.released', 'lot',"
            " 'L-X', 'ok', '', 'cli', 'forged', 'forged')"
        )
        inserted = raw.execute("SELECT max(id) FROM audit_entry").fetchone()[0]
    async with sessions() as session:
        result = await verify_chain(session)
    assert not result.ok and result.first_broken_id == inserted
