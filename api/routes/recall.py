"""Recalls: the list, one recall, its scope versions and its report (PDF); a recall started from
the nonconformance that asked for it. A recall itself starts at POST /api/v1/processes/recall;
consignee events go to POST /api/v1/processes/{recall id}/events/{event}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api import recall_service
from api.answers import in_language
from api.deps import AppSettings, CurrentPrincipal, DbSession, Sessions, Temporal
from api.routes import reports
from api.routes.processes import recall_started
from api.security import Principal
from schemas.api import RecallDetail, RecallList, RecallProcessOut, RecallScopeVersionList
from schemas.recall_activities import WidenScopeResult

router = APIRouter(prefix="/api/v1", tags=["recall"])

Key = Annotated[str, Path(max_length=200, description="process id or recall number")]


@router.get("/recalls", response_model=RecallList)
async def list_recalls(
    principal: CurrentPrincipal,
    session: DbSession,
    status: Annotated[str, Query(max_length=10, description="open, closed or all")] = "all",
    drill: Annotated[str, Query(max_length=3, description="yes, no, or empty for both")] = "",
    classification: Annotated[str, Query(max_length=3, description="I, II or III")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RecallList:
    """Recalls and drills, newest first, with their class, status and consignee count."""
    items, count = await recall_service.list_recalls(
        session=session,
        principal=principal,
        status=status,
        drill=drill,
        classification=classification,
        limit=limit,
        offset=offset,
    )
    return RecallList(items=items, count=count)


@router.get("/recalls/{key}", response_model=RecallDetail)
async def get_recall(
    key: Key, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> RecallDetail:
    """One recall: scope (version, hash, lots, versions), the consignee board (notice status,
    answers, quantities, reconciled), the report clock, effectiveness against the target, drill
    times, open tasks, timeline and signatures."""
    return await recall_service.recall_detail(
        session=session,
        principal=principal,
        key=key,
        holidays_country=settings.holidays_country,
    )


@router.get("/recalls/{key}/scope-versions", response_model=RecallScopeVersionList)
async def get_scope_versions(
    key: Key, principal: CurrentPrincipal, session: DbSession
) -> RecallScopeVersionList:
    """Every frozen version of the scope with its hash and the difference from the one before."""
    items = await recall_service.recall_scope_versions(
        session=session, principal=principal, key=key
    )
    return RecallScopeVersionList(items=items, count=len(items))


class WidenScopeIn(BaseModel):
    lots: Annotated[list[str], Field(min_length=1, max_length=200)]  # lot numbers or GS1
    reason: Annotated[str, Field(min_length=5, max_length=5000)]


@router.post("/recalls/{key}/widen-scope", response_model=WidenScopeResult)
async def widen_scope(
    key: Key,
    body: WidenScopeIn,
    principal: CurrentPrincipal,
    session: DbSession,
    client: Temporal,
    accept_language: Annotated[str | None, Header()] = None,
) -> WidenScopeResult:
    """Widen a running recall's scope with more suspect lots (a person in qa-manager or ra): a
    new frozen version with its hash and the difference; new stock held, new consignees
    notified. 409 once termination has been asked for, or when the recall has ended. The
    `message` is in English unless `Accept-Language` asks for Chinese."""
    answer = await recall_service.widen_scope(
        session=session,
        client=client,
        principal=principal,
        key=key,
        lot_references=body.lots,
        reason=body.reason,
    )
    return in_language(answer, accept_language)


@router.get(
    "/recalls/{key}/report.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def recall_report(
    key: Key, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> Response:
    """The recall report as PDF; the X-Content-SHA256 header repeats the hash its pages carry."""
    return await report_response(session, principal, key, settings.holidays_country)


async def report_response(
    session: AsyncSession, principal: Principal, key: str, holidays_country: str
) -> Response:
    """The PDF answer, for the API and the pages alike: the report of api/routes/reports.py
    (its CSV at /api/v1/reports/recall/{key}?format=csv), recorded as `report.produced`."""
    report = await reports.build_recall(session, principal, key, holidays_country)
    return await reports.deliver(session, principal, report, "pdf")


@router.post("/nonconformances/{key}/recall", status_code=201, response_model=RecallProcessOut)
async def recall_from_nonconformance(
    key: Annotated[str, Path(max_length=200, description="NC process id or NC number")],
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    sessions: Sessions,
    client: Temporal,
    settings: AppSettings,
) -> RecallProcessOut:
    """Start the recall a nonconformance asked for (`<nc id>.recall`): its recall scope gives
    the suspect lots and the reason. 201 new, 200 when it was started before; 409 when the NC
    did not ask for a recall."""
    process_id, created = await recall_service.start_recall_from_nc(
        session=session,
        client=client,
        principal=principal,
        nc_key=key,
        task_queue=settings.task_queue,
    )
    return await recall_started(response, session, sessions, process_id, created)
