"""`make run`: start everything Lotline needs, supervise it, and stop it all on Ctrl-C.

Start order: PostgreSQL, Temporal, migrations, demo data, worker, web app, demo processes.
Stop order is the reverse. Anything the environment points at (DATABASE_URL, TEMPORAL_ADDRESS) is
used as is and never started or stopped here.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
import time
import traceback
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from erp.db import make_engine, make_session_factory
from erp.migrate import upgrade
from erp.seed import DEMO_PASSWORD, USERS, seed_demo
from lotline_run.audit_key import ensure_audit_key
from lotline_run.children import Child, child_environ
from lotline_run.console import StartupError, say, warn
from lotline_run.demo import start_demo_processes
from lotline_run.embedded import (
    EmbeddedPostgres,
    connect_temporal,
    port_open,
    prepare_data_dir,
    start_postgres,
    start_temporal,
)
from lotline_run.schedules import ensure_schedules
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT_SECONDS = 60.0


def url_host(host: str) -> str:
    """The host to put in a URL for a server bound to `host`."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class Runner:
    """One `make run`: owns the data directory while it runs."""

    def __init__(self, settings: Settings, *, with_api: bool = True, demo: bool = True) -> None:
        self.settings = settings
        self.with_api = with_api
        self.demo = demo
        self.stack = AsyncExitStack()
        self.stopping = asyncio.Event()
        self.children: list[Child] = []
        self.postgres: EmbeddedPostgres | None = None
        self.temporal: Child | None = None
        self.demo_started: list[str] = []
        self._startup: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> int:
        """Start, announce, supervise; 0 after Ctrl-C/SIGTERM, 1 when something failed."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        async with self.stack:
            code = await self._start_and_supervise()
        say("stopped")
        return code

    async def _start_and_supervise(self) -> int:
        self._startup = asyncio.create_task(self._start())
        try:
            await self._startup
        except asyncio.CancelledError:
            if not self.stopping.is_set():
                raise
            say("interrupted while starting; stopping what started")
            return 0
        except StartupError as err:
            warn(f"could not start: {err}")
            return 1
        except Exception:
            traceback.print_exc()
            warn("could not start; stopping what started")
            return 1
        self._announce()
        return await self._supervise()

    def _on_signal(self) -> None:
        if self.stopping.is_set():
            say("already stopping; waiting for the children to exit")
            return
        self.stopping.set()
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()

    async def _start(self) -> None:
        s = self.settings
        prepare_data_dir(s.data_dir)
        self._lock_data_dir()
        ensure_audit_key(s.data_dir)  # before the migrations, which MAC existing audit rows
        self._check_ports()
        database_url = s.database_url or self._start_postgres()
        temporal_address = s.temporal_address or await self._start_temporal()
        client = await connect_temporal(
            temporal_address, s.temporal_namespace, server=self.temporal
        )
        say("applying database migrations")
        upgrade(database_url)
        loaded = self.demo and await self._seed(database_url)
        env = self._child_env(database_url, temporal_address)
        await self._spawn("worker", [sys.executable, str(ROOT / "worker.py")], env, "worker.log")
        await ensure_schedules(client, s.task_queue)
        if self.with_api:
            await self._start_api(env)
        if loaded:
            self.demo_started = await start_demo_processes(client, s.task_queue)

    async def _supervise(self) -> int:
        """Wait for Ctrl-C/SIGTERM (0) or for a component to die (1)."""
        watched: dict[asyncio.Task[object], Child | None] = {
            asyncio.create_task(child.wait()): child for child in self.children
        }
        if self.postgres is not None:
            watched[asyncio.create_task(self._watch_postgres())] = None
        stop = asyncio.create_task(self.stopping.wait())
        done, pending = await asyncio.wait([stop, *watched], return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if stop in done:
            say("stopping")
            return 0
        child = watched[next(task for task in done if task is not stop)]
        if child is None:
            warn(f"PostgreSQL stopped unexpectedly; see {self.settings.data_dir / 'pg' / 'log'}")
        else:
            warn(
                f"{child.name} exited unexpectedly ({child.exit_description()}); last "
                f"lines of {child.log}:\n{child.tail()}"
            )
        say("stopping the rest")
        return 1

    # --- components -----------------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        path = self.settings.data_dir / "run.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StartupError(
                f"another `make run` is using {self.settings.data_dir}; stop it first, or set "
                "LOTLINE_DATA_DIR (and other ports) to run a second one"
            ) from None
        self.stack.callback(os.close, fd)

    def _check_ports(self) -> None:
        """Fail before starting anything when a port we are about to listen on is taken."""
        s = self.settings
        wanted: list[tuple[str, int, str]] = []  # host, port, what to do about it
        if not s.temporal_address:
            hint = "or point TEMPORAL_ADDRESS at a running Temporal"
            wanted.append(("127.0.0.1", s.temporal_port, f"set LOTLINE_TEMPORAL_PORT, {hint}"))
            wanted.append(("127.0.0.1", s.temporal_ui_port, "set LOTLINE_TEMPORAL_UI_PORT"))
        if self.with_api:
            wanted.append((url_host(s.api_host), s.api_port, "set LOTLINE_PORT"))
        for host, port, remedy in wanted:
            if port_open(host, port):
                raise StartupError(
                    f"port {port} on {host} is already in use; stop whatever uses it or {remedy}"
                )

    def _start_postgres(self) -> str:
        self.postgres = start_postgres(self.settings.data_dir)
        self.stack.callback(self.postgres.stop)
        self.postgres.ensure_database()
        return self.postgres.url

    async def _start_temporal(self) -> str:
        s = self.settings
        self.temporal = await start_temporal(
            s.data_dir, s.temporal_port, s.temporal_ui_port, s.temporal_namespace
        )
        self.children.append(self.temporal)
        self.stack.push_async_callback(self.temporal.stop)
        return f"127.0.0.1:{s.temporal_port}"

    async def _seed(self, database_url: str) -> bool:
        engine = make_engine(database_url, pool_size=1)
        try:
            loaded = await seed_demo(make_session_factory(engine))
        finally:
            await engine.dispose()
        if loaded:
            say("demo data loaded (first start)")
        return loaded

    def _child_env(self, database_url: str, temporal_address: str) -> dict[str, str]:
        s = self.settings
        return {
            **child_environ(),
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": temporal_address,
            "TEMPORAL_NAMESPACE": s.temporal_namespace,
            "LOTLINE_TASK_QUEUE": s.task_queue,
            "LOTLINE_DATA_DIR": str(s.data_dir),
            "PYTHONUNBUFFERED": "1",
        }

    async def _spawn(self, name: str, argv: list[str], env: dict[str, str], log: str) -> Child:
        say(f"starting the {name} (log: {self.settings.data_dir / log})")
        child = await Child.start(name, argv, log=self.settings.data_dir / log, env=env, cwd=ROOT)
        self.children.append(child)
        self.stack.push_async_callback(child.stop)
        return child

    async def _start_api(self, env: dict[str, str]) -> None:
        s = self.settings
        host = url_host(s.api_host)
        argv = [sys.executable, "-m", "uvicorn", "api.app:app_from_env", "--factory"]
        argv += ["--host", s.api_host, "--port", str(s.api_port)]
        api = await self._spawn("web app", argv, env, "api.log")
        await wait_healthy(f"http://{host}:{s.api_port}/healthz", api)

    async def _watch_postgres(self) -> None:
        assert self.postgres is not None
        while True:
            await asyncio.sleep(2)
            if not self.postgres.is_alive():
                return

    # --- output ---------------------------------------------------------------------------------

    def _announce(self) -> None:
        s = self.settings
        base = f"http://{url_host(s.api_host)}:{s.api_port}"
        lines = ["", "Lotline is running."]
        if self.with_api:
            lines += [f"  Web app      {base}/", f"  API docs     {base}/docs"]
            lines.append(f"  Dashboard    {base}/dashboard")
            if not s.smtp_host:  # no SMTP server: the mail goes to the mailbox page
                lines.append(f"  Mailbox      {base}/mailbox")
        else:
            lines.append("  Web app      not started (LOTLINE_NO_API=1): worker only")
        if self.temporal is not None:
            lines.append(f"  Temporal UI  http://127.0.0.1:{s.temporal_ui_port}")
        else:
            lines.append(f"  Temporal     {s.temporal_address} (namespace {s.temporal_namespace})")
        if self.demo:
            names = ", ".join(user[0] for user in USERS)
            lines.append(f"  Demo users   {names} (see README.md); password {DEMO_PASSWORD}")
        if self.demo_started:
            lines.append(f"  Demo inbox   started {', '.join(self.demo_started)}")
        logs = ", ".join(child.log.name for child in self.children)
        lines.append(f"  Logs         {logs} in {s.data_dir}")
        lines += ["", "Ctrl-C stops everything.", ""]
        print("\n".join(lines), flush=True)


async def wait_healthy(url: str, child: Child, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
    """Wait until `url` answers 200; fail early when the child serving it exits."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if not child.running:
                raise StartupError(
                    f"the {child.name} exited ({child.exit_description()}) while starting; "
                    f"last lines of {child.log}:\n{child.tail()}"
                )
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise StartupError(f"the {child.name} did not answer {url} within {timeout:.0f} s")
