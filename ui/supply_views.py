"""Procure-to-deliver pages: the supply lists and start forms, and the purchase, work-order,
shipment and customer-order pages (with the external events a person keys in by hand, and the
open tasks and timeline that refresh themselves while the process runs).

Thin like the rest of the UI: starting a process and sending an event go through
api/supply_service.py, the same services the REST API uses; the pages only read the ERP and arrange
it for people. Lots and suppliers are in ui/lot_views.py; the page helpers in ui/pages.py."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api import process_service, supply_service
from api.deps import AppSettings, DbSession, Sessions, Temporal
from api.errors import ApiError, Message, not_found
from api.security import Principal
from api.supply_service import SupplyRequest
from api.task_service import audit_out, task_out
from erp.master_data import (
    BomLine,
    Item,
    Lot,
    PurchaseOrder,
    PurchaseOrderLine,
    Supplier,
    WorkOrder,
)
from erp.models import Process, Task
from erp.queries import escape_like, process_timeline
from erp.supply import (
    Customer,
    CustomerOrder,
    GenealogyEdge,
    Inspection,
    Receipt,
    SerialNumber,
    Shipment,
    ShipmentLine,
)
from schemas.api import AuditOut, TaskOut
from schemas.supply import (
    EVENT_GROUPS,
    EVENTS,
    EventResult,
    ProcureToDeliverRequest,
    PurchaseRequest,
    ShipmentRequest,
    WorkOrderRequest,
)
from ui import form_problems, pages, reason_text
from ui.change_views import Event, show, timeline
from ui.i18n import N_
from ui.lot_views import first_serials, inspections_of
from ui.pages import PROCESS_PAGES, User, check_csrf, form_values, process_url

router = APIRouter(include_in_schema=False)

LINE_ROWS = 5  # line rows on the purchase and shipment forms
REFRESH_SECONDS = 5  # how often a running process's page asks for its open tasks and timeline


# ---------------------------------------------------------------- what the pages show


@dataclass(frozen=True)
class Kind:
    """A supply process as the pages name it."""

    kind: str
    label: str  # the list heading
    one: str  # one of them, in a sentence
    start: str  # the start button

    @property
    def path(self) -> str:
        """Where its pages are: <path>/new, <path>/<process id>."""
        return PROCESS_PAGES[self.kind].path


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("purchase", N_("Purchases"), N_("purchase"), N_("New purchase")),
        Kind("work-order", N_("Work orders"), N_("work order"), N_("New work order")),
        Kind("shipment", N_("Shipments"), N_("shipment"), N_("New shipment")),
        Kind(
            "procure-to-deliver",
            N_("Customer orders"),
            N_("customer order"),
            N_("New customer order"),
        ),
    )
}
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
# the same inside a line's problem, lower-case: 'Line 2, unit price: enter a number'
LINE_FIELD_LABELS = {
    "part_number": "part",
    "quantity": "quantity",
    "unit_price": "unit price",
    "due_on": "due date",
}


def may_start(user: Principal, kind: str) -> bool:
    """Whether the start button is offered (the service decides again when it is pressed)."""
    spec = supply_service.KINDS.get(kind)
    return spec is not None and bool(user.groups & set(spec.groups))


def may_send(user: Principal, event: str) -> bool:
    """People key in an event when they belong to a group that may (the service checks again)."""
    return bool(user.groups & set(EVENT_GROUPS.get(event, ())))


def event_senders(event: str) -> str:
    return " or ".join(EVENT_GROUPS.get(event, ())) or "nobody"


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A supply page: the page helpers, plus the supply kinds and who may start which."""
    context.setdefault("kinds", KINDS)
    context.setdefault("may_start", may_start)
    context.setdefault("refresh_seconds", REFRESH_SECONDS)
    return pages.render(request, name, status_code, **context)


# ---------------------------------------------------------------- the supply lists


@dataclass
class ProcessList:
    kind: Kind
    rows: list[Any]
    count: int


