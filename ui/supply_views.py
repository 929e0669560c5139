"""Procure-to-deliver pages: the supply lists and start forms, the purchase, work-order, shipment
and customer-order pages (with the external events a person keys in by hand), lots and suppliers.

Thin like the rest of the UI: starting a process and sending an event go through
api/supply_service.py, the same services the REST API uses; the pages only read the ERP and arrange
it for people. ui/routes.py includes this router, so the few page helpers it shares with it (the
logged-in user, rendering, the CSRF check) are looked up there when a request arrives."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api import process_service, supply_service
from api.deps import AppSettings, DbSession, Sessions, Temporal
from api.errors import ApiError, not_found
from api.security import Principal
from api.supply_service import SupplyRequest
from api.task_service import audit_out, task_out
from erp import trace
from erp.gs1 import Gs1Error
from erp.master_data import (
    AslEntry,
    BomLine,
    Item,
    Lot,
    PurchaseOrder,
    PurchaseOrderLine,
    Supplier,
    SupplierCertificate,
    WorkOrder,
)
from erp.models import Process, Task
from erp.queries import escape_like, process_timeline
from erp.supply import (
    Customer,
    CustomerOrder,
    GenealogyEdge,
    Inspection,
    InventoryMovement,
    LotStatusChange,
    Receipt,
    SerialNumber,
    Shipment,
    ShipmentLine,
    SupplierScorecard,
)
from schemas.api import AuditOut, TaskOut
from schemas.supply import (
    EVENT_GROUPS,
    EVENTS,
    EventResult,
    ProcureToDeliverRequest,
    PurchaseRequest,
    ShipmentRequest,
    TraceResult,
    WorkOrderRequest,
)
from ui.change_views import Event, show, timeline

router = APIRouter(include_in_schema=False)

SERIALS_SHOWN = 50
LINE_ROWS = 5  # line rows on the purchase and shipment forms


# ---------------------------------------------------------------- shared page helpers


async def _user(request: Request, session: DbSession) -> Principal:
    from ui import routes  # ui.routes includes this router, so it is imported by now

    return await routes._ui_principal(request, session)


User = Annotated[Principal, Depends(_user)]


def _check_csrf(user: Principal, token: object) -> None:
    from ui import routes

    routes._check_csrf(user, str(token or ""))


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    from ui import routes

    context.setdefault("kinds", KINDS)
    helpers = (page_url, lot_url, qty, money, percent, lot_tone, process_tone, show_date, may_start)
    for helper in helpers:
        context.setdefault(helper.__name__, helper)
    return routes.render(request, name, status_code, **context)


# ---------------------------------------------------------------- what the pages show


@dataclass(frozen=True)
class Kind:
    """A supply process as the pages name it."""

    kind: str
    label: str  # the list heading
    one: str  # one of them, in a sentence
    path: str  # /ui/<path>/<process id>
    start: str  # the start button


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("purchase", "Purchases", "purchase", "purchases", "New purchase"),
        Kind(
            "work-order",
            "Work orders",
            "work order",
            "work-orders",
            "New work order",
        ),
        Kind("shipment", "Shipments", "shipment", "shipments", "New shipment"),
        Kind(
            "procure-to-deliver",
            "Customer orders",
            "customer order",
            "orders",
            "New customer order",
        ),
    )
}
KIND_BY_PATH = {k.path: k for k in KINDS.values()}
PROCESS_STATUSES = ("running", "completed", "cancelled", "failed")
EVENT_LABELS = {
    "supplier-confirmed": "Supplier confirmation",
    "asn": "Advance ship notice",
    "goods-received": "Goods receipt",
    "delivered": "Delivery confirmation",
}
# what the start forms call the fields that validation names
FORM_LABELS = {
    "supplier_code": "Supplier",
    "customer_code": "Customer",
    "part_number": "Part",
    "quantity": "Quantity",
    "unit_price": "Unit price",
    "due_on": "Due date",
    "lines": "Lines",
    "buyer_note": "Note to the buyer",
    "expected_transit_days": "Transit days",
    "customer_reference": "Customer's reference",
}


def page_url(kind: str, process_id: str) -> str:
    """The page of a process: the supply kinds have their own, the others the generic one."""
    if kind in KINDS:
        return f"/ui/{KINDS[kind].path}/{quote(process_id, safe='')}"
    if kind == "change-control":
        return f"/changes/{quote(process_id, safe='')}"
    return f"/processes/{quote(process_id, safe='')}"


def lot_url(lot_number: str) -> str:
    return f"/ui/lots/{quote(lot_number, safe='')}"


def qty(value: Decimal | int | None) -> str:
    """12000.0000 → '12,000'; 1.5500 → '1.55'."""
    if value is None:
        return "—"
    number = Decimal(value).normalize()
    return f"{number:,f}"


def money(value: Decimal | None, currency: str = "EUR") -> str:
    return "—" if value is None else f"{Decimal(value):,.2f} {currency}"


def percent(part: int, whole: int) -> str:
    return "—" if not whole else f"{100 * part / whole:.0f} %"


def show_date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def lot_tone(status: str) -> str:
    """The pill colour of a lot status: usable is green, waiting is amber, blocked is red."""
    if status == "RELEASED":
        return "done"
    if status == "QUARANTINE":
        return "warn"
    if status in ("ON_HOLD", "REJECTED", "RECALLED", "EXPIRED"):
        return "bad"
    return ""


def process_tone(status: str) -> str:
    return {"completed": "done", "cancelled": "bad", "failed": "bad"}.get(status, "")


def may_start(user: Principal, kind: str) -> bool:
    """Whether the start button is offered (the service decides again when it is pressed)."""
    spec = supply_service.KINDS.get(kind)
    return spec is not None and bool(user.groups & set(spec.groups))


def may_send(user: Principal, event: str) -> bool:
    """People key in an event when they belong to a group that may (the service checks again)."""
    return bool(user.groups & set(EVENT_GROUPS.get(event, ())))


def event_senders(event: str) -> str:
    return " or ".join(EVENT_GROUPS.get(event, ())) or "nobody"


# ---------------------------------------------------------------- the supply lists


@dataclass
class ProcessList:
    kind: Kind
    rows: list[Any]
    count: int


@router.get("/ui/supply", response_class=HTMLResponse)
async def supply(
    request: Request, user: User, session: DbSession, kind: str = "", status: str = ""
) -> Response:
    kind = kind if kind in KINDS else ""
    status = status if status in PROCESS_STATUSES else ""
    lists = []
    for k in [KINDS[kind]] if kind else KINDS.values():
        rows, count = await process_service.list_processes(
            session=session,
            principal=user,
            kind=k.kind,
            status=status or None,
            initiator=None,
            limit=200 if kind else 10,
            offset=0,
        )
        lists.append(ProcessList(kind=k, rows=rows, count=count))
    return render(
        request,
        "supply_list.html",
        lists=lists,
        kind=kind,
        status=status,
        statuses=PROCESS_STATUSES,
    )


# ---------------------------------------------------------------- start forms


async def _choices(session: AsyncSession) -> dict[str, Any]:
    """What the start forms offer: suppliers, customers, parts (effective revisions) and the parts
    that can be made (an effective revision with a bill of materials)."""
    suppliers = (await session.scalars(select(Supplier).order_by(Supplier.code))).all()
    customers = (await session.scalars(select(Customer).order_by(Customer.code))).all()
    parts = (
        await session.scalars(
            select(Item).where(Item.status == "effective").order_by(Item.part_number)
        )
    ).all()
    made = set(
        await session.scalars(
            select(Item.part_number)
            .join(BomLine, BomLine.item_id == Item.id)
            .where(Item.status == "effective")
        )
    )
    return {
        "suppliers": suppliers,
        "customers": customers,
        "parts": parts,
        "made": [p for p in parts if p.part_number in made],
    }


def _kind_of_path(path: str) -> Kind:
    found = KIND_BY_PATH.get(path)
    if found is None:
        raise not_found(f"Page /ui/{path}")
    return found


async def _start_form(
    request: Request,
    session: AsyncSession,
    kind: Kind,
    *,
    status_code: int = 200,
    form: Mapping[str, str] | None = None,
    error: str = "",
) -> HTMLResponse:
    return render(
        request,
        "supply_new.html",
        status_code,
        k=kind,
        form=dict(form or {}) | ({} if form and form.get("form_key") else _fresh_key()),
        error=error,
        choices=await _choices(session),
        line_rows=range(1, LINE_ROWS + 1),
        today=datetime.now(UTC).date().isoformat(),
    )


def _fresh_key() -> dict[str, str]:
    """A key per form shown: posting the same form twice starts one process, not two."""
    return {"form_key": secrets.token_urlsafe(18)}


@router.get("/ui/{path}/new", response_class=HTMLResponse)
async def new_process(path: str, request: Request, user: User, session: DbSession) -> Response:
    kind = _kind_of_path(path)
    user.require("processes:start")
    if not may_start(user, kind.kind):
        spec = supply_service.KINDS[kind.kind]
        return render(
            request,
            "supply_new.html",
            403,
            k=kind,
            refused=f"starting a {kind.one} needs one of the groups {', '.join(spec.groups)}",
        )
    return await _start_form(request, session, kind)


@router.post("/ui/{path}/new")
async def start_process(
    path: str,
    request: Request,
    user: User,
    session: DbSession,
    client: Temporal,
    settings: AppSettings,
) -> Response:
    kind = _kind_of_path(path)
    form = await request.form()
    _check_csrf(user, form.get("csrf_token"))
    kept = {str(k): str(v)[:2000] for k, v in form.items() if k != "csrf_token"}
    try:
        body, rows = read_start_form(kind, kept)
    except ValidationError as err:
        problem = form_problem(err, rows=_line_rows(kept))
        return await _start_form(request, session, kind, status_code=422, form=kept, error=problem)
    try:
        process_id, _ = await supply_service.start_supply_process(
            session=session,
            client=client,
            principal=user,
            kind=kind.kind,
            body=body,
            idempotency_key=kept.get("form_key") or None,
            task_queue=settings.task_queue,
        )
    except ApiError as err:
        await session.rollback()
        return await _start_form(
            request, session, kind, status_code=err.status_code, form=kept, error=err.detail
        )
    return RedirectResponse(page_url(kind.kind, process_id), status_code=303)


def _line_rows(form: Mapping[str, str]) -> list[int]:
    """The form rows that hold a line, in order (a row left empty is skipped)."""
    return [
        n
        for n in range(1, LINE_ROWS + 1)
        if any(form.get(f"line_{n}_{f}", "").strip() for f in ("part", "quantity", "unit_price"))
    ]


def read_start_form(kind: Kind, form: Mapping[str, str]) -> tuple[SupplyRequest, list[int]]:
    """The start form as the request model of its kind (ValidationError when it is not one)."""
    rows = _line_rows(form)
    text = {k: v.strip() for k, v in form.items()}

    def line(n: int, *, priced: bool) -> dict[str, str]:
        values = {
            "part_number": text.get(f"line_{n}_part", "").upper(),
            "quantity": text.get(f"line_{n}_quantity", ""),
        }
        if priced:
            values["unit_price"] = text.get(f"line_{n}_unit_price", "") or "0"
        return values

    if kind.kind == "purchase":
        return PurchaseRequest.model_validate(
            {
                "supplier_code": text.get("supplier_code", ""),
                "lines": [line(n, priced=True) for n in rows],
                "due_on": text.get("due_on", ""),
                "buyer_note": text.get("buyer_note", ""),
            }
        ), rows
    if kind.kind == "shipment":
        return ShipmentRequest.model_validate(
            {
                "customer_code": text.get("customer_code", ""),
                "lines": [line(n, priced=False) for n in rows],
                "expected_transit_days": text.get("expected_transit_days") or "5",
            }
        ), rows
    made = {
        "part_number": text.get("part_number", "").upper(),
        "quantity": text.get("quantity", ""),
        "due_on": text.get("due_on", ""),
    }
    if kind.kind == "work-order":
        return WorkOrderRequest.model_validate(made), rows
    return ProcureToDeliverRequest.model_validate(
        made
        | {
            "customer_code": text.get("customer_code", ""),
            "customer_reference": text.get("customer_reference", ""),
        }
    ), rows


def form_problem(err: ValidationError, *, rows: Sequence[int] = ()) -> str:
    """Validation errors in the form's own words: 'Line 2, quantity: must be more than 0'."""
    return "; ".join(_problem(e, rows) for e in err.errors())


