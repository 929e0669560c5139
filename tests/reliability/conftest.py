"""Fixtures of the reliability tests (issue 7). The whole stack of the API tests (`stack`) and of
the page tests (`site`) is used as it is, so these tests drive the same app the others do."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from tests.api.conftest import stack  # noqa: F401  (the fixture, re-exported for this folder)
from tests.ui.conftest import site  # noqa: F401


def superuser_dsn(database_url: str) -> str:
    """The test database as its superuser sees it (postgres over the unix socket)."""
    socket = database_url.split("host=")[1]
    name = database_url.split("/")[3].split("?")[0]
    return f"host={socket} user=postgres dbname={name}"


@pytest.fixture
def superuser(database_url: str) -> Iterator[psycopg.Connection]:
    """Someone with database access: a superuser connection, autocommit, that can lift the
    audit trail's triggers (`SET session_replication_role = replica`)."""
    with psycopg.connect(superuser_dsn(database_url), autocommit=True) as connection:
        yield connection


@pytest.fixture
def audit_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A real, secret LOTLINE_AUDIT_KEY for the test (the worker and API run in this process)."""
    key = secrets.token_hex(32)
    monkeypatch.setenv("LOTLINE_AUDIT_KEY", key)
    return key
