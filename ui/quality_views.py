"""Nonconformance and CAPA pages: the NC list with its aging view, the report form, an NC with
its lots, dispositions, SCARs and links to its CAPA and recall; the CAPA list with the action
board, the CAPA start form, and a CAPA with its root cause, plan rounds and effectiveness checks.
Running processes' pages refresh their changing parts from <page>/progress, as the supply pages do.

Thin like the rest of the UI: starting goes through api/quality_service.py, the service the REST
API uses, and the pages show the same read models the API answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api import process_service, quality_service
from api.deps import AppSettings, DbSession, Temporal
from api.errors import ApiError, Message, not_found
from api.quality_service import AGING, CAPA_STARTERS, CapaFilters, NcFilters
from api.security import Principal
from erp.master_data import Item, Supplier
from erp.models import AppUser, Process
from schemas.api import CapaActionOut, CapaDetail, NonconformanceDetail
from schemas.quality import CapaRequest, NcSource, NonconformanceRequest, Severity
from ui import pages
from ui.pages import User, check_csrf, form_values, fresh_form_key, process_url
from ui.supply_views import form_problem, process_view

router = APIRouter(include_in_schema=False)

REFRESH_SECONDS = 5
LIST_LIMIT = 200
SOURCE_LABELS = {
    NcSource.INCOMING: "Incoming inspection",
    NcSource.IN_PROCESS: "In-process inspection",
    NcSource.FINAL: "Final inspection",
    NcSource.COMPLAINT: "Customer complaint",
    NcSource.AUDIT: "Audit",
    NcSource.SUPPLIER: "Supplier notice",
    NcSource.OTHER: "Other",
}
SEVERITY_LABELS = {
    Severity.MINOR: "Minor",
    Severity.MAJOR: "Major",
    Severity.CRITICAL: "Critical",
}
DISPOSITION_LABELS = {
    "use_as_is": "Use as is",
    "rework": "Rework",
    "return_to_supplier": "Return to supplier",
    "scrap": "Scrap",
}
CAPA_SOURCES = {
    "nonconformance": "Nonconformance",
    "complaint": "Complaint trend",
    "audit": "Audit finding",
    "trend": "Quality data trend",
    "other": "Other",
}
# what the forms call the fields that validation names
NC_FORM_LABELS = {
    "source": "Source",
    "severity": "Severity",
    "title": "Title",
    "description": "What was found",
    "part_number": "Part",
    "lots": "Lots",
    "quantity": "Quantity affected",
    "evidence": "Evidence",
    "supplier_code": "Supplier",
}
CAPA_FORM_LABELS = {
    "title": "Title",
    "problem_statement": "Problem statement",
    "owner": "Owner",
    "source": "Source",
    "nc_process_id": "Nonconformance",
    "effectiveness_wait_days": "Effectiveness check after (days)",
}


def may_start_capa(user: Principal) -> bool:
    return bool(user.groups & set(CAPA_STARTERS))


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A quality page: the page helpers plus the labels the quality pages use."""
    context.setdefault("refresh_seconds", REFRESH_SECONDS)
    context.setdefault("source_labels", SOURCE_LABELS)
    context.setdefault("severity_labels", SEVERITY_LABELS)
    context.setdefault("disposition_labels", DISPOSITION_LABELS)
    context.setdefault("capa_sources", CAPA_SOURCES)
    context.setdefault("may_start_capa", may_start_capa)
    return pages.render(request, name, status_code, **context)


def _kept(form: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:5000] for k, v in form.items() if k != "csrf_token"}


# ---------------------------------------------------------------- the nonconformance list


@router.get("/nonconformances", response_class=HTMLResponse)
async def nonconformances(
    request: Request,
    user: User,
    session: DbSession,
    status: str = "open",
    overdue: str = "",
    supplier: str = "",
    part: str = "",
    source: str = "",
    severity: str = "",
    age: str = "",
) -> Response:
    filters = NcFilters(
        status=status[:10] or "open",
        overdue=overdue in ("1", "on", "true"),
        supplier=supplier.strip()[:20] or None,
        part_number=part.strip().upper()[:40] or None,
        source=source[:20] or None,
        severity=severity[:10] or None,
        age=age[:10] or None,
    )
    error = ""
    try:
        items, count, aging = await quality_service.list_nonconformances(
            session=session, principal=user, filters=filters, limit=LIST_LIMIT, offset=0
        )
    except ApiError as err:
        if err.status_code != 422:
            raise
        items, count, aging, error = [], 0, [], err.detail
    return render(
        request,
        "quality_ncs.html",
        400 if error else 200,
        items=items,
        count=count,
        aging=aging,
        aging_buckets=AGING,
        f=filters,
        error=error,
        suppliers=(await session.scalars(select(Supplier).order_by(Supplier.code))).all(),
        query=_query_without(filters, "age"),
    )