@router.get("/supply", response_class=HTMLResponse)
async def supply(
    request: Request, user: User, session: DbSession, kind: str = "", status: str = ""
) -> Response:
    kind = kind if kind in KINDS else ""
    status = status if status in PROCESS_STATUSES else ""
    lists = [
        await _process_list(session, user, k, status=status, limit=200 if kind else 10)
        for k in ([KINDS[kind]] if kind else KINDS.values())
    ]
    return render(
        request,
        "supply_list.html",
        lists=lists,
        kind=kind,
        status=status,
        statuses=PROCESS_STATUSES,
    )


async def _process_list(
    session: AsyncSession, user: Principal, kind: Kind, *, status: str, limit: int
) -> ProcessList:
    rows, count = await process_service.list_processes(
        session=session,
        principal=user,
        kind=kind.kind,
        status=status or None,
        initiator=None,
        limit=limit,
        offset=0,
    )
    return ProcessList(kind=kind, rows=rows, count=count)


# ---------------------------------------------------------------- start forms


async def _choices(session: AsyncSession) -> dict[str, Any]:
    """What the start forms offer: suppliers, customers, parts (effective revisions) and the parts
    that can be made (an effective revision with a bill of materials)."""
    effective = select(Item).where(Item.status == "effective")
    parts = (await session.scalars(effective.order_by(Item.part_number))).all()
    made = set(
        await session.scalars(
            select(Item.part_number)
            .join(BomLine, BomLine.item_id == Item.id)
            .where(Item.status == "effective")
        )
    )
    return {
        "suppliers": (await session.scalars(select(Supplier).order_by(Supplier.code))).all(),
        "customers": (await session.scalars(select(Customer).order_by(Customer.code))).all(),
        "parts": parts,
        "made": [p for p in parts if p.part_number in made],
    }


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
        form=form_values(form),
        error=error,
        choices=await _choices(session),
        line_rows=range(1, LINE_ROWS + 1),
        today=datetime.now(UTC).date().isoformat(),
    )


async def _new_process(
    request: Request, user: Principal, session: AsyncSession, kind: Kind
) -> HTMLResponse:
    user.require("processes:start")
    if not may_start(user, kind.kind):
        groups = ", ".join(supply_service.KINDS[kind.kind].groups)
        return render(
            request,
            "supply_new.html",
            403,
            k=kind,
            refused=f"starting a {kind.one} needs one of the groups {groups}",
        )
    return await _start_form(request, session, kind)


# Explicit paths, declared before <path>/{process_id}: a catch-all "/{path}/new" would also
# answer /processes/new and /changes/new.
@router.get("/purchases/new", response_class=HTMLResponse)
async def new_purchase(request: Request, user: User, session: DbSession) -> Response:
    return await _new_process(request, user, session, KINDS["purchase"])


@router.get("/work-orders/new", response_class=HTMLResponse)
async def new_work_order(request: Request, user: User, session: DbSession) -> Response:
    return await _new_process(request, user, session, KINDS["work-order"])


@router.get("/shipments/new", response_class=HTMLResponse)
async def new_shipment(request: Request, user: User, session: DbSession) -> Response:
    return await _new_process(request, user, session, KINDS["shipment"])


@router.get("/orders/new", response_class=HTMLResponse)
async def new_order(request: Request, user: User, session: DbSession) -> Response:
    return await _new_process(request, user, session, KINDS["procure-to-deliver"])


