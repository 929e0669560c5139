"""The audit scenario's Temporal leg: a workflow that registers processes one after another through
the real `register_process` activity, so the same audited write is timed through a worker (task
queue `bench-audit`). Kept apart from bench/audit.py so the workflow sandbox imports little."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.activities import RegisterProcessInput

TASK_QUEUE = "bench-audit"


@workflow.defn(name="BenchAuditedWrites")
class AuditedWritesWorkflow:
    @workflow.run
    async def run(self, prefix: str, count: int) -> int:
        for n in range(count):
            await workflow.execute_activity(
                "register_process",
                RegisterProcessInput(
                    process_id=f"{prefix}-{n}",
                    run_id=workflow.info().run_id,
                    kind="approval",
                    title=f"Approve work instruction WI-{n:05d} rev B",
                    business_key=f"WI-{n:05d}",
                    initiator="alice",
                ),
                start_to_close_timeout=timedelta(seconds=60),
            )
        return count