def _problem(error: Mapping[str, Any], rows: Sequence[int]) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "not valid")).removeprefix("Value error, ")
    if kind == "missing" or (kind == "string_too_short" and "1 character" in message):
        message = "fill this in"
    elif kind.startswith("date_") or kind.startswith("datetime_"):
        message = "enter a date like 2026-12-31"
    elif kind == "greater_than":
        message = "must be more than 0"
    elif kind == "decimal_parsing" or kind == "int_parsing":
        message = "enter a number"
    elif kind == "string_pattern_mismatch":
        message = "use letters, digits, '.', '_' or '-' only"
    if loc == ["lines"] and kind == "too_short":
        return "Lines: fill in at least one line (part and quantity)"
    if loc and loc[0] == "lines" and len(loc) > 1 and loc[1].isdigit():
        index = int(loc[1])
        where = f"Line {rows[index] if index < len(rows) else index + 1}"
        if len(loc) > 2:
            where += ", " + FORM_LABELS.get(loc[2], loc[2]).lower()
        return f"{where}: {message[:1].lower()}{message[1:]}"
    label = FORM_LABELS.get(loc[0], loc[0].replace("_", " ")) if loc else "Form"
    return f"{label}: {message[:1].lower()}{message[1:]}"


# ---------------------------------------------------------------- one process: what all pages show


