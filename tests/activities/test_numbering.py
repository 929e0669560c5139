"""Business numbers have no gaps: a number taken by a transaction that rolls back is handed out
again, concurrent writers get distinct consecutive numbers, and the migration continues each
series where its old sequence stood."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from alembic import command
from sqlalchemy import select

from erp.migrate import alembic_config
from erp.numbering import NumberCounter, next_in_series


async def test_a_rolled_back_number_is_handed_out_again(sessions):
    async with sessions() as session, session.begin():
        first = await next_in_series(session, "nonconformance_seq")
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            assert await next_in_series(session, "nonconformance_seq") == first + 1
            raise RuntimeError("the worker died before the commit")
    async with sessions() as session, session.begin():
        assert await next_in_series(session, "nonconformance_seq") == first + 1


async def test_concurrent_writers_get_consecutive_numbers(sessions):
    async def take() -> int:
        async with sessions() as session, session.begin():
            number = await next_in_series(session, "scar_seq")
            await asyncio.sleep(0.01)  # hold the transaction open while others queue
            return number

    numbers = await asyncio.gather(*(take() for _ in range(5)))
    assert sorted(numbers) == list(range(min(numbers), min(numbers) + 5))


async def test_an_unknown_series_is_refused_by_name(sessions):
    async with sessions() as session, session.begin():
        with pytest.raises(LookupError, match="no_such_seq"):
            await next_in_series(session, "no_such_seq")


async def test_the_migration_continues_each_series_where_its_sequence_stood(sessions, database_url):
    config = alembic_config(database_url)
    async with sessions() as session, session.begin():
        await next_in_series(session, "purchase_order_seq")
        taken = await next_in_series(session, "purchase_order_seq")
    await asyncio.to_thread(command.downgrade, config, "0005")
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:  # the sequence is back, just past the last number
        assert conn.execute("SELECT nextval('purchase_order_seq')").fetchone() == (taken + 1,)
    await asyncio.to_thread(command.upgrade, config, "head")
    async with sessions() as session:
        counter = await session.scalar(
            select(NumberCounter.last_value).where(NumberCounter.name == "purchase_order_seq")
        )
    assert counter == taken + 1
