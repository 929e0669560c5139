"""Recall pages and the trace explorer: /trace (a lot number or a scanned GS1 string; the forward
and backward trees with where each lot went), /recalls (the list and the start form with its
drill checkbox), a recall's page (scope with its versions and the widen-scope form, the consignee
board with its silent filter, the report clock, the effectiveness gauge, drill times, open tasks,
timeline, the PDF), refreshed from <page>/progress like the supply pages; and the button that
starts the recall a nonconformance asked for.

Thin like the rest of the UI: it calls api/recall_service.py, the service the REST API uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api import process_service, recall_service
from api.deps import AppSettings, DbSession, Temporal
from api.errors import ApiError, Message, not_found
from api.routes.recall import report_response
from api.security import Principal
from erp.gs1 import Gs1Error
from erp.trace import AmbiguousLotReference, LotNotFound, resolve_lot_reference, trace_lot
from schemas.api import RecallDetail
from schemas.recall import RecallRequest, RecallSource
from schemas.supply import TraceLot, TraceResult, TraceShipment
from ui import pages
from ui.pages import User, check_csrf, form_values, fresh_form_key, process_url
from ui.supply_views import form_problem, process_view

router = APIRouter(include_in_schema=False)

REFRESH_SECONDS = 5
LIST_LIMIT = 200
SOURCE_LABELS = {
    RecallSource.UI: "Quality decision",
    RecallSource.NONCONFORMANCE: "Nonconformance",
    RecallSource.CAPA: "CAPA",
    RecallSource.COMPLAINT: "Complaint",
    RecallSource.REGULATOR: "Regulator",
    RecallSource.EXTERNAL: "External system",
}
DEPTH_LABELS = {"consumer": "Consumer / user", "retail": "Retail", "wholesale": "Wholesale"}
FORM_LABELS = {
    "suspect_lots": "Suspect lots",
    "reason": "Reason",
    "source": "Source",
    "source_reference": "Source reference",
}


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    # the working days of the site's country count the clock, whatever language the reader reads
    context.setdefault("calendar_country", request.app.state.settings.holidays_country)
    context.setdefault("refresh_seconds", REFRESH_SECONDS)
    context.setdefault("source_labels", SOURCE_LABELS)
    context.setdefault("depth_labels", DEPTH_LABELS)
    context.setdefault("may_start_recall", recall_service.may_start_recall)
    context.setdefault("may_widen_scope", recall_service.may_widen_scope)
    return pages.render(request, name, status_code, **context)


def _lines(text: str) -> list[str]:
    """Lots one per line (or comma-separated), as typed or scanned."""
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


# ---------------------------------------------------------------- trace explorer


@dataclass
class TraceNode:
    """One lot of a trace tree: what it went into (forward) or came from (backward)."""

    lot: TraceLot
    quantity: Any = None  # the quantity on the edge that reached it
    work_order: str | None = None
    children: list[TraceNode] = field(default_factory=list)
    shipments: list[TraceShipment] = field(default_factory=list)
    repeated: bool = False  # reached before in this tree: shown once, named here


def trace_tree(result: TraceResult) -> TraceNode:
    """The trace as a tree from its root; a lot reached by several paths is expanded once."""
    lots = {lot.lot_number: lot for lot in result.lots}
    following: dict[str, list[tuple[str, Any, str | None]]] = {}
    for edge in result.edges:
        start, end = (
            (edge.parent, edge.child)
            if result.direction == "forward"
            else (edge.child, edge.parent)
        )
        following.setdefault(start, []).append((end, edge.quantity, edge.work_order))
    shipped: dict[str, list[TraceShipment]] = {}
    for shipment in result.shipments:
        shipped.setdefault(shipment.lot_number, []).append(shipment)
    seen: set[str] = set()

    def grow(number: str, quantity: Any, work_order: str | None) -> TraceNode:
        node = TraceNode(lots[number], quantity, work_order, shipments=shipped.get(number, []))
        if number in seen:
            node.repeated, node.shipments = True, []
            return node
        seen.add(number)
        for end, qty, wo in sorted(following.get(number, []), key=lambda e: e[0]):
            node.children.append(grow(end, qty, wo))
        return node

    return grow(result.root, None, None)


@dataclass
class TraceView:
    query: str
    lot_number: str | None = None
    serial: str | None = None
    forward: TraceNode | None = None
    backward: TraceNode | None = None
    consignees: list[tuple[str, str, Any]] = field(default_factory=list)  # code, name, quantity
    error: str = ""


async def _trace_view(session: AsyncSession, query: str) -> TraceView:
    view = TraceView(query=query)
    if not query:
        return view
    try:
        lot, view.serial = await resolve_lot_reference(session, query)
    except (LotNotFound, AmbiguousLotReference, Gs1Error) as err:
        view.error = err.message
        return view
    view.lot_number = lot.lot_number
    forward = await trace_lot(session, lot.lot_number, "forward")
    view.forward = trace_tree(forward)
    view.backward = trace_tree(await trace_lot(session, lot.lot_number, "backward"))
    totals: dict[tuple[str, str], Any] = {}
    for s in forward.shipments:
        key = (s.consignee_code, s.consignee_name)
        totals[key] = totals.get(key, 0) + s.quantity
    view.consignees = [(code, name, q) for (code, name), q in sorted(totals.items())]
    return view


@router.get("/trace", response_class=HTMLResponse)
async def trace_explorer(request: Request, user: User, session: DbSession, q: str = "") -> Response:
    user.require("lots:read")
    view = await _trace_view(session, q.strip()[:300])
    # a search that finds nothing is answered on the search page itself, in words
    return render(request, "trace.html", t=view)


# ---------------------------------------------------------------- the recall list


@router.get("/recalls", response_class=HTMLResponse)
async def recalls(
    request: Request,
    user: User,
    session: DbSession,
    status: str = "open",
    drill: str = "",
    classification: str = "",
) -> Response:
    filters = {
        "status": status[:10] or "open",
        "drill": drill[:3],
        "classification": classification[:3],
    }
    error = ""
    try:
        items, count = await recall_service.list_recalls(
            session=session, principal=user, limit=LIST_LIMIT, offset=0, **filters
        )
    except ApiError as err:
        if err.status_code != 422:
            raise
        items, count, error = [], 0, err.detail
    return render(
        request,
        "recalls.html",
        400 if error else 200,
        items=items,
        count=count,
        f=filters,
        error=error,
    )


# ---------------------------------------------------------------- start a recall or a drill


async def _recall_form(
    request: Request,
    *,
    status_code: int = 200,
    form: Mapping[str, str] | None = None,
    error: str = "",
    refused: str = "",
) -> HTMLResponse:
    return render(
        request,
        "recall_new.html",
        status_code,
        form=form_values(form),
        error=error,
        refused=refused,
        sources=SOURCE_LABELS,
    )


@router.get("/recalls/new", response_class=HTMLResponse)
async def new_recall(request: Request, user: User, lot: str = "", drill: str = "") -> Response:
    """The start form; a trace or a lot page can link here with the lot filled in."""
    user.require("processes:start")
    if not recall_service.may_start_recall(user, drill=True):
        refused = "starting a recall needs one of the groups " + ", ".join(
            recall_service.RECALL_STARTERS
        )
        return await _recall_form(request, status_code=403, refused=refused)
    form = fresh_form_key() | {"suspect_lots": lot.strip()[:300], "drill": "on" if drill else ""}
    if not recall_service.may_start_recall(user):
        form["drill"] = "on"  # QA rehearses; only a recall's owners start a real one
    return await _recall_form(request, form=form)


@router.post("/recalls/new")
async def start_recall(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    form = await request.form()
    check_csrf(user, form.get("csrf_token"))
    kept = {str(k): str(v)[:5000] for k, v in form.items() if k != "csrf_token"}
    try:
        body = read_recall_form(kept)
        process_id, _ = await recall_service.start_recall(
            session=session,
            client=client,
            principal=user,
            body=body,
            idempotency_key=kept.get("form_key") or None,
            task_queue=settings.task_queue,
        )
    except ValidationError as err:
        problem = form_problem(err, labels=FORM_LABELS)
        return await _recall_form(request, status_code=422, form=kept, error=problem)
    except ApiError as err:
        await session.rollback()
        return await _recall_form(request, status_code=err.status_code, form=kept, error=err.detail)
    return RedirectResponse(process_url("recall", process_id), status_code=303)


def read_recall_form(form: Mapping[str, str]) -> RecallRequest:
    text = {k: v.strip() for k, v in form.items()}
    return RecallRequest.model_validate(
        {
            "suspect_lots": _lines(text.get("suspect_lots", "")),
            "reason": text.get("reason", ""),
            "source": text.get("source") or "ui",
            "source_reference": text.get("source_reference", ""),
            "drill": text.get("drill") in ("on", "1", "true"),
        }
    )


@router.post("/nonconformances/{key}/recall")
async def recall_from_nonconformance(
    key: str,
    request: Request,
    user: User,
    session: DbSession,
    client: Temporal,
    settings: AppSettings,
) -> Response:
    """The NC page's button: start the recall the NC asked for (once; a second click finds it)."""
    form = await request.form()
    check_csrf(user, form.get("csrf_token"))
    process_id, _ = await recall_service.start_recall_from_nc(
        session=session,
        client=client,
        principal=user,
        nc_key=key,
        task_queue=settings.task_queue,
    )
    return RedirectResponse(process_url("recall", process_id), status_code=303)