@dataclass
class ProcessView:
    """What every supply page shows about its process: status, open tasks, timeline."""

    id: str
    process: Process | None
    open_tasks: list[TaskOut]
    timeline: list[Event]


async def process_view(session: AsyncSession, process_id: str) -> ProcessView:
    tasks = await session.scalars(
        select(Task)
        .where(
            (Task.process_id == process_id)
            | Task.process_id.like(escape_like(process_id) + ".%", escape="\\"),
            Task.status == "open",
        )
        .order_by(Task.id)
    )
    rows = await process_timeline(session, process_id)
    return ProcessView(
        id=process_id,
        process=await session.get(Process, process_id),
        open_tasks=[task_out(t) for t in tasks],
        timeline=supply_timeline([audit_out(r) for r in rows]),
    )


HIDDEN_FACTS = {"event_id", "idempotency_key", "run_id"}


def supply_timeline(rows: list[AuditOut]) -> list[Event]:
    """The timeline as the change page reads it, plus what a supply row says in its record when
    it gives no reason (the step a process moved to, the lot a receipt made)."""
    events = timeline(rows)
    for row, event in zip(rows, events, strict=True):
        after: Mapping[str, Any] = row.after or {}
        if row.action == "process.step" and after.get("step"):
            event.what = "step: " + str(after["step"]).replace("_", " ").replace("-", " ")
        elif not event.detail and after and not row.action.startswith("task."):
            event.detail = _facts(after)
    return events


