"""Liveness, readiness and metrics.

/healthz and /readyz answer without credentials: load balancers and orchestrators call them, and
they reveal only up/down. /metrics needs an administrator or a key with `metrics:read`.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from api.deps import CurrentPrincipal, DbSession
from erp.models import Task

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database and Temporal answer; says which one does not."""
    checks = {
        "database": await _check_database(request),
        "temporal": await _check_temporal(request),
    }
    ready = all(v == "ok" for v in checks.values())
    if ready:
        return JSONResponse({"ready": True, **checks})
    down = "; ".join(f"{name} {state}" for name, state in checks.items() if state != "ok")
    # a refusal like every other: a string `detail` saying what is wrong and what to do
    detail = f"not ready: {down}; nothing can be started until it answers — try again shortly"
    return JSONResponse(
        {"ready": False, **checks, "detail": detail}, status_code=503, headers={"Retry-After": "5"}
    )


async def _check_database(request: Request) -> str:
    try:
        async with asyncio.timeout(3), request.app.state.sessions() as session:
            await session.execute(text("SELECT 1"))
        return "ok"
    except Exception as err:  # any failure means "not ready"; say what kind
        return f"down: {type(err).__name__}"


async def _check_temporal(request: Request) -> str:
    client = request.app.state.temporal
    if client is None:
        return "down: not connected"
    try:
        async with asyncio.timeout(3):
            await client.service_client.check_health()
        return "ok"
    except Exception as err:
        return f"down: {type(err).__name__}"


@router.get("/metrics")
async def metrics(request: Request, principal: CurrentPrincipal, session: DbSession) -> Response:
    """Prometheus text format."""
    principal.require("metrics:read")
    state = request.app.state.metrics
    open_tasks = await session.scalar(select(func.count()).where(Task.status == "open"))
    overdue = await session.scalar(
        select(func.count()).where(Task.status == "open", Task.due_at < func.now())
    )
    state.open_tasks.set(open_tasks or 0)
    state.overdue_tasks.set(overdue or 0)
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)