# ---------------------------------------------------------------- one recall


async def _recall(
    session: AsyncSession, user: Principal, key: str, country: str
) -> RecallDetail | None:
    if await recall_service.find_recall(session, key) is None:
        return None
    return await recall_service.recall_detail(
        session=session, principal=user, key=key, holidays_country=country
    )


def _board_filter(silent: str) -> bool:
    return silent in ("1", "on", "true")


@router.get("/recalls/{key}", response_class=HTMLResponse)
async def recall_page(
    key: str,
    request: Request,
    user: User,
    session: DbSession,
    client: Temporal,
    settings: AppSettings,
    silent: str = "",
) -> Response:
    key = key.strip()[:200]
    recall = await _recall(session, user, key, settings.holidays_country)
    if recall is None:
        detail = await process_service.process_detail(
            session=session, client=client, principal=user, process_id=key
        )
        view = await process_view(session, key)
        return render(request, "recall_starting.html", detail=detail, view=view)
    if key != recall.id:  # found by its number: the page lives at its process id
        return RedirectResponse(process_url("recall", recall.id), status_code=303)
    return render(
        request,
        "recall.html",
        r=recall,
        silent_only=_board_filter(silent),
        view=await process_view(session, recall.id),
        widen=dict(request.query_params),
        widen_error="",
        widen_answer=None,
    )


