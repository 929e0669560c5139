"""Child processes (Temporal dev server, worker, web app), each logging to its own file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from lotline_run.console import say

STOP_GRACE_SECONDS = 10.0
_MARKER = "===== "


class Child:
    """One running child process. It gets its own process group, so a Ctrl-C in the terminal
    reaches only the runner, which then stops the children in order."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    @classmethod
    async def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        with log.open("a") as out:
            out.write(f"\n{_MARKER}{name} started {datetime.now().isoformat(timespec='seconds')}\n")
            out.flush()
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                process_group=0,
            )
        return cls(name, process, log)

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def wait(self) -> int:
        return await self.process.wait()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM, then SIGKILL when it has not exited after `grace` seconds."""
        if not self.running:
            return
        say(f"stopping {self.name}")
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            say(f"{self.name} did not stop within {grace:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()

    def exit_description(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            return f"killed by signal {-code}"
        return f"exit code {code}"

    def tail(self, lines: int = 20) -> str:
        """The last lines this run wrote to the child's log, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        this_run = text.rsplit(_MARKER, 1)[-1].splitlines()[1:]
        return "\n".join(f"  | {line}" for line in this_run[-lines:]) or "  | (nothing)"


def child_environ() -> dict[str, str]:
    """This process's environment for a worker or API child, but writing bytecode: the workflow
    sandbox imports the workflow modules afresh for every workflow it creates, and without
    bytecode on disk (PYTHONDONTWRITEBYTECODE, set in some shells and images) it compiles their
    source each time — ~15 % of a busy worker's CPU (the escalate benchmark, py-spy)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