def _query_without(filters: NcFilters, *names: str) -> str:
    """The list's filters as a query string, less some (the aging links add their own age)."""
    values = {
        "status": filters.status,
        "overdue": "1" if filters.overdue else "",
        "supplier": filters.supplier or "",
        "part": filters.part_number or "",
        "source": filters.source or "",
        "severity": filters.severity or "",
        "age": filters.age or "",
    }
    return "&".join(f"{k}={v}" for k, v in values.items() if v and k not in names)


# ---------------------------------------------------------------- report a nonconformance


async def _nc_form(
    request: Request,
    session: AsyncSession,
    *,
    status_code: int = 200,
    form: Mapping[str, str] | None = None,
    error: str = "",
) -> HTMLResponse:
    parts = await session.scalars(
        select(Item).where(Item.status == "effective").order_by(Item.part_number)
    )
    return render(
        request,
        "quality_nc_new.html",
        status_code,
        form=form_values(form),
        error=error,
        parts=parts.all(),
        suppliers=(await session.scalars(select(Supplier).order_by(Supplier.code))).all(),
        sources=SOURCE_LABELS,
        severities=SEVERITY_LABELS,
    )


@router.get("/nonconformances/new", response_class=HTMLResponse)
async def new_nonconformance(
    request: Request, user: User, session: DbSession, lot: str = "", part: str = ""
) -> Response:
    """Anyone may report a nonconformance; a lot page can link here with its lot filled in."""
    user.require("processes:start")
    form = fresh_form_key() | {"lots": lot.strip()[:200], "part_number": part.strip()[:40]}
    return await _nc_form(request, session, form=form)