def _facts(values: Mapping[str, Any]) -> str:
    shown = [
        f"{name.replace('_', ' ')}: {_fact(value)}"
        for name, value in values.items()
        if name not in HIDDEN_FACTS and value not in (None, "", [], {})
    ]
    return "; ".join(shown[:8])


def _fact(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return show(value)


async def _starting(
    request: Request, session: AsyncSession, client: Any, user: Principal, kind: Kind, pid: str
) -> HTMLResponse:
    """The process's business record is not there (yet): started a moment ago, or unknown (404)."""
    detail = await process_service.process_detail(
        session=session, client=client, principal=user, process_id=pid
    )
    view = await process_view(session, pid)
    return render(request, "supply_starting.html", k=kind, detail=detail, view=view)


# ---------------------------------------------------------------- purchase


@dataclass
class ReceiptRow:
    receipt: Receipt
    lot: Lot
    line_no: int


@dataclass
class PurchaseView:
    po: PurchaseOrder
    supplier: Supplier
    lines: list[PurchaseOrderLine]
    receipts: list[ReceiptRow]
    inspections: list[tuple[Inspection, str]]
    customer_order: CustomerOrder | None

    @property
    def all_received(self) -> bool:
        return all(line.received_quantity >= line.quantity for line in self.lines)


async def purchase_view(session: AsyncSession, po: PurchaseOrder) -> PurchaseView:
    supplier = await session.get(Supplier, po.supplier_id)
    assert supplier is not None  # a foreign key
    lines = await session.scalars(
        select(PurchaseOrderLine)
        .where(PurchaseOrderLine.purchase_order_id == po.id)
        .order_by(PurchaseOrderLine.line_no, PurchaseOrderLine.id)
    )
    received = await session.execute(
        select(Receipt, Lot, PurchaseOrderLine.line_no)
        .join(Lot, Lot.id == Receipt.lot_id)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == Receipt.purchase_order_line_id)
        .where(PurchaseOrderLine.purchase_order_id == po.id)
        .order_by(Receipt.id)
    )
    receipts = [ReceiptRow(r, lot, n) for r, lot, n in received.all()]
    return PurchaseView(
        po=po,
        supplier=supplier,
        lines=list(lines),
        receipts=receipts,
        inspections=await _inspections(session, [r.lot.id for r in receipts]),
        customer_order=(
            await session.get(CustomerOrder, po.customer_order_id) if po.customer_order_id else None
        ),
    )


