"""Change requests: list and detail (start is POST /api/v1/processes/change-control)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import change_service
from api.deps import CurrentPrincipal, DbSession
from schemas.api import ChangeDetail, ChangeList

router = APIRouter(prefix="/api/v1/changes", tags=["change control"])


@router.get("", response_model=ChangeList)
async def list_changes(
    principal: CurrentPrincipal,
    session: DbSession,
    status: Annotated[str | None, Query(max_length=30, description="a status, or 'open'")] = None,
    change_type: Annotated[str | None, Query(max_length=30)] = None,
    requester: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="text in the title or number")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ChangeList:
    items, count = await change_service.list_changes(
        session=session,
        principal=principal,
        status=status,
        change_type=change_type,
        requester=requester,
        text=q,
        limit=limit,
        offset=offset,
    )
    return ChangeList(items=items, count=count)


@router.get("/{key}", response_model=ChangeDetail)
async def get_change(
    key: Annotated[str, Path(max_length=200, description="process id or CR number")],
    principal: CurrentPrincipal,
    session: DbSession,
) -> ChangeDetail:
    """Status, revisions (all kept), assessments, impact list, old-vs-new of every action, open
    tasks, the timeline and every signature."""
    return await change_service.change_detail(session=session, principal=principal, key=key)
