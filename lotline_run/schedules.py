"""Temporal Schedules Lotline needs: the nightly lot expiry and the approvers' daily digest.

`make run` creates them after the worker starts. In production run this once per deployment:
    TEMPORAL_ADDRESS=... python -m lotline_run.schedules
A schedule that already exists is left as it is (paused, edited or not), so a second run is
harmless.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from lotline_run.console import say
from settings import Settings

LOT_EXPIRY_SCHEDULE = "lotline-lot-expiry"
LOT_EXPIRY_WORKFLOW = "LotExpiry"  # workflows/lot_expiry.py
DIGEST_SCHEDULE = "lotline-approver-digest"
DIGEST_WORKFLOW = "ApproverDigest"  # workflows/digest.py


def lot_expiry_schedule(task_queue: str) -> Schedule:
    """Every day at 00:05 UTC; a run missed while Temporal was down is made up within a day."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            LOT_EXPIRY_WORKFLOW,
            id="lot-expiry",  # Temporal appends each run's scheduled time
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(0)],
                    minute=[ScheduleRange(5)],
                    comment="lot expiry, daily at 00:05 UTC",
                )
            ],
            time_zone_name="UTC",
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


def digest_schedule(task_queue: str) -> Schedule:
    """Every day at 06:00 UTC; a day missed while Temporal was down is sent late, not twice
    (the activity writes one digest per person per day)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DIGEST_WORKFLOW, id="approver-digest", task_queue=task_queue
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(6)],
                    minute=[ScheduleRange(0)],
                    comment="approvers' daily digest, 06:00 UTC",
                )
            ],
            time_zone_name="UTC",
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=12)
        ),
    )


async def ensure_schedules(client: Client, task_queue: str) -> list[str]:
    """Create the schedules that do not exist yet; the ids of those created."""
    created = []
    for schedule_id, schedule in (
        (LOT_EXPIRY_SCHEDULE, lot_expiry_schedule(task_queue)),
        (DIGEST_SCHEDULE, digest_schedule(task_queue)),
    ):
        try:
            await client.create_schedule(schedule_id, schedule)
            created.append(schedule_id)
        except ScheduleAlreadyRunningError:
            pass  # exists: an operator may have paused or edited it; leave it
    return created


async def main() -> None:
    from worker import connect  # the worker's client (data converter, namespace)

    settings = Settings.from_env()
    client = await connect(settings)
    created = await ensure_schedules(client, settings.task_queue)
    say(f"schedules created: {', '.join(created)}" if created else "schedules already exist")


if __name__ == "__main__":
    asyncio.run(main())
