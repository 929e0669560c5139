"""Activities of notifications: the approver's daily digest (workflows/digest.py).

Delivery itself is not an activity: the outbox dispatcher (erp/dispatcher.py) sends what this and
every other activity writes to the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.audit_context import audit
from erp.audit import already_recorded
from erp.models import AppGroup, AppUser, GroupMembership, Outbox, Task
from erp.queries import inbox_query
from schemas.notify import DigestInput, DigestResult
from ui.i18n import translate

DIGEST_EVENT = "digest.daily"
MAX_LINES = 50  # a digest lists this many tasks; the inbox has the rest


def digest_key(on: str, username: str) -> str:
    return f"digest:{on}:{username}"


class NotifyActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], public_url: str) -> None:
        self._sessions = session_factory
        self._public_url = public_url.rstrip("/")

    def activities(self) -> list[Callable[..., Any]]:
        return [self.write_approver_digests]

    @activity.defn(name="write_approver_digests")
    async def write_approver_digests(self, data: DigestInput) -> DigestResult:
        """One e-mail per person with open tasks (theirs and their groups'), overdue first; one
        per person per day (the outbox's idempotency key), and one audit row for the day."""
        on = data.at.date().isoformat()
        run_key = f"digest:{on}"
        async with self._sessions() as session, session.begin():
            if not await already_recorded(session, run_key):
                people = await session.scalars(
                    select(AppUser)
                    .where(AppUser.is_active.is_(True), AppUser.is_system.is_(False))
                    .order_by(AppUser.username)
                )
                for person in people.all():
                    await self._digest_for(session, person, data.at, on)
                sent = await _recipients_of(session, on)
                await audit(
                    session,
                    actor="system",
                    action="notification.digest",
                    entity_type="digest",
                    entity_id=on,
                    key=run_key,
                    after={"recipients": sent},
                )
            return DigestResult(on=data.at.date(), recipients=await _recipients_of(session, on))

    async def _digest_for(
        self, session: AsyncSession, person: AppUser, at: datetime, on: str
    ) -> None:
        groups = list(
            await session.scalars(
                select(AppGroup.name)
                .join(GroupMembership, GroupMembership.group_id == AppGroup.id)
                .where(GroupMembership.user_id == person.id)
            )
        )
        found = await session.scalars(inbox_query(usernames=[person.username], groups=groups))
        tasks = [
            t
            for t in found.all()
            if t.claimed_by in (None, person.username) and person.username not in t.excluded_users
        ]
        if not tasks:
            return
        overdue = [t for t in tasks if t.due_at is not None and t.due_at < at]
        subject, body = self._compose(person, tasks, overdue)
        await session.execute(
            insert(Outbox)
            .values(
                channel="email",
                recipient=f"user:{person.username}",
                subject=subject[:300],
                body=body,
                payload={
                    "event": DIGEST_EVENT,
                    "user": person.username,
                    "on": on,
                    "open": len(tasks),
                    "overdue": len(overdue),
                    "task_ids": [t.id for t in tasks[:MAX_LINES]],
                },
                idempotency_key=digest_key(on, person.username),
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )

    def _compose(self, person: AppUser, tasks: list[Task], overdue: list[Task]) -> tuple[str, str]:
        loc = person.locale

        def line(task: Task) -> str:
            due = (
                translate(loc, "due %(when)s UTC", when=f"{task.due_at:%Y-%m-%d %H:%M}")
                if task.due_at
                else translate(loc, "no due date")
            )
            return (
                f"- {task.title} ({task.business_key}), {due}\n  {self._public_url}/tasks/{task.id}"
            )

        late_ids = {t.id for t in overdue}
        on_time = [t for t in tasks if t.id not in late_ids]
        lines = [
            translate(loc, "Hello %(name)s,", name=person.full_name),
            "",
            translate(
                loc,
                "%(open)s open tasks await you or your groups; %(overdue)s are overdue.",
                open=len(tasks),
                overdue=len(overdue),
            ),
        ]
        shown = 0
        for heading, group in (("Overdue", overdue), ("Open", on_time)):
            if not group:
                continue
            lines += ["", translate(loc, heading) + ":"]
            for task in group:
                if shown == MAX_LINES:
                    break
                lines.append(line(task))
                shown += 1
        if len(tasks) > shown:
            lines += ["", translate(loc, "and %(more)s more.", more=len(tasks) - shown)]
        lines += ["", translate(loc, "Your inbox: %(link)s", link=f"{self._public_url}/")]
        subject = translate(
            loc,
            "Lotline daily digest: %(open)s open, %(overdue)s overdue",
            open=len(tasks),
            overdue=len(overdue),
        )
        return subject, "\n".join(lines)


async def _recipients_of(session: AsyncSession, on: str) -> list[str]:
    keys = await session.scalars(
        select(Outbox.idempotency_key)
        .where(Outbox.idempotency_key.like(f"digest:{on}:%"))
        .order_by(Outbox.idempotency_key)
    )
    return [key.rsplit(":", 1)[1] for key in keys if key]