async def _inspections(session: AsyncSession, lot_ids: list[int]) -> list[tuple[Inspection, str]]:
    if not lot_ids:
        return []
    rows = await session.execute(
        select(Inspection, Lot.lot_number)
        .join(Lot, Lot.id == Inspection.lot_id)
        .where(Inspection.lot_id.in_(lot_ids))
        .order_by(Inspection.id)
    )
    return [(i, n) for i, n in rows.all()]


async def _purchase_page(
    request: Request,
    session: AsyncSession,
    client: Any,
    user: Principal,
    process_id: str,
    *,
    status_code: int = 200,
    answer: EventResult | None = None,
    errors: Mapping[str, str] | None = None,
    kept: Mapping[str, Mapping[str, str]] | None = None,
) -> HTMLResponse:
    po = await session.scalar(select(PurchaseOrder).where(PurchaseOrder.process_id == process_id))
    if po is None:
        return await _starting(request, session, client, user, KINDS["purchase"], process_id)
    return render(
        request,
        "supply_purchase.html",
        status_code,
        k=KINDS["purchase"],
        p=await purchase_view(session, po),
        view=await process_view(session, process_id),
        **_event_forms(user, "purchase", answer, errors, kept),
    )


def _event_forms(
    user: Principal,
    kind: str,
    answer: EventResult | None,
    errors: Mapping[str, str] | None,
    kept: Mapping[str, Mapping[str, str]] | None,
) -> dict[str, Any]:
    """The event forms of a page: who may send which, the last answer, errors and kept values.
    Every form shown carries a fresh event id, so the same form posted twice records once."""
    forms = {}
    for event in EVENTS.get(kind, {}):
        values = dict((kept or {}).get(event) or {})
        values.setdefault("event_id", secrets.token_urlsafe(18))
        forms[event] = values
    return {
        "answer": answer,
        "errors": dict(errors or {}),
        "forms": forms,
        "may_send": {event: may_send(user, event) for event in forms},
        "senders": {event: event_senders(event) for event in forms},
        "event_labels": EVENT_LABELS,
    }