@router.post("/purchases/new")
async def start_purchase(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    return await _start_process(request, user, session, client, settings, KINDS["purchase"])


@router.post("/work-orders/new")
async def start_work_order(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    return await _start_process(request, user, session, client, settings, KINDS["work-order"])


@router.post("/shipments/new")
async def start_shipment(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    return await _start_process(request, user, session, client, settings, KINDS["shipment"])


@router.post("/orders/new")
async def start_order(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    kind = KINDS["procure-to-deliver"]
    return await _start_process(request, user, session, client, settings, kind)


async def _start_process(
    request: Request,
    user: Principal,
    session: AsyncSession,
    client: Any,
    settings: Any,
    kind: Kind,
) -> Response:
    form = await request.form()
    check_csrf(user, form.get("csrf_token"))
    kept = {str(k): str(v)[:2000] for k, v in form.items() if k != "csrf_token"}
    try:
        body = read_start_form(kind, kept)
        process_id, _ = await supply_service.start_supply_process(
            session=session,
            client=client,
            principal=user,
            kind=kind.kind,
            body=body,
            idempotency_key=kept.get("form_key") or None,
            task_queue=settings.task_queue,
        )
    except ValidationError as err:
        problem = form_problem(err, rows=_line_rows(kept))
        return await _start_form(request, session, kind, status_code=422, form=kept, error=problem)
    except ApiError as err:
        await session.rollback()
        return await _start_form(
            request, session, kind, status_code=err.status_code, form=kept, error=err.detail
        )
    return RedirectResponse(process_url(kind.kind, process_id), status_code=303)


def _line_rows(form: Mapping[str, str]) -> list[int]:
    """The form rows that hold a line, in order (a row left empty is skipped)."""
    return [
        n
        for n in range(1, LINE_ROWS + 1)
        if any(form.get(f"line_{n}_{f}", "").strip() for f in ("part", "quantity", "unit_price"))
    ]


def read_start_form(kind: Kind, form: Mapping[str, str]) -> SupplyRequest:
    """The start form as the request model of its kind (ValidationError when it is not one)."""
    text = {k: v.strip() for k, v in form.items()}
    readers: dict[str, Callable[[Mapping[str, str]], SupplyRequest]] = {
        "purchase": _purchase_request,
        "shipment": _shipment_request,
        "work-order": _work_order_request,
        "procure-to-deliver": _order_request,
    }
    return readers[kind.kind](text)


def _lines(text: Mapping[str, str], *, priced: bool) -> list[dict[str, str]]:
    """The filled-in line rows, as the request's lines."""
    lines = []
    for n in _line_rows(text):
        line = {
            "part_number": text.get(f"line_{n}_part", "").upper(),
            "quantity": text.get(f"line_{n}_quantity", ""),
        }
        if priced:
            line["unit_price"] = text.get(f"line_{n}_unit_price", "") or "0"
        lines.append(line)
    return lines


def _purchase_request(text: Mapping[str, str]) -> PurchaseRequest:
    return PurchaseRequest.model_validate(
        {
            "supplier_code": text.get("supplier_code", ""),
            "lines": _lines(text, priced=True),
            "due_on": text.get("due_on", ""),
            "buyer_note": text.get("buyer_note", ""),
        }
    )


def _shipment_request(text: Mapping[str, str]) -> ShipmentRequest:
    return ShipmentRequest.model_validate(
        {
            "customer_code": text.get("customer_code", ""),
            "lines": _lines(text, priced=False),
            "expected_transit_days": text.get("expected_transit_days") or "5",
        }
    )


def _made(text: Mapping[str, str]) -> dict[str, str]:
    """What a work order and a customer order both ask: the part, how many, by when."""
    return {
        "part_number": text.get("part_number", "").upper(),
        "quantity": text.get("quantity", ""),
        "due_on": text.get("due_on", ""),
    }


def _work_order_request(text: Mapping[str, str]) -> WorkOrderRequest:
    return WorkOrderRequest.model_validate(_made(text))


def _order_request(text: Mapping[str, str]) -> ProcureToDeliverRequest:
    return ProcureToDeliverRequest.model_validate(
        _made(text)
        | {
            "customer_code": text.get("customer_code", ""),
            "customer_reference": text.get("customer_reference", ""),
        }
    )


def form_problem(
    err: ValidationError,
    *,
    rows: Sequence[int] = (),
    labels: Mapping[str, str] | None = None,
) -> str:
    """Validation errors in the form's own words: 'Line 2, quantity: must be more than 0'; a
    `Message` a page shows in the reader's language (ui/form_problems.py). `labels`: a form's
    own names of its fields, over the supply forms' ones."""
    names = {**FORM_LABELS, **(labels or {})}
    return form_problems.joined([_problem(e, rows, names) for e in err.errors()])


def _problem(error: Mapping[str, Any], rows: Sequence[int], names: Mapping[str, str]) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    kind = str(error.get("type", ""))
    message = form_problems.said(error)
    if loc == ["lines"] and kind == "too_short":
        return N_("Lines: fill in at least one line (part and quantity)")
    if loc and loc[0] == "lines" and len(loc) > 1 and loc[1].isdigit():
        index = int(loc[1])
        row = rows[index] if index < len(rows) else index + 1
        where = Message("Line %(row)s", row=row)
        if len(loc) > 2:
            field = LINE_FIELD_LABELS.get(loc[2]) or names.get(loc[2], loc[2]).lower()
            where = Message("Line %(row)s, %(field)s", row=row, field=field)
        return form_problems.labelled(where, message)
    label = names.get(loc[0], loc[0].replace("_", " ")) if loc else N_("Form")
    return form_problems.labelled(label, message)


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
DECIMAL_TEXT = re.compile(r"^-?\d+\.\d+$")


def supply_timeline(rows: list[AuditOut]) -> list[Event]:
    """The timeline as the change page reads it, plus what a supply row says in its record when
    it gives no reason (the step a process moved to, the lot a receipt made)."""
    events = timeline(rows)
    for row, event in zip(rows, events, strict=True):
        after: Mapping[str, Any] = row.after or {}
        if row.action == "process.step" and after.get("step"):
            step = str(after["step"]).replace("_", " ").replace("-", " ")
            event.what = Message("step: %(step)s", step=step)
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
    if isinstance(value, Mapping):  # e.g. a PO line: "part number MT-0730, quantity 5"
        return ", ".join(
            f"{name.replace('_', ' ')} {_fact(item)}"
            for name, item in value.items()
            if name not in HIDDEN_FACTS and item not in (None, "", [], {})
        )
    if isinstance(value, list | tuple):
        return "; ".join(_fact(item) for item in value) or "—"
    if isinstance(value, str) and DECIMAL_TEXT.match(value):  # "5.00000000" → "5"
        return value.rstrip("0").rstrip(".")
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


# The parts of a page that change while the process runs (its step, open tasks and timeline),
# as the page's script asks for them every few seconds: the same macros the page shows them with.
@router.get("/purchases/{process_id}/progress", response_class=HTMLResponse)
@router.get("/work-orders/{process_id}/progress", response_class=HTMLResponse)
@router.get("/shipments/{process_id}/progress", response_class=HTMLResponse)
@router.get("/orders/{process_id}/progress", response_class=HTMLResponse)
async def progress(process_id: str, request: Request, user: User, session: DbSession) -> Response:
    view = await process_view(session, process_id[:200])
    if view.process is None:
        raise not_found(Message("Process %(id)s", id=process_id[:200]))
    response = render(request, "supply_progress.html", view=view)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- purchase


@dataclass
class EventReply:
    """What a page says about the event just keyed in: its answer, or its refusal with the values
    that were typed (kept in the form)."""

    event: str = ""
    status_code: int = 200
    answer: EventResult | None = None
    error: str = ""
    kept: Mapping[str, str] = field(default_factory=dict)


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
    lines = await session.scalars(
        select(PurchaseOrderLine)
        .where(PurchaseOrderLine.purchase_order_id == po.id)
        .order_by(PurchaseOrderLine.line_no, PurchaseOrderLine.id)
    )
    receipts = await _receipts(session, po)
    return PurchaseView(
        po=po,
        supplier=await session.get_one(Supplier, po.supplier_id),
        lines=list(lines),
        receipts=receipts,
        inspections=await inspections_of(session, [r.lot.id for r in receipts]),
        customer_order=await _customer_order(session, po.customer_order_id),
    )


async def _receipts(session: AsyncSession, po: PurchaseOrder) -> list[ReceiptRow]:
    received = await session.execute(
        select(Receipt, Lot, PurchaseOrderLine.line_no)
        .join(Lot, Lot.id == Receipt.lot_id)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == Receipt.purchase_order_line_id)
        .where(PurchaseOrderLine.purchase_order_id == po.id)
        .order_by(Receipt.id)
    )
    return [ReceiptRow(r, lot, n) for r, lot, n in received.all()]


async def _customer_order(session: AsyncSession, order_id: int | None) -> CustomerOrder | None:
    """The customer order a purchase, work order or shipment was started for, if any."""
    return await session.get(CustomerOrder, order_id) if order_id else None


async def _purchase_page(
    request: Request,
    session: AsyncSession,
    client: Any,
    user: Principal,
    process_id: str,
    reply: EventReply | None = None,
) -> HTMLResponse:
    po = await session.scalar(select(PurchaseOrder).where(PurchaseOrder.process_id == process_id))
    if po is None:
        return await _starting(request, session, client, user, KINDS["purchase"], process_id)
    reply = reply or EventReply()
    return render(
        request,
        "supply_purchase.html",
        reply.status_code,
        k=KINDS["purchase"],
        p=await purchase_view(session, po),
        view=await process_view(session, process_id),
        **_event_forms(user, "purchase", reply),
    )


def _event_forms(user: Principal, kind: str, reply: EventReply) -> dict[str, Any]:
    """The event forms of a page: who may send which, the last answer, errors and kept values.
    Every form shown carries a fresh event id, so the same form posted twice records once."""
    forms = {}
    for event in EVENTS.get(kind, {}):
        values = dict(reply.kept) if event == reply.event and reply.error else {}
        values.setdefault("event_id", secrets.token_urlsafe(18))
        forms[event] = values
    return {
        "answer": reply.answer,
        "errors": {reply.event: reply.error} if reply.error else {},
        "forms": forms,
        "may_send": {event: may_send(user, event) for event in forms},
        "senders": {event: event_senders(event) for event in forms},
        "event_labels": EVENT_LABELS,
    }


@router.get("/purchases/{process_id}", response_class=HTMLResponse)
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


@router.post("/purchases/{process_id}/events/{event}")
async def purchase_event(
    process_id: str,
    event: str,
    request: Request,
    user: User,
    sessions: Sessions,
    session: DbSession,
    client: Temporal,
) -> Response:
    reply = await _send_event(request, user, sessions, client, process_id[:200], event)
    return await _purchase_page(request, session, client, user, process_id[:200], reply)


@router.post("/shipments/{process_id}/events/{event}")
async def shipment_event(
    process_id: str,
    event: str,
    request: Request,
    user: User,
    sessions: Sessions,
    session: DbSession,
    client: Temporal,
) -> Response:
    reply = await _send_event(request, user, sessions, client, process_id[:200], event)
    return await _shipment_page(request, session, client, user, process_id[:200], reply)


async def _send_event(
    request: Request, user: Principal, sessions: Any, client: Any, process_id: str, event: str
) -> EventReply:
    """Send the event form to the process as the REST API would; the page shows the answer."""
    form = await request.form()
    check_csrf(user, form.get("csrf_token"))
    kept = {str(k): str(v).strip()[:500] for k, v in form.items() if k != "csrf_token"}
    try:
        answer = await supply_service.send_event(
            sessions=sessions,
            client=client,
            principal=user,
            process_id=process_id,
            event=event,
            data={f: kept[f] for f in EVENT_FIELDS.get(event, ()) if kept.get(f)},
            event_id=kept.get("event_id") or None,
            source="ui",
        )
    except ApiError as err:
        return EventReply(event, err.status_code, error=err.detail, kept=kept)
    return EventReply(event, answer=answer)


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
    # the finished lots' status reasons' wordings (`ui.reason_text.reasons_of_lots`), by lot
    lot_reasons: dict[str, reason_text.Wordings] = field(default_factory=dict)


async def work_order_view(session: AsyncSession, wo: WorkOrder) -> WorkOrderView:
    made = select(Lot).where(Lot.work_order_id == wo.id).order_by(Lot.id)
    lots = (await session.scalars(made)).all()
    return WorkOrderView(
        wo=wo,
        item=await session.get_one(Item, wo.item_id),
        consumed=await _consumed(session, wo),
        finished=[await _finished(session, lot) for lot in lots],
        inspections=await inspections_of(session, [lot.id for lot in lots]),
        customer_order=await _customer_order(session, wo.customer_order_id),
        lot_reasons=await reason_text.reasons_of_lots(session, [lot.lot_number for lot in lots]),
    )


async def _consumed(session: AsyncSession, wo: WorkOrder) -> list[Consumed]:
    """The component lots issued into the work order's lots (its genealogy links)."""
    child = Lot.__table__.alias("child")
    edges = await session.execute(
        select(Lot.lot_number, Lot.part_number, GenealogyEdge.quantity, Lot.uom, child.c.lot_number)
        .join(GenealogyEdge, GenealogyEdge.parent_lot_id == Lot.id)
        .join(child, child.c.id == GenealogyEdge.child_lot_id)
        .where(GenealogyEdge.work_order_id == wo.id)
        .order_by(Lot.part_number, Lot.lot_number)
    )
    return [Consumed(*row) for row in edges.all()]


async def _finished(session: AsyncSession, lot: Lot) -> FinishedLot:
    serials, count = await first_serials(
        session, select(SerialNumber).where(SerialNumber.lot_id == lot.id)
    )
    return FinishedLot(lot=lot, serials=serials, serial_count=count)


@router.get("/work-orders/{process_id}", response_class=HTMLResponse)
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
    rows = await session.execute(
        select(ShipmentLine, Lot, Customer)
        .join(Lot, Lot.id == ShipmentLine.lot_id)
        .join(Customer, Customer.id == ShipmentLine.consignee_id)
        .where(ShipmentLine.shipment_id == shipment.id)
        .order_by(ShipmentLine.id)
    )
    serials, count = await first_serials(
        session, select(SerialNumber).where(SerialNumber.shipment_id == shipment.id)
    )
    return ShipmentView(
        shipment=shipment,
        customer=await session.get_one(Customer, shipment.customer_id),
        lines=[ShippedLine(line, lot, consignee) for line, lot, consignee in rows.all()],
        serials=serials,
        serial_count=count,
        customer_order=await _customer_order(session, shipment.customer_order_id),
    )


async def _shipment_page(
    request: Request,
    session: AsyncSession,
    client: Any,
    user: Principal,
    process_id: str,
    reply: EventReply | None = None,
) -> HTMLResponse:
    shipment = await session.scalar(select(Shipment).where(Shipment.process_id == process_id))
    if shipment is None:
        return await _starting(request, session, client, user, KINDS["shipment"], process_id)
    reply = reply or EventReply()
    return render(
        request,
        "supply_shipment.html",
        reply.status_code,
        k=KINDS["shipment"],
        s=await shipment_view(session, shipment),
        view=await process_view(session, process_id),
        **_event_forms(user, "shipment", reply),
    )


@router.get("/shipments/{process_id}", response_class=HTMLResponse)
async def shipment_page(
    process_id: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    return await _shipment_page(request, session, client, user, process_id[:200])


# ---------------------------------------------------------------- customer order


@router.get("/orders/{process_id}", response_class=HTMLResponse)
async def order_page(
    process_id: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    process_id = process_id[:200]
    order = await session.scalar(
        select(CustomerOrder).where(CustomerOrder.process_id == process_id)
    )
    if order is None:
        kind = KINDS["procure-to-deliver"]
        return await _starting(request, session, client, user, kind, process_id)
    return render(
        request,
        "supply_order.html",
        k=KINDS["procure-to-deliver"],
        order=order,
        customer=await session.get(Customer, order.customer_id),
        children=await _children(session, process_id),
        view=await process_view(session, process_id),
    )


async def _children(session: AsyncSession, process_id: str) -> list[Process]:
    """The purchases, work order and shipment a customer order started (ids <order id>.…)."""
    children = await session.scalars(
        select(Process)
        .where(
            Process.id.like(escape_like(process_id) + ".%", escape="\\"),
            Process.kind.in_(list(KINDS)),
        )
        .order_by(Process.started_at, Process.id)
    )
    return list(children)
