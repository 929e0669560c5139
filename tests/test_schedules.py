"""The nightly lot expiry schedule on the Temporal dev server (the time-skipping server has no
schedules): created once, a second call leaves it alone, and its action runs LotExpiry."""

from __future__ import annotations

from datetime import UTC, date, timedelta

from temporalio.client import ScheduleActionStartWorkflow, ScheduleRange

from erp.seed import seed_demo
from lotline_run.schedules import DIGEST_SCHEDULE, LOT_EXPIRY_SCHEDULE, ensure_schedules
from schemas.lot_expiry import ExpireLotsResult
from tests.activities.test_lot_expiry import add_lot, statuses
from tests.helpers import eventually
from worker import build_worker


async def test_the_lot_expiry_schedule_is_created_once_and_runs_the_workflow(
    sessions, dev_env, task_queue
):
    client = dev_env.client
    await seed_demo(sessions)
    await add_lot(sessions, "X-LAST-MONTH", "RELEASED", date.today() - timedelta(days=30))
    try:
        assert await ensure_schedules(client, task_queue) == [LOT_EXPIRY_SCHEDULE, DIGEST_SCHEDULE]
        handle = client.get_schedule_handle(LOT_EXPIRY_SCHEDULE)
        await handle.pause(note="paused by hand")
        assert await ensure_schedules(client, task_queue) == []  # exists: left as it is

        described = await handle.describe()
        assert described.schedule.state.paused
        assert described.schedule.state.note == "paused by hand"
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("LotExpiry", task_queue)
        spec = described.schedule.spec
        assert spec.time_zone_name == "UTC"
        assert [(list(c.hour), list(c.minute)) for c in spec.calendars] == [
            ([ScheduleRange(0)], [ScheduleRange(5)])
        ]
        upcoming = described.info.next_action_times
        assert upcoming, "a schedule, even paused, lists its next times"
        assert {(t.astimezone(UTC).hour, t.minute, t.second) for t in upcoming} == {(0, 5, 0)}

        async with build_worker(client, task_queue, sessions):
            await handle.trigger()  # what 00:05 UTC does

            async def expired() -> bool:
                return (await statuses(sessions)).get("X-LAST-MONTH") == "EXPIRED"

            await eventually(expired, what="the triggered run to expire the lot")
            described = await handle.describe()
            started = described.info.recent_actions[-1].action
            result = await client.get_workflow_handle(
                started.workflow_id, result_type=ExpireLotsResult
            ).result()
        assert started.workflow_id.startswith("lot-expiry-")
        assert result.lot_numbers == ["X-LAST-MONTH"]
    finally:
        await client.get_schedule_handle(LOT_EXPIRY_SCHEDULE).delete()
        await client.get_schedule_handle(DIGEST_SCHEDULE).delete()