@router.get("/recalls/{key}/progress", response_class=HTMLResponse)
async def recall_progress(
    key: str,
    request: Request,
    user: User,
    session: DbSession,
    settings: AppSettings,
    silent: str = "",
) -> Response:
    recall = await _recall(session, user, key.strip()[:200], settings.holidays_country)
    if recall is None:
        raise not_found(Message("Recall %(id)s", id=key[:200]))
    response = render(
        request,
        "recall_progress.html",
        r=recall,
        silent_only=_board_filter(silent),
        view=await process_view(session, recall.id),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/recalls/{key}/widen-scope", response_class=HTMLResponse)
async def widen_scope(
    key: str,
    request: Request,
    user: User,
    session: DbSession,
    client: Temporal,
    settings: AppSettings,
) -> Response:
    form = await request.form()
    check_csrf(user, form.get("csrf_token"))
    lots, reason = str(form.get("lots") or "")[:5000], str(form.get("reason") or "")[:5000]
    error, status, answer = "", 200, None
    try:
        answer = await recall_service.widen_scope(
            session=session,
            client=client,
            principal=user,
            key=key.strip()[:200],
            lot_references=_lines(lots),
            reason=reason,
        )
    except ApiError as err:
        if err.status_code in (403, 404):
            raise  # the error page says why: this person's page shows no widen form to hold it
        await session.rollback()
        error, status = err.detail, err.status_code
    recall = await _recall(session, user, key.strip()[:200], settings.holidays_country)
    if recall is None:
        raise not_found(Message("Recall %(id)s", id=key[:200]))
    if error and not recall.open:
        raise ApiError(status, error)  # an ended recall's page has no widen form either
    return render(
        request,
        "recall.html",
        status,
        r=recall,
        silent_only=False,
        view=await process_view(session, recall.id),
        widen={} if answer is not None else {"lots": lots, "reason": reason},
        widen_error=error,
        widen_answer=answer,
    )


@router.get("/recalls/{key}/report.pdf")
async def recall_report(
    key: str, user: User, session: DbSession, settings: AppSettings
) -> Response:
    return await report_response(session, user, key.strip()[:200], settings.holidays_country)
