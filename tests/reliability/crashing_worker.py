"""The real worker (worker.main) plus one fault: it SIGKILLs itself inside chosen activities.

    LOTLINE_CRASH_POINTS="receive_goods@after-commit,record_production@before-commit"
    LOTLINE_CRASH_LEDGER=/path/file     # crash points already used, one per line
    python -m tests.reliability.crashing_worker

- `before-commit`: the activity's transaction has written its rows and is about to COMMIT; the
  process dies instead, so PostgreSQL rolls the whole transaction back.
- `after-commit`: the transaction committed; the process dies before Temporal hears of it, so
  Temporal retries an activity whose writes are already in the ERP.

Each point fires once: the ledger (fsynced before the kill) survives the process, so the
replacement worker started by the test runs the retry normally. Other activities running in the
same process at that moment die mid-flight too, which is the point.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

import worker

BEFORE, AFTER = "before-commit", "after-commit"


class CrashPoints:
    """Which activity dies where, and which of those deaths already happened."""

    def __init__(self, spec: str, ledger: str) -> None:
        self.ledger = ledger
        self.points = {p.strip() for p in spec.split(",") if p.strip()}

    def due(self, name: str, where: str) -> bool:
        point = f"{name}@{where}"
        if point not in self.points:
            return False
        try:
            with open(self.ledger) as used:
                return point not in {line.strip() for line in used}
        except FileNotFoundError:
            return True

    def crash(self, name: str, where: str) -> None:
        with open(self.ledger, "a") as used:
            used.write(f"{name}@{where}\n")
            used.flush()
            os.fsync(used.fileno())
        os.kill(os.getpid(), signal.SIGKILL)


class CrashInterceptor(Interceptor):
    def __init__(self, points: CrashPoints) -> None:
        self.points = points

        def before_commit(session: Session) -> None:
            if activity.in_activity():
                name = activity.info().activity_type
                if self.points.due(name, BEFORE):
                    session.flush()  # the rows are written, only the COMMIT is missing
                    self.points.crash(name, BEFORE)

        event.listen(Session, "before_commit", before_commit)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CrashAfterCommit(next, self.points)


class _CrashAfterCommit(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, points: CrashPoints) -> None:
        super().__init__(next)
        self.points = points

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        name = activity.info().activity_type
        if self.points.due(name, AFTER):
            self.points.crash(name, AFTER)
        return result


if __name__ == "__main__":
    points = CrashPoints(os.environ["LOTLINE_CRASH_POINTS"], os.environ["LOTLINE_CRASH_LEDGER"])
    asyncio.run(worker.main([CrashInterceptor(points)]))
