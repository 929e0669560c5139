"""The operations dashboard as JSON: open tasks by SLA state, cycle times and their trend, CAPA
aging, NCs by source and supplier, supplier scorecards, recall effectiveness, lots on hold
(definitions: docs/dashboard.md). People may read it; a system's key needs `dashboard:read`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentPrincipal, DbSession
from api.errors import ApiError
from erp import dashboard as figures
from schemas.dashboard import PROCESS_KINDS, Dashboard

router = APIRouter(prefix="/api/v1", tags=["dashboard"])

READ_SCOPE = "dashboard:read"
DATE_HELP = "a date, YYYY-MM-DD (UTC), inclusive"


@router.get("/dashboard", response_model=Dashboard)
async def get_dashboard(
    principal: CurrentPrincipal,
    session: DbSession,
    date_from: Annotated[
        str | None, Query(alias="from", max_length=20, description=DATE_HELP)
    ] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=20, description=DATE_HELP)] = None,
    process: Annotated[
        str | None,
        Query(max_length=40, description="a process kind: " + ", ".join(PROCESS_KINDS)),
    ] = None,
) -> Dashboard:
    """Every dashboard figure for the date range (default: the last 12 weeks up to today) and,
    optionally, one process kind (it narrows open tasks and cycle times)."""
    principal.require(READ_SCOPE)
    try:
        filters = figures.parse_filters(
            date_from=date_from,
            date_to=date_to,
            process=process,
            today=datetime.now(UTC).date(),
        )
    except figures.FilterRefused as refused:
        raise ApiError(422, refused.message, **refused.values) from None
    return await figures.dashboard(session, filters=filters)