@router.get("/ui/purchases/{process_id}", response_class=HTMLResponse)
async def purchase_page(
    process_id: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    return await _purchase_page(request, session, client, user, process_id[:200])


# which form fields each event sends (empty ones are left out)
EVENT_FIELDS = {
    "supplier-confirmed": ("promised_on", "supplier_reference"),
    "asn": ("asn_reference", "expected_on", "carrier"),
    "goods-received": (
        "part_number",
        "quantity",
        "gs1",
        "supplier_lot",
        "manufactured_on",
        "expires_on",
    ),
    "delivered": ("delivered_on", "received_by", "note"),
}


@router.post("/ui/{path}/{process_id}/events/{event}")
async def send_event(
    path: str,
    process_id: str,
    event: str,
    request: Request,
    user: User,
    sessions: Sessions,
    session: DbSession,
    client: Temporal,
) -> Response:
    page = {"purchases": _purchase_page, "shipments": _shipment_page}.get(path)
    if page is None:
        raise not_found(f"Page /ui/{path}/…/events")
    form = await request.form()
    _check_csrf(user, form.get("csrf_token"))
    kept = {str(k): str(v).strip()[:500] for k, v in form.items() if k != "csrf_token"}
    data = {f: kept[f] for f in EVENT_FIELDS.get(event, ()) if kept.get(f)}
    try:
        answer = await supply_service.send_event(
            sessions=sessions,
            client=client,
            principal=user,
            process_id=process_id[:200],
            event=event,
            data=data,
            event_id=kept.get("event_id") or None,
            source="ui",
        )
    except ApiError as err:
        return await page(
            request,
            session,
            client,
            user,
            process_id[:200],
            status_code=err.status_code,
            errors={event: err.detail},
            kept={event: kept},
        )
    return await page(request, session, client, user, process_id[:200], answer=answer)


# ---------------------------------------------------------------- work order


@dataclass
class Consumed:
    lot_number: str
    part_number: str
    quantity: Decimal
    uom: str
    into: str  # the finished lot


@dataclass
class FinishedLot:
    lot: Lot
    serials: list[SerialNumber]
    serial_count: int


@dataclass
class WorkOrderView:
    wo: WorkOrder
    item: Item
    consumed: list[Consumed]
    finished: list[FinishedLot]
    inspections: list[tuple[Inspection, str]]
    customer_order: CustomerOrder | None


async def work_order_view(session: AsyncSession, wo: WorkOrder) -> WorkOrderView:
    item = await session.get(Item, wo.item_id)
    assert item is not None
    child = Lot.__table__.alias("child")
    edges = await session.execute(
        select(Lot.lot_number, Lot.part_number, GenealogyEdge.quantity, Lot.uom, child.c.lot_number)
        .join(GenealogyEdge, GenealogyEdge.parent_lot_id == Lot.id)
        .join(child, child.c.id == GenealogyEdge.child_lot_id)
        .where(GenealogyEdge.work_order_id == wo.id)
        .order_by(Lot.part_number, Lot.lot_number)
    )
    lots = (
        await session.scalars(select(Lot).where(Lot.work_order_id == wo.id).order_by(Lot.id))
    ).all()
    return WorkOrderView(
        wo=wo,
        item=item,
        consumed=[Consumed(*row) for row in edges.all()],
        finished=[await _finished(session, lot) for lot in lots],
        inspections=await _inspections(session, [lot.id for lot in lots]),
        customer_order=(
            await session.get(CustomerOrder, wo.customer_order_id) if wo.customer_order_id else None
        ),
    )


async def _finished(session: AsyncSession, lot: Lot) -> FinishedLot:
    serials, count = await _serials(
        session, select(SerialNumber).where(SerialNumber.lot_id == lot.id)
    )
    return FinishedLot(lot=lot, serials=serials, serial_count=count)


async def _serials(session: AsyncSession, query: Any) -> tuple[list[SerialNumber], int]:
    """The first serials (by number) and how many there are."""
    count = await session.scalar(select(func.count()).select_from(query.subquery()))
    shown = await session.scalars(query.order_by(SerialNumber.serial).limit(SERIALS_SHOWN))
    return list(shown), int(count or 0)


@router.get("/ui/work-orders/{process_id}", response_class=HTMLResponse)
async def work_order_page(
    process_id: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    process_id = process_id[:200]
    wo = await session.scalar(select(WorkOrder).where(WorkOrder.process_id == process_id))
    if wo is None:
        return await _starting(request, session, client, user, KINDS["work-order"], process_id)
    return render(
        request,
        "supply_work_order.html",
        k=KINDS["work-order"],
        w=await work_order_view(session, wo),
        view=await process_view(session, process_id),
    )


# ---------------------------------------------------------------- shipment


@dataclass
class ShippedLine:
    line: ShipmentLine
    lot: Lot
    consignee: Customer


@dataclass
class ShipmentView:
    shipment: Shipment
    customer: Customer
    lines: list[ShippedLine]
    serials: list[SerialNumber]
    serial_count: int
    customer_order: CustomerOrder | None


async def shipment_view(session: AsyncSession, shipment: Shipment) -> ShipmentView:
    customer = await session.get(Customer, shipment.customer_id)
    assert customer is not None
    rows = await session.execute(
        select(ShipmentLine, Lot, Customer)
        .join(Lot, Lot.id == ShipmentLine.lot_id)
        .join(Customer, Customer.id == ShipmentLine.consignee_id)
        .where(ShipmentLine.shipment_id == shipment.id)
        .order_by(ShipmentLine.id)
    )
    serials, count = await _serials(
        session, select(SerialNumber).where(SerialNumber.shipment_id == shipment.id)
    )
    order_id = shipment.customer_order_id
    return ShipmentView(
        shipment=shipment,
        customer=customer,
        lines=[ShippedLine(line, lot, consignee) for line, lot, consignee in rows.all()],
        serials=serials,
        serial_count=count,
        customer_order=await session.get(CustomerOrder, order_id) if order_id else None,
    )


async def _shipment_page(
    request: Request,
    session: AsyncSession,
    client: Any,
    user: Principal,
    process_id: str,
    *,
    status_code: int = 200,
    answer: EventResult | None = None,
    errors: Mapping[str, str] | None = None,
    kept: Mapping[str, Mapping[str, str]] | None = None,
) -> HTMLResponse:
    shipment = await session.scalar(select(Shipment).where(Shipment.process_id == process_id))
    if shipment is None:
        return await _starting(request, session, client, user, KINDS["shipment"], process_id)
    return render(
        request,
        "supply_shipment.html",
        status_code,
        k=KINDS["shipment"],
        s=await shipment_view(session, shipment),
        view=await process_view(session, process_id),
        **_event_forms(user, "shipment", answer, errors, kept),
    )


@router.get("/ui/shipments/{process_id}", response_class=HTMLResponse)
async def shipment_page(
    process_id: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    return await _shipment_page(request, session, client, user, process_id[:200])


# ---------------------------------------------------------------- customer order


@router.get("/ui/orders/{process_id}", response_class=HTMLResponse)
async def order_page(
    process_id: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    process_id = process_id[:200]
    order = await session.scalar(
        select(CustomerOrder).where(CustomerOrder.process_id == process_id)
    )
    if order is None:
        return await _starting(
            request, session, client, user, KINDS["procure-to-deliver"], process_id
        )
    children = await session.scalars(
        select(Process)
        .where(
            Process.id.like(escape_like(process_id) + ".%", escape="\\"),
            Process.kind.in_(list(KINDS)),
        )
        .order_by(Process.started_at, Process.id)
    )
    return render(
        request,
        "supply_order.html",
        k=KINDS["procure-to-deliver"],
        order=order,
        customer=await session.get(Customer, order.customer_id),
        children=list(children),
        view=await process_view(session, process_id),
    )


# ---------------------------------------------------------------- lots


@router.get("/ui/lots", response_class=HTMLResponse)
async def lots(
    request: Request,
    user: User,
    session: DbSession,
    q: str = "",
    part: str = "",
    status: str = "",
) -> Response:
    q = q.strip()[:200]
    error = ""
    if q:
        try:
            lot, serial = await trace.resolve_lot_reference(session, q)
        except (trace.LotNotFound, trace.AmbiguousLotReference, Gs1Error) as err:
            error = str(err)
        else:
            target = lot_url(lot.lot_number) + (f"?serial={quote(serial)}" if serial else "")
            return RedirectResponse(target, status_code=303)
    query = select(Lot)
    if part.strip():
        query = query.where(Lot.part_number == part.strip().upper()[:40])
    if status:
        query = query.where(Lot.status == status[:20])
    rows = await session.scalars(query.order_by(Lot.created_at.desc(), Lot.id.desc()).limit(100))
    return render(
        request,
        "supply_lots.html",
        lots=list(rows),
        q=q,
        part=part,
        status=status,
        error=error,
        statuses=LOT_STATUS_ORDER,
    )


LOT_STATUS_ORDER = (
    "QUARANTINE",
    "RELEASED",
    "ON_HOLD",
    "REJECTED",
    "CONSUMED",
    "SHIPPED",
    "RECALLED",
    "EXPIRED",
)


@dataclass
class LotView:
    lot: Lot
    item: Item
    supplier: Supplier | None
    receipt: Receipt | None
    purchase_order: PurchaseOrder | None
    work_order: WorkOrder | None
    history: list[LotStatusChange]
    movements: list[InventoryMovement]
    inspections: list[tuple[Inspection, str]]
    forward: TraceResult
    backward: TraceResult
    serials: list[SerialNumber]
    serial_count: int
    processes: dict[str, str] = field(default_factory=dict)  # process id → kind
    shipment_pages: dict[str, str] = field(default_factory=dict)  # shipment number → process id


async def lot_view(session: AsyncSession, lot: Lot, *, serial: str = "") -> LotView:
    item = await session.get(Item, lot.item_id)
    assert item is not None
    movements = list(
        await session.scalars(
            select(InventoryMovement)
            .where(InventoryMovement.lot_id == lot.id)
            .order_by(InventoryMovement.id)
        )
    )
    forward = await trace.trace_lot(session, lot.lot_number, "forward")
    serials, count = await _serials(
        session, select(SerialNumber).where(SerialNumber.lot_id == lot.id)
    )
    if serial and serial not in {s.serial for s in serials}:
        found = await session.scalar(
            select(SerialNumber).where(SerialNumber.lot_id == lot.id, SerialNumber.serial == serial)
        )
        serials += [found] if found else []
    return LotView(
        lot=lot,
        item=item,
        supplier=await session.get(Supplier, lot.supplier_id) if lot.supplier_id else None,
        receipt=await session.scalar(select(Receipt).where(Receipt.lot_id == lot.id)),
        purchase_order=await _purchase_order_of(session, lot),
        work_order=await session.get(WorkOrder, lot.work_order_id) if lot.work_order_id else None,
        history=list(
            await session.scalars(
                select(LotStatusChange)
                .where(LotStatusChange.lot_id == lot.id)
                .order_by(LotStatusChange.id)
            )
        ),
        movements=movements,
        inspections=await _inspections(session, [lot.id]),
        forward=forward,
        backward=await trace.trace_lot(session, lot.lot_number, "backward"),
        serials=serials,
        serial_count=count,
        processes=await _kinds_of(session, [m.process_id for m in movements if m.process_id]),
        shipment_pages=await _shipment_pages(session, [s.shipment for s in forward.shipments]),
    )


async def _purchase_order_of(session: AsyncSession, lot: Lot) -> PurchaseOrder | None:
    if not lot.purchase_order_line_id:
        return None
    return await session.scalar(
        select(PurchaseOrder)
        .join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
        .where(PurchaseOrderLine.id == lot.purchase_order_line_id)
    )


async def _kinds_of(session: AsyncSession, process_ids: list[str]) -> dict[str, str]:
    if not process_ids:
        return {}
    rows = await session.execute(
        select(Process.id, Process.kind).where(Process.id.in_(set(process_ids)))
    )
    return {pid: kind for pid, kind in rows.all()}


async def _shipment_pages(session: AsyncSession, numbers: list[str]) -> dict[str, str]:
    if not numbers:
        return {}
    rows = await session.execute(
        select(Shipment.number, Shipment.process_id).where(
            Shipment.number.in_(set(numbers)), Shipment.process_id.is_not(None)
        )
    )
    return {number: str(pid) for number, pid in rows.all()}


@router.get("/ui/lots/{lot_number}", response_class=HTMLResponse)
async def lot_page(
    lot_number: str, request: Request, user: User, session: DbSession, serial: str = ""
) -> Response:
    lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number[:60]))
    if lot is None:
        raise not_found(f"Lot {lot_number[:60]}")
    view = await lot_view(session, lot, serial=serial[:40])
    return render(request, "lot.html", v=view, serial=serial[:40])


# ---------------------------------------------------------------- suppliers


@dataclass
class SupplierRow:
    supplier: Supplier
    scorecard: SupplierScorecard | None
    certificates: list[SupplierCertificate]

    @property
    def certificate_expired(self) -> bool:
        today = datetime.now(UTC).date()
        return bool(self.certificates) and all(c.expires_on < today for c in self.certificates)


async def _supplier_rows(session: AsyncSession, code: str | None = None) -> list[SupplierRow]:
    query = (
        select(Supplier, SupplierScorecard)
        .outerjoin(SupplierScorecard, SupplierScorecard.supplier_id == Supplier.id)
        .order_by(Supplier.code)
    )
    if code is not None:
        query = query.where(Supplier.code == code)
    found = (await session.execute(query)).all()
    certificates = await session.scalars(
        select(SupplierCertificate)
        .where(SupplierCertificate.supplier_id.in_([s.id for s, _ in found]))
        .order_by(SupplierCertificate.expires_on)
    )
    by_supplier: dict[int, list[SupplierCertificate]] = {}
    for c in certificates:
        by_supplier.setdefault(c.supplier_id, []).append(c)
    return [SupplierRow(s, card, by_supplier.get(s.id, [])) for s, card in found]


@router.get("/ui/suppliers", response_class=HTMLResponse)
async def suppliers(request: Request, user: User, session: DbSession) -> Response:
    return render(
        request,
        "supply_suppliers.html",
        rows=await _supplier_rows(session),
        today=datetime.now(UTC).date(),
    )


@router.get("/ui/suppliers/{code}", response_class=HTMLResponse)
async def supplier_page(code: str, request: Request, user: User, session: DbSession) -> Response:
    rows = await _supplier_rows(session, code[:20])
    if not rows:
        raise not_found(f"Supplier {code[:20]}")
    row = rows[0]
    asl = await session.scalars(
        select(AslEntry)
        .where(AslEntry.supplier_id == row.supplier.id)
        .order_by(AslEntry.part_number)
    )
    receipts = await session.execute(
        select(Receipt, Lot, PurchaseOrder)
        .join(Lot, Lot.id == Receipt.lot_id)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == Receipt.purchase_order_line_id)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(PurchaseOrder.supplier_id == row.supplier.id)
        .order_by(Receipt.received_at.desc(), Receipt.id.desc())
        .limit(20)
    )
    supplied = await session.scalars(
        select(Lot)
        .where(Lot.supplier_id == row.supplier.id)
        .order_by(Lot.created_at.desc(), Lot.id.desc())
        .limit(20)
    )
    return render(
        request,
        "supplier.html",
        row=row,
        asl=list(asl),
        receipts=receipts.all(),
        lots=list(supplied),
        today=datetime.now(UTC).date(),
    )
