"""Nonconformances and CAPAs: lists with filters and aging, one NC or CAPA with everything it
recorded, and the CAPA action board. They start at POST /api/v1/processes/nonconformance and
/api/v1/processes/capa."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import quality_service
from api.deps import CurrentPrincipal, DbSession
from api.quality_service import CapaFilters, NcFilters
from schemas.api import (
    CapaActionList,
    CapaDetail,
    CapaList,
    NonconformanceDetail,
    NonconformanceList,
)

router = APIRouter(prefix="/api/v1", tags=["nonconformance and CAPA"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Status = Annotated[str, Query(max_length=10, description="open, closed or all")]


@router.get("/nonconformances", response_model=NonconformanceList)
async def list_nonconformances(
    principal: CurrentPrincipal,
    session: DbSession,
    status: Status = "all",
    overdue: Annotated[bool, Query(description="open and past their due date")] = False,
    supplier: Annotated[str | None, Query(max_length=20, description="supplier code")] = None,
    part_number: Annotated[str | None, Query(max_length=40)] = None,
    source: Annotated[
        str | None,
        Query(max_length=20, description="incoming, in_process, final, complaint, audit, …"),
    ] = None,
    severity: Annotated[
        str | None, Query(max_length=10, description="minor, major or critical")
    ] = None,
    age: Annotated[
        str | None,
        Query(max_length=10, description="open NCs by days open: 0-7, 8-30, 31-90, over-90"),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> NonconformanceList:
    """Nonconformances, newest first, each with its days open and aging bucket; `aging` counts
    the open ones the filters select by days open (the aging view)."""
    filters = NcFilters(
        status=status,
        overdue=overdue,
        supplier=supplier or None,
        part_number=part_number or None,
        source=source or None,
        severity=severity or None,
        age=age or None,
    )
    items, count, aging = await quality_service.list_nonconformances(
        session=session, principal=principal, filters=filters, limit=limit, offset=offset
    )
    return NonconformanceList(items=items, count=count, aging=aging)


@router.get("/nonconformances/{key}", response_model=NonconformanceDetail)
async def get_nonconformance(
    key: Annotated[str, Path(max_length=200, description="process id or NC number")],
    principal: CurrentPrincipal,
    session: DbSession,
) -> NonconformanceDetail:
    """One nonconformance: its lots with their status, hold and disposition, the SCARs, the CAPA
    it started, whether a recall was requested and its scope, open tasks, timeline, signatures."""
    return await quality_service.nonconformance_detail(
        session=session, principal=principal, key=key
    )


@router.get("/capas", response_model=CapaList)
async def list_capas(
    principal: CurrentPrincipal,
    session: DbSession,
    status: Status = "all",
    overdue: Annotated[bool, Query(description="open, with an action past its due date")] = False,
    owner: Annotated[str | None, Query(max_length=64, description="the CAPA's owner")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> CapaList:
    """CAPAs, newest first, each with the open and overdue actions of its current plan."""
    items, count = await quality_service.list_capas(
        session=session,
        principal=principal,
        filters=CapaFilters(status=status, overdue=overdue, owner=owner or None),
        limit=limit,
        offset=offset,
    )
    return CapaList(items=items, count=count)


@router.get("/capa-actions", response_model=CapaActionList)
async def list_capa_actions(
    principal: CurrentPrincipal,
    session: DbSession,
    owner: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool = False,
) -> CapaActionList:
    """The action board: every open action of the open CAPAs, by owner and due date."""
    items = await quality_service.open_actions(
        session=session, principal=principal, owner=owner or None, overdue=overdue
    )
    return CapaActionList(items=items, count=len(items))


@router.get("/capas/{key}", response_model=CapaDetail)
async def get_capa(
    key: Annotated[str, Path(max_length=200, description="process id or CAPA number")],
    principal: CurrentPrincipal,
    session: DbSession,
) -> CapaDetail:
    """One CAPA: problem statement, root-cause analysis, every plan round with its actions
    (owner, due date, status, evidence, overdue) and effectiveness check, open tasks, timeline."""
    return await quality_service.capa_detail(session=session, principal=principal, key=key)
