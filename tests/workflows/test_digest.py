"""The approver's daily digest on the time-skipping server with the real activity: one mail per
person with open tasks (theirs and their groups'), overdue first, in the person's language; a
second run the same day writes nothing more, the next day writes the next digests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from activities.notify import digest_key
from erp.models import AppUser, AuditEntry, Outbox, Task
from erp.seed import seed_demo
from worker import build_worker
from workflows.digest import ApproverDigestWorkflow

NOW = datetime.now(UTC)


def task(n: int, *, groups: list[str], users: list[str] = (), due: timedelta, **kw) -> Task:  # type: ignore[assignment]
    return Task(
        workflow_id=f"digest-test.{n}",
        run_id="r",
        process_id=f"digest-test-{n}",
        process_kind="approval",
        step="approve",
        kind="approve",
        title=f"Approve document {n}",
        business_key=f"DOC-{n}",
        candidate_groups=groups,
        candidate_users=list(users),
        excluded_users=[],
        rule="any",
        spec={},
        due_at=NOW + due,
        **kw,
    )


async def digests(sessions) -> dict[str, Outbox]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Outbox).where(Outbox.payload["event"].astext == "digest.daily")
        )
        return {row.recipient: row for row in rows}


async def test_one_digest_per_person_per_day_overdue_first_in_their_language(
    sessions, time_skipping_env, task_queue
):
    await seed_demo(sessions, master_data=False)
    async with sessions() as session, session.begin():
        session.add_all(
            [
                task(1, groups=["qa"], due=timedelta(days=2)),
                task(2, groups=["qa"], due=timedelta(hours=-3)),  # overdue
                task(3, groups=["ra"], users=["bob"], due=timedelta(days=1)),
                task(4, groups=["qa"], due=timedelta(days=3), claimed_by="carol"),
                task(5, groups=["qa"], due=timedelta(days=1), status="approved"),  # closed
            ]
        )
        await session.execute(
            update(AppUser).where(AppUser.username == "erin").values(locale="zh_Hans")
        )
    client = time_skipping_env.client
    with time_skipping_env.auto_time_skipping_disabled():
        async with build_worker(client, task_queue, sessions):
            first = await client.execute_workflow(
                ApproverDigestWorkflow.run, id="approver-digest-1", task_queue=task_queue
            )
            again = await client.execute_workflow(
                ApproverDigestWorkflow.run, id="approver-digest-1b", task_queue=task_queue
            )
            written = await digests(sessions)
            await time_skipping_env.sleep(timedelta(days=1))
            next_day = await client.execute_workflow(
                ApproverDigestWorkflow.run, id="approver-digest-2", task_queue=task_queue
            )

    assert first.recipients == ["bob", "carol", "erin"]
    assert again == first  # the same day: nothing written twice
    assert next_day.on - first.on == timedelta(days=1)
    assert next_day.recipients == ["bob", "carol", "erin"]
    assert set(written) == {"user:bob", "user:carol", "user:erin"}

    bob = written["user:bob"]
    assert bob.idempotency_key == digest_key(first.on.isoformat(), "bob")
    assert bob.subject == "Lotline daily digest: 3 open, 1 overdue"  # not carol's claimed one
    assert (bob.payload["open"], bob.payload["overdue"]) == (3, 1)
    overdue_at = bob.body.index("Overdue:")
    open_at = bob.body.index("Open:")
    assert overdue_at < bob.body.index("Approve document 2") < open_at
    assert open_at < bob.body.index("Approve document 3") < bob.body.index("Approve document 1")
    assert "Approve document 4" not in bob.body
    assert "/tasks/" in bob.body
    assert written["user:carol"].subject == "Lotline daily digest: 3 open, 1 overdue"
    erin = written["user:erin"]  # ra only: task 3, in Simplified Chinese
    assert erin.subject == "Lotline 每日摘要：1 项待办，0 项逾期"
    assert "Approve document 3" in erin.body and "您好" in erin.body

    async with sessions() as session:
        audits = list(
            await session.scalars(
                select(AuditEntry.entity_id).where(AuditEntry.action == "notification.digest")
            )
        )
    assert audits == [first.on.isoformat(), next_day.on.isoformat()]
