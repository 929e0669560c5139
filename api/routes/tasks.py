"""Tasks: the inbox over REST."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query

from api import task_service
from api.answers import in_language
from api.deps import AppSettings, CurrentPrincipal, DbSession, Sessions, Temporal
from schemas.api import DecisionIn, DecisionOutcome, TaskDetail, TaskList, TaskOut
from schemas.human_task import TaskSpec
from ui import i18n

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
# the id column is a PostgreSQL integer: a larger number is refused here, naming the parameter
TaskId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get("", response_model=TaskList)
async def list_tasks(
    principal: CurrentPrincipal,
    session: DbSession,
    scope: Literal["all", "mine", "groups", "everything"] = "all",
    status: Literal["open", "completed", "cancelled", "any"] = "open",
    overdue: bool | None = None,
    process_kind: Annotated[str | None, Query(max_length=40)] = None,
    business_key: Annotated[str | None, Query(max_length=200)] = None,
    process_id: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=100, description="text in the title")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TaskList:
    """Tasks of mine (named or claimed), my groups', or both; overdue first, then by due time."""
    items, count = await task_service.list_tasks(
        session=session,
        principal=principal,
        scope=scope,
        status=status,
        overdue=overdue,
        process_kind=process_kind,
        business_key=business_key,
        process_id=process_id,
        text=q,
        limit=limit,
        offset=offset,
    )
    return TaskList(items=items, count=count)


@router.get("/{task_id}", response_model=TaskDetail)
async def get_task(task_id: TaskId, principal: CurrentPrincipal, session: DbSession) -> TaskDetail:
    return await task_service.task_detail(session=session, principal=principal, task_id=task_id)


@router.post("/{task_id}/claim", response_model=TaskOut)
async def claim(task_id: TaskId, principal: CurrentPrincipal, sessions: Sessions) -> TaskOut:
    return await task_service.claim_task(
        sessions=sessions, principal=principal, task_id=task_id, source="api"
    )


@router.post("/{task_id}/release", response_model=TaskOut)
async def release(task_id: TaskId, principal: CurrentPrincipal, sessions: Sessions) -> TaskOut:
    return await task_service.release_task(
        sessions=sessions, principal=principal, task_id=task_id, source="api"
    )


@router.post("/{task_id}/decision", response_model=DecisionOutcome)
async def decide(
    task_id: TaskId,
    body: DecisionIn,
    principal: CurrentPrincipal,
    sessions: Sessions,
    client: Temporal,
    settings: AppSettings,
    accept_language: Annotated[str | None, Header()] = None,
) -> DecisionOutcome:
    """Decide a task. A signing outcome needs `password` (the signer re-enters it). The
    `message` is in English unless `Accept-Language` asks for Chinese."""
    outcome = await task_service.decide_task(
        sessions=sessions,
        client=client,
        principal=principal,
        task_id=task_id,
        decision=body,
        signature_max_failures=settings.signature_max_failures,
        source="api",
    )
    outcomes = None
    if i18n.preferred(accept_language) != i18n.DEFAULT_LOCALE:  # the task's own outcome labels
        async with sessions() as session:
            task = await task_service.load_task(session, task_id)
        outcomes = i18n.outcome_labels(TaskSpec.model_validate(task.spec))
    return in_language(outcome, accept_language, outcomes)
