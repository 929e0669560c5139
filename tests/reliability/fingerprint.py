"""What the ERP holds, in a form two runs of the same story can be compared by: for every table,
the multiset of its rows over the columns that do not depend on timing.

Left out of a row: surrogate keys and foreign keys (which number a row got depends on which
concurrent process wrote first), times, hashes, MACs and tokens, run ids, and JSON documents (they
embed those), idempotency keys (some carry the run id), and the clock times in messages
(a notice says when its task is due, which is minutes later in a run that was held up). Left out of the comparison: the people's login sessions and the audit rows of
logins and of refused attempts — how often a caller retried a request that came too early
depends on timing, and none of them is a record of the processes. Nor how far the outbox
dispatcher (which runs beside every worker) has got delivering: an outbox row's status, attempts
and last error, the mailbox and the webhook deliveries — the rows written to the outbox are
compared, their delivery is tests/activities/test_notify_dispatcher.py's. Everything else must match
row for row: a duplicated lot, movement, signature, decision or audit row shows as a count that
differs, and a lost one too.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

UNSTABLE_COLUMN = re.compile(
    r"^id$|_id$|_at$|_ids$|hash|mac$|token|csrf|^run_id$|^seq$|^idempotency_key$"
)
UNSTABLE_TYPES = {"json", "jsonb", "bytea"}
LEFT_OUT_TABLES = {"alembic_version", "user_session", "mailbox_message", "webhook_delivery"}
DELIVERY_COLUMNS = {"outbox": {"status", "attempts", "last_error"}}
CLOCK_TIME = re.compile(r"\b\d{2}:\d{2}(:\d{2}(\.\d+)?)?\b")
ATTEMPTS = "action LIKE 'login.%' OR outcome = 'refused' OR action LIKE '%.refused'"
ROW_FILTERS = {"audit_entry": f"NOT ({ATTEMPTS})"}


async def erp_fingerprint(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Counter[Any]]:
    """Table name -> Counter of stable row tuples."""
    async with sessions() as session:
        columns = await _stable_columns(session)
        result: dict[str, Counter[Any]] = {}
        for table, names in sorted(columns.items()):
            where = f" WHERE {ROW_FILTERS[table]}" if table in ROW_FILTERS else ""
            select = ", ".join(f'"{n}"' for n in names) or "1"
            rows = await session.execute(text(f'SELECT {select} FROM "{table}"{where}'))
            result[table] = Counter(tuple(_stable(v) for v in row) for row in rows)
        return result


async def _stable_columns(session: AsyncSession) -> dict[str, list[str]]:
    rows = await session.execute(
        text(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position"
        )
    )
    columns: dict[str, list[str]] = {}
    for table, column, data_type in rows:
        if table in LEFT_OUT_TABLES:
            continue
        names = columns.setdefault(table, [])
        if column in DELIVERY_COLUMNS.get(table, ()):
            continue
        if not UNSTABLE_COLUMN.search(column) and data_type not in UNSTABLE_TYPES:
            names.append(column)
    return columns


def _stable(value: object) -> str:
    """A value as text, without the clock times a message may carry ("due 2026-12-04 18:23")."""
    return CLOCK_TIME.sub("hh:mm", str(value))


def differences(expected: dict[str, Counter[Any]], actual: dict[str, Counter[Any]]) -> list[str]:
    """Readable lines: per table, the rows one run has more of than the other."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table, Counter()), actual.get(table, Counter())
        extra, missing = got - want, want - got
        for row, n in list(extra.items())[:5]:
            problems.append(f"{table}: {n} extra {row}")
        for row, n in list(missing.items())[:5]:
            problems.append(f"{table}: {n} missing {row}")
    return problems
