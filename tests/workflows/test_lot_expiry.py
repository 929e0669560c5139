"""The lot expiry workflow on the time-skipping server, with the real activity on the demo
catalogue: it judges expiry on the workflow's own date, so a run days later expires more."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from erp.master_data import Lot
from erp.seed import seed_demo
from tests.activities.test_lot_expiry import add_lot, statuses
from worker import build_worker
from workflows.lot_expiry import LotExpiryWorkflow

TODAY = date.today()


async def test_the_workflow_expires_what_is_past_its_date_on_the_workflow_clock(
    sessions, time_skipping_env, task_queue
):
    await seed_demo(sessions)
    await add_lot(sessions, "X-LAST-WEEK", "RELEASED", TODAY - timedelta(days=7))
    await add_lot(sessions, "X-TOMORROW", "RELEASED", TODAY + timedelta(days=1))
    client = time_skipping_env.client
    # Awaiting a result would let the idle server skip its clock far ahead (to its next
    # deadline); the clock moves here only when the test says so.
    with time_skipping_env.auto_time_skipping_disabled():
        async with build_worker(client, task_queue, sessions):
            first = await client.execute_workflow(
                LotExpiryWorkflow.run, id="lot-expiry-1", task_queue=task_queue
            )
            assert first.lot_numbers == ["X-LAST-WEEK"]
            assert await statuses(sessions) == {
                "X-LAST-WEEK": "EXPIRED",
                "X-TOMORROW": "RELEASED",
            }

            await time_skipping_env.sleep(timedelta(days=3))
            later = await client.execute_workflow(
                LotExpiryWorkflow.run, id="lot-expiry-2", task_queue=task_queue
            )

    assert later.lot_numbers == ["X-TOMORROW"]
    assert later.on - first.on == timedelta(days=3)  # the workflow's date, not the database's
    assert await statuses(sessions) == {"X-LAST-WEEK": "EXPIRED", "X-TOMORROW": "EXPIRED"}
    async with sessions() as session:
        tomorrow = await session.scalar(select(Lot).where(Lot.lot_number == "X-TOMORROW"))
    assert tomorrow is not None
    assert tomorrow.status_process_id == "lot-expiry-2"
    assert tomorrow.status_reason == f"expired on {TODAY + timedelta(days=1)}"