@router.post("/nonconformances/new")
async def report_nonconformance(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    form = await request.form()
    check_csrf(user, form.get("csrf_token"))
    kept = _kept(form)
    try:
        body = read_nc_form(kept)
        process_id, _ = await quality_service.start_nonconformance(
            session=session,
            client=client,
            principal=user,
            body=body,
            idempotency_key=kept.get("form_key") or None,
            task_queue=settings.task_queue,
        )
    except ValidationError as err:
        problem = form_problem(err, labels=NC_FORM_LABELS)
        return await _nc_form(request, session, status_code=422, form=kept, error=problem)
    except ApiError as err:
        await session.rollback()
        return await _nc_form(
            request, session, status_code=err.status_code, form=kept, error=err.detail
        )
    return RedirectResponse(process_url("nonconformance", process_id), status_code=303)


def read_nc_form(form: Mapping[str, str]) -> NonconformanceRequest:
    """The report form as a NonconformanceRequest (ValidationError when it is not one). Lots are
    one per line, as typed or scanned (a GS1 label string is resolved by the service)."""
    text = {k: v.strip() for k, v in form.items()}
    lots = [line.strip() for line in text.get("lots", "").replace(",", "\n").splitlines()]
    return NonconformanceRequest.model_validate(
        {
            "source": text.get("source", ""),
            "severity": text.get("severity", ""),
            "title": text.get("title", ""),
            "description": text.get("description", ""),
            "part_number": text.get("part_number", "").upper() or None,
            "lots": [lot for lot in lots if lot],
            "quantity": text.get("quantity") or None,
            "evidence": text.get("evidence", ""),
            "supplier_code": text.get("supplier_code") or None,
        }
    )


# ---------------------------------------------------------------- one nonconformance


@dataclass
class NcPage:
    """What the NC page shows besides the process's progress: the NC's record and links."""

    nc: NonconformanceDetail
    origin: Process | None


async def _nc_page_data(session: AsyncSession, user: Principal, key: str) -> NcPage | None:
    if await quality_service.find_nonconformance(session, key) is None:
        return None
    nc = await quality_service.nonconformance_detail(session=session, principal=user, key=key)
    origin = await session.get(Process, nc.origin_process_id) if nc.origin_process_id else None
    if origin is None and "." in nc.id:  # raised by another process: <its id>.nc-<n>
        origin = await session.get(Process, nc.id.rsplit(".", 1)[0])
    return NcPage(nc=nc, origin=origin)


@router.get("/nonconformances/{key}", response_class=HTMLResponse)
async def nonconformance_page(
    key: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    key = key.strip()[:200]
    data = await _nc_page_data(session, user, key)
    if data is None:
        return await _starting(request, session, client, user, "nonconformance", key)
    if key != data.nc.id:  # found by its NC number: the page lives at its process id
        return RedirectResponse(process_url("nonconformance", data.nc.id), status_code=303)
    return render(
        request,
        "quality_nc.html",
        d=data.nc,
        origin=data.origin,
        view=await process_view(session, data.nc.id),
    )


@router.get("/nonconformances/{key}/progress", response_class=HTMLResponse)
async def nonconformance_progress(
    key: str, request: Request, user: User, session: DbSession
) -> Response:
    data = await _nc_page_data(session, user, key.strip()[:200])
    if data is None:
        raise not_found(Message("Nonconformance %(id)s", id=key[:200]))
    response = render(
        request,
        "quality_progress.html",
        d=data.nc,
        view=await process_view(session, data.nc.id),
        kind="nonconformance",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def _starting(
    request: Request, session: AsyncSession, client: Any, user: Principal, kind: str, key: str
) -> HTMLResponse:
    """The record is not there (yet): started a moment ago, or unknown (404)."""
    detail = await process_service.process_detail(
        session=session, client=client, principal=user, process_id=key
    )
    view = await process_view(session, key)
    return render(request, "quality_starting.html", kind=kind, detail=detail, view=view)


# ---------------------------------------------------------------- CAPA list and action board


@dataclass
class OwnerActions:
    owner: str
    full_name: str
    actions: list[CapaActionOut]

    @property
    def overdue(self) -> int:
        return sum(1 for a in self.actions if a.overdue)


@router.get("/capas", response_class=HTMLResponse)
async def capas(
    request: Request,
    user: User,
    session: DbSession,
    status: str = "open",
    overdue: str = "",
    owner: str = "",
) -> Response:
    filters = CapaFilters(
        status=status[:10] or "open",
        overdue=overdue in ("1", "on", "true"),
        owner=owner.strip()[:64] or None,
    )
    error = ""
    try:
        items, count = await quality_service.list_capas(
            session=session, principal=user, filters=filters, limit=LIST_LIMIT, offset=0
        )
    except ApiError as err:
        if err.status_code != 422:
            raise
        items, count, error = [], 0, err.detail
    actions = await quality_service.open_actions(session=session, principal=user)
    return render(
        request,
        "quality_capas.html",
        400 if error else 200,
        items=items,
        count=count,
        f=filters,
        error=error,
        board=await _board(session, actions),
        owners=await _people(session),
    )


async def _board(session: AsyncSession, actions: list[CapaActionOut]) -> list[OwnerActions]:
    """Open actions by owner (the owners with overdue actions first), each by due date."""
    names = await _full_names(session, {a.owner for a in actions})
    board: dict[str, OwnerActions] = {}
    for action in actions:
        row = board.setdefault(
            action.owner, OwnerActions(action.owner, names.get(action.owner, action.owner), [])
        )
        row.actions.append(action)
    for row in board.values():
        row.actions.sort(key=lambda a: (a.due_on, a.capa_number or "", a.seq))
    return sorted(board.values(), key=lambda r: (-r.overdue, r.actions[0].due_on, r.owner))


async def _full_names(session: AsyncSession, usernames: set[str]) -> dict[str, str]:
    if not usernames:
        return {}
    rows = await session.execute(
        select(AppUser.username, AppUser.full_name).where(AppUser.username.in_(usernames))
    )
    return {u: n for u, n in rows.tuples()}


async def _people(session: AsyncSession) -> list[AppUser]:
    """Active people (not system accounts): who may own a CAPA."""
    rows = await session.scalars(
        select(AppUser).where(AppUser.is_active, ~AppUser.is_system).order_by(AppUser.username)
    )
    return list(rows)


# ---------------------------------------------------------------- start a CAPA


async def _capa_form(
    request: Request,
    session: AsyncSession,
    *,
    status_code: int = 200,
    form: Mapping[str, str] | None = None,
    error: str = "",
    refused: str = "",
) -> HTMLResponse:
    return render(
        request,
        "quality_capa_new.html",
        status_code,
        form=form_values(form),
        error=error,
        refused=refused,
        owners=await _people(session),
    )


@router.get("/capas/new", response_class=HTMLResponse)
async def new_capa(request: Request, user: User, session: DbSession, nc: str = "") -> Response:
    """The CAPA form; from an NC's page it comes with the NC, its title and its problem."""
    user.require("processes:start")
    if not may_start_capa(user):
        refused = f"starting a CAPA needs one of the groups {', '.join(CAPA_STARTERS)}"
        return await _capa_form(request, session, status_code=403, refused=refused)
    form = fresh_form_key() | {"owner": user.username, "effectiveness_wait_days": "90"}
    found = await quality_service.find_nonconformance(session, nc.strip()[:200]) if nc else None
    if found is not None:
        form |= {
            "nc_process_id": found.number,
            "source": "nonconformance",
            "title": f"{found.number}: {found.title}"[:300],
            "problem_statement": found.description,
        }
    return await _capa_form(request, session, form=form)


@router.post("/capas/new")
async def start_capa(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    form = await request.form()
    check_csrf(user, form.get("csrf_token"))
    kept = _kept(form)
    try:
        body = read_capa_form(kept)
        process_id, _ = await quality_service.start_capa(
            session=session,
            client=client,
            principal=user,
            body=body,
            idempotency_key=kept.get("form_key") or None,
            task_queue=settings.task_queue,
        )
    except ValidationError as err:
        problem = form_problem(err, labels=CAPA_FORM_LABELS)
        return await _capa_form(request, session, status_code=422, form=kept, error=problem)
    except ApiError as err:
        await session.rollback()
        if err.status_code == 403:
            return await _capa_form(request, session, status_code=403, refused=err.detail)
        return await _capa_form(
            request, session, status_code=err.status_code, form=kept, error=err.detail
        )
    return RedirectResponse(process_url("capa", process_id), status_code=303)


def read_capa_form(form: Mapping[str, str]) -> CapaRequest:
    text = {k: v.strip() for k, v in form.items()}
    return CapaRequest.model_validate(
        {
            "title": text.get("title", ""),
            "problem_statement": text.get("problem_statement", ""),
            "owner": text.get("owner", ""),
            "source": text.get("source") or "other",
            "nc_process_id": text.get("nc_process_id") or None,
            "effectiveness_wait_days": text.get("effectiveness_wait_days") or "90",
        }
    )


# ---------------------------------------------------------------- one CAPA


async def _capa(session: AsyncSession, user: Principal, key: str) -> CapaDetail | None:
    if await quality_service.find_capa(session, key) is None:
        return None
    return await quality_service.capa_detail(session=session, principal=user, key=key)


@router.get("/capas/{key}", response_class=HTMLResponse)
async def capa_page(
    key: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    key = key.strip()[:200]
    capa = await _capa(session, user, key)
    if capa is None:
        return await _starting(request, session, client, user, "capa", key)
    if key != capa.id:
        return RedirectResponse(process_url("capa", capa.id), status_code=303)
    return render(
        request,
        "quality_capa.html",
        c=capa,
        names=await _full_names(session, {a.owner for r in capa.rounds for a in r.actions}),
        view=await process_view(session, capa.id),
    )


@router.get("/capas/{key}/progress", response_class=HTMLResponse)
async def capa_progress(key: str, request: Request, user: User, session: DbSession) -> Response:
    capa = await _capa(session, user, key.strip()[:200])
    if capa is None:
        raise not_found(Message("CAPA %(id)s", id=key[:200]))
    response = render(
        request,
        "quality_progress.html",
        c=capa,
        names=await _full_names(session, {a.owner for r in capa.rounds for a in r.actions}),
        view=await process_view(session, capa.id),
        kind="capa",
    )
    response.headers["Cache-Control"] = "no-store"
    return response
