"""Queries that matter, written once: the inbox and the process timeline.

The inbox filters open tasks by array overlap on candidate groups/users and by who claimed them
(partial indexes over open tasks: `ix_task_open_candidate_groups`, `ix_task_open_candidate_users`,
`ix_task_open_claimed_by`; over every task for other statuses) and sorts overdue first by due
time (`ix_task_open_due`, which a person with many tasks walks in order for the first page).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, Text, and_, cast, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from erp.models import AuditEntry, ESignature, Task


def inbox_query(
    *,
    usernames: list[str],
    groups: list[str],
    scope: str = "all",
    status: str = "open",
    overdue: bool | None = None,
    process_kind: str | None = None,
    business_key: str | None = None,
    process_id: str | None = None,
    text: str | None = None,
    everything: bool = False,
) -> Select[Task]:
    """Tasks a person sees. scope: mine (named or claimed), groups, all (both), everything."""
    users_arr = cast(array(usernames or [""]), ARRAY(Text))
    groups_arr = cast(array(groups or [""]), ARRAY(Text))
    mine = or_(Task.candidate_users.overlap(users_arr), Task.claimed_by.in_(usernames or [""]))
    via_groups = Task.candidate_groups.overlap(groups_arr)
    query = select(Task)
    if scope == "mine":
        query = query.where(mine)
    elif scope == "groups":
        query = query.where(via_groups)
    elif not (scope == "everything" and everything):
        query = query.where(or_(mine, via_groups))
    if status != "any":
        query = query.where(Task.status == status)
    if overdue is not None:
        late = and_(Task.due_at.is_not(None), Task.due_at < func.now())
        query = query.where(late if overdue else ~late)
    if process_kind:
        query = query.where(Task.process_kind == process_kind)
    if business_key:
        query = query.where(Task.business_key == business_key)
    if process_id:
        query = query.where(Task.process_id == process_id)
    if text:
        query = query.where(Task.title.ilike(f"%{escape_like(text)}%", escape="\\"))
    # overdue first, then by due time: every overdue task is due before every other, so plain
    # due-time order is that order, and an index on the due time can hand it out page by page
    return query.order_by(Task.due_at.asc().nulls_last(), Task.id)


def escape_like(value: str) -> str:
    """`value` escaped for LIKE, so it matches literally (with escape backslash)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def process_timeline(session: AsyncSession, process_id: str) -> list[AuditEntry]:
    """Every audit row of a process and of its human tasks (workflow ids `<process id>.<step>`)."""
    rows = await session.scalars(
        select(AuditEntry)
        .where(
            or_(
                AuditEntry.workflow_id == process_id,
                AuditEntry.workflow_id.like(escape_like(process_id) + ".%", escape="\\"),
                and_(AuditEntry.entity_type == "process", AuditEntry.entity_id == process_id),
            )
        )
        .order_by(AuditEntry.id)
    )
    return list(rows)


def audit_query(
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    workflow_id: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
) -> Select[AuditEntry]:
    query = select(AuditEntry)
    for column, value in (
        (AuditEntry.entity_type, entity_type),
        (AuditEntry.entity_id, entity_id),
        (AuditEntry.actor, actor),
        (AuditEntry.action, action),
        (AuditEntry.workflow_id, workflow_id),
        (AuditEntry.outcome, outcome),
    ):
        if value:
            query = query.where(column == value)
    if since:
        query = query.where(AuditEntry.recorded_at >= since)
    if until:
        query = query.where(AuditEntry.recorded_at < until)
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    return query.order_by(AuditEntry.id.desc())


async def process_signatures(session: AsyncSession, process_id: str) -> list[ESignature]:
    """Every electronic signature given in a process's human tasks."""
    rows = await session.scalars(
        select(ESignature)
        .where(ESignature.workflow_id.like(escape_like(process_id) + ".%", escape="\\"))
        .order_by(ESignature.id)
    )
    return list(rows)
