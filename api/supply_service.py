"""Procure-to-deliver over REST: start a purchase, work order, shipment or customer order, and
pass external events (supplier confirmation, ASN, goods received, delivery) to a running one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, Message, forbidden, joined, not_found, unavailable
from api.process_service import process_id_for, start_once
from api.recall_service import RECALL_KIND, RECALL_WORKFLOW, recall_event
from api.security import Principal
from api.validation_problems import problems_of
from api.workflow_updates import refusal_message, update_when_ready
from erp.audit import AuditRecord, append_audit
from erp.gs1 import Gs1Error, parse_label
from erp.master_data import BomLine, Item, Supplier
from erp.models import AuditEntry, Process
from erp.supply import Customer
from erp.supply_rules import effective_revision
from schemas.api import SupplyProcessOut
from schemas.supply import (
    EVENT_GROUPS,
    EVENTS,
    EventResult,
    ProcessEvent,
    ProcureToDeliverRequest,
    PurchaseRequest,
    ShipmentRequest,
    WorkOrderRequest,
)
from workflows.wording import answered

SupplyRequest = PurchaseRequest | WorkOrderRequest | ShipmentRequest | ProcureToDeliverRequest


class SupplyKind(BaseModel):
    """How one kind of process is started: its id prefix, workflow type and who may start it."""

    name: str
    prefix: str
    workflow: str
    groups: tuple[str, ...]


KINDS: dict[str, SupplyKind] = {
    k.name: k
    for k in (
        SupplyKind(
            name="purchase",
            prefix="po",
            workflow="Purchase",
            groups=("buyer", "purchasing-manager", "production", "admin"),
        ),
        SupplyKind(
            name="work-order", prefix="wo", workflow="WorkOrder", groups=("production", "admin")
        ),
        SupplyKind(
            name="shipment",
            prefix="sh",
            workflow="Shipment",
            groups=("warehouse", "buyer", "admin"),
        ),
        SupplyKind(
            name="procure-to-deliver",
            prefix="co",
            workflow="ProcureToDeliver",
            groups=("buyer", "purchasing-manager", "admin"),
        ),
    )
}
KIND_OF_WORKFLOW = {k.workflow: k.name for k in KINDS.values()} | {RECALL_WORKFLOW: RECALL_KIND}
REGISTRATION_WAIT = 2.0  # seconds the start answer waits for the process to register itself


# ---------------------------------------------------------------- start


async def start_supply_process(
    *,
    session: AsyncSession,
    client: Client | None,
    principal: Principal,
    kind: str,
    body: SupplyRequest,
    idempotency_key: str | None,
    task_queue: str,
) -> tuple[str, bool]:
    """Start a process of `kind` after checking who asks and the master data it names; returns
    (process id, created). A repeat with the same key or external_id returns the first one."""
    spec = KINDS.get(kind)
    if spec is None:
        raise ApiError(
            404,
            "unknown process kind '%(kind)s'; available: %(available)s",
            kind=kind,
            available=", ".join(KINDS),
        )
    _require_starter(principal, spec)
    problems = await master_data_problems(session, body)
    if problems:
        raise ApiError(
            422,
            "the %(kind)s request does not match the ERP: %(problems)s",
            kind=kind,
            problems=joined(problems),
        )
    if client is None:
        raise unavailable("The workflow service (Temporal)")
    process_id = process_id_for(spec.prefix, principal, idempotency_key or body.external_id)
    request = body.model_copy(update={"process_id": process_id, "requester": principal.username})
    created = await start_once(
        client, spec.workflow, request, process_id=process_id, task_queue=task_queue
    )
    return process_id, created


def _require_starter(principal: Principal, spec: SupplyKind) -> None:
    principal.require("processes:start")
    if principal.is_person and not principal.groups & set(spec.groups):
        raise forbidden(
            "starting a %(what)s needs one of the groups %(groups)s; you are in %(yours)s",
            what=spec.name,
            groups=", ".join(spec.groups),
            yours=", ".join(sorted(principal.groups)) or Message("no group"),
        )


async def master_data_problems(session: AsyncSession, body: SupplyRequest) -> list[str]:
    """What in the request the ERP does not know or cannot do, in words a person can act on: each
    a `Message`, so the refusal's `%(problems)s` reads in the caller's language."""
    problems: list[str] = []
    today = await session.scalar(select(func.current_date()))
    assert isinstance(today, date)
    if isinstance(body, PurchaseRequest):
        await _supplier_known(session, body.supplier_code, problems)
        for line in body.lines:
            await _part_effective(session, line.part_number, problems)
    elif isinstance(body, WorkOrderRequest):
        item = await _part_effective(session, body.part_number, problems)
        if item is not None and not await _has_bom(session, item):
            problems.append(
                Message(
                    "%(part)s revision %(revision)s has no bill of materials: "
                    "nothing to issue to a work order",
                    part=body.part_number,
                    revision=item.revision,
                )
            )
    elif isinstance(body, ShipmentRequest):
        await _customer_known(session, body.customer_code, problems)
        for ship_line in body.lines:
            await _part_known(session, ship_line.part_number, problems)
    else:
        await _customer_known(session, body.customer_code, problems)
        await _part_effective(session, body.part_number, problems)
    due_on = getattr(body, "due_on", None)
    if due_on is not None and due_on < today:
        problems.append(
            Message(
                "due_on %(day)s is in the past (today is %(today)s)",
                day=due_on.isoformat(),
                today=today.isoformat(),
            )
        )
    return problems


async def _supplier_known(session: AsyncSession, code: str, problems: list[str]) -> None:
    if await session.scalar(select(Supplier.id).where(Supplier.code == code)) is None:
        problems.append(Message("supplier %(code)s is not known", code=code))


async def _customer_known(session: AsyncSession, code: str, problems: list[str]) -> None:
    if await session.scalar(select(Customer.id).where(Customer.code == code)) is None:
        problems.append(Message("customer %(code)s is not known", code=code))


async def _part_known(session: AsyncSession, part_number: str, problems: list[str]) -> bool:
    """Shipments may ship stock of any revision, so a known part is enough."""
    found = await session.scalar(select(exists().where(Item.part_number == part_number)))
    if not found:
        problems.append(Message("part %(part)s is not known", part=part_number))
    return bool(found)


async def _part_effective(
    session: AsyncSession, part_number: str, problems: list[str]
) -> Item | None:
    """Only the effective revision is bought or made (change control decides which it is)."""
    if not await _part_known(session, part_number, problems):
        return None
    item = await effective_revision(session, part_number)
    if item is None:
        problems.append(Message("part %(part)s has no effective revision", part=part_number))
    return item


async def _has_bom(session: AsyncSession, item: Item) -> bool:
    return bool(await session.scalar(select(exists().where(BomLine.item_id == item.id))))


async def registered_process(
    sessions: async_sessionmaker[AsyncSession], process_id: str, kind: str, created: bool
) -> SupplyProcessOut:
    """The process as registered by its first activity; waits briefly, else says "starting"."""
    deadline = asyncio.get_running_loop().time() + REGISTRATION_WAIT
    while True:
        async with sessions() as session:
            process = await session.get(Process, process_id)
        if process is not None:
            return SupplyProcessOut(
                id=process.id,
                kind=process.kind,
                number=process.business_key,
                status=process.status,
                current_step=process.current_step,
                initiator=process.initiator,
                started_at=process.started_at,
                detail="started" if created else "started before with this key; nothing new",
            )
        if asyncio.get_running_loop().time() > deadline:
            return SupplyProcessOut(
                id=process_id,
                kind=kind,
                number=None,
                status="starting",
                current_step="starting",
                initiator=None,
                started_at=None,
                detail="registered in a moment; read it at the Location given",
            )
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- events


async def send_event(
    *,
    sessions: async_sessionmaker[AsyncSession],
    client: Client | None,
    principal: Principal,
    process_id: str,
    event: str,
    data: dict[str, Any],
    event_id: str | None,
    source: str,
) -> EventResult:
    """Pass an external event to a running process after checking the sender and the data.
    A refusal, whether here or by the workflow, is audited (`event.refused`) and raised."""
    event_id = (event_id or str(data.get("event_id") or "") or str(uuid.uuid4()))[:200]
    known = False  # an unknown process is answered 404 without an audit row
    try:
        principal.require("events:send")
        if client is None:
            raise unavailable("The workflow service (Temporal)")
        kind, status = await _process_state(sessions, client, process_id)
        known = True
        target = process_id
        if kind == RECALL_KIND:  # a consignee's event goes to that consignee's notice
            target, checked = await recall_event(
                sessions=sessions,
                process_id=process_id,
                status=status,
                event=event,
                data=data,
                principal=principal,
            )
        else:
            checked = await _checked_event(kind, status, process_id, event, data, principal)
        update = ProcessEvent(
            event=event, event_id=event_id, sent_by=principal.username, data=checked
        )
        return await _deliver(client, target, update)
    except ApiError as error:
        if known and error.status_code == 409:  # an ended process: was it a repeat?
            earlier = await _taken_before(sessions, process_id, event, event_id)
            if earlier is not None:
                return earlier
        if error.status_code == 403 or (known and error.status_code != 503):
            await _audit_refusal(sessions, principal, process_id, event, event_id, error, source)
        raise


# the audit row each event's write leaves, with its event id (activities/purchase.py,
# activities/shipping.py), and the fields of it the first answer carried
_EVENT_RECORDS = {
    "supplier-confirmed": ("purchase.confirmed", ("promised_on",)),
    "asn": ("purchase.asn", ("expected_on",)),
    "goods-received": ("purchase.goods_received", ("lot_number",)),
    "delivered": ("shipment.delivered", ("status",)),
}


async def _taken_before(
    sessions: async_sessionmaker[AsyncSession], process_id: str, event: str, event_id: str
) -> EventResult | None:
    """The answer to an event taken before by a process that has ended since, or None.
    At-least-once senders repeat an event whose answer they lost; once the process has ended
    its workflow cannot answer the repeat, so the write's audit row answers it (repeated, 200)
    instead of a 409 that the sender would take for a failure."""
    if event not in _EVENT_RECORDS:
        return None
    action, fields = _EVENT_RECORDS[event]
    async with sessions() as session:
        row = await session.scalar(
            select(AuditEntry)
            .where(
                AuditEntry.workflow_id == process_id,
                AuditEntry.action == action,
                AuditEntry.outcome == "ok",
                AuditEntry.after["event_id"].astext == event_id,
            )
            .limit(1)
        )
    if row is None:
        return None
    after = row.after or {}
    return EventResult(
        process_id=process_id,
        event=event,
        event_id=event_id,
        repeated=True,
        **answered(
            "this %(event)s was taken before (%(record)s); nothing changed",
            event=event,
            record=row.entity_id,
        ),
        data={k: str(after[k]) for k in fields if after.get(k) is not None},
    )


async def _process_state(
    sessions: async_sessionmaker[AsyncSession], client: Client, process_id: str
) -> tuple[str, str]:
    """(kind, status) from the read model, or from Temporal while the process registers."""
    async with sessions() as session:
        process = await session.get(Process, process_id)
    if process is not None:
        return process.kind, process.status
    try:
        described = await client.get_workflow_handle(process_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise not_found(Message("Process %(id)s", id=process_id)) from None
        raise unavailable("The workflow service (Temporal)") from None
    running = described.status == WorkflowExecutionStatus.RUNNING
    status = "running" if running else (described.status.name.lower() if described.status else "")
    return KIND_OF_WORKFLOW.get(described.workflow_type, described.workflow_type), status


async def _checked_event(
    kind: str,
    status: str,
    process_id: str,
    event: str,
    data: dict[str, Any],
    principal: Principal,
) -> dict[str, Any]:
    """The event's data, validated by its model, after the checks on process, event and sender."""
    accepted = EVENTS.get(kind, {})
    if not accepted:
        raise ApiError(
            404,
            "event '%(event)s' of process %(id)s: a %(kind)s accepts no events;"
            " events go to a purchase, a shipment or a recall",
            event=event,
            id=process_id,
            kind=kind,
        )
    if event not in accepted:
        raise ApiError(
            404,
            "a %(kind)s accepts the events %(events)s, not '%(event)s'",
            kind=kind,
            events=", ".join(accepted),
            event=event,
        )
    groups = EVENT_GROUPS.get(event, ())
    if principal.is_person and not principal.groups & set(groups):
        raise forbidden(
            "the event '%(event)s' may be sent by a system with events:send or by a person in "
            "one of the groups %(groups)s",
            event=event,
            groups=", ".join(groups),
        )
    if status != "running":
        raise ApiError(
            409,
            "process %(id)s is %(status)s; it accepts no more events",
            id=process_id,
            status=status,
        )
    fields = {k: v for k, v in data.items() if k != "event_id"}
    if event == "goods-received" and str(fields.get("gs1") or "").strip():
        fields = _with_label(fields)
    try:
        model = accepted[event].model_validate(fields)
    except ValidationError as err:
        raise ApiError(
            422,
            "the '%(event)s' data is not valid: %(problems)s",
            event=event,
            problems=_readable(err),
        ) from None
    return model.model_dump(mode="json")


def _with_label(fields: dict[str, Any]) -> dict[str, Any]:
    """Fill supplier_lot, manufactured_on and expires_on from the GS1 label; refuse a given
    field that says otherwise."""
    scanned = str(fields["gs1"]).strip()
    try:
        label = parse_label(scanned)
    except Gs1Error as err:
        raise ApiError(422, "gs1: %(problem)s", problem=err.message) from None
    filled = dict(fields, gs1=scanned)
    for field, ai, value in (
        ("supplier_lot", "(10) lot", label.lot),
        ("manufactured_on", "(11) production date", label.manufactured_on),
        ("expires_on", "(17) expiry date", label.expires_on),
    ):
        if value is None:
            continue
        given = fields.get(field)
        if given in (None, ""):
            filled[field] = value.isoformat() if isinstance(value, date) else value
        elif str(given).strip() != (value.isoformat() if isinstance(value, date) else value):
            raise ApiError(
                422,
                "%(field)s %(given)r contradicts the label's %(ai)s %(label)r; "
                "leave %(field)s out to take it from the label, or check the label",
                field=field,
                given=given,
                ai=ai,
                label=str(value),
            )
    return filled


def _readable(err: ValidationError) -> str:
    return problems_of(err, "data")  # translatable parts (api/validation_problems.py)


async def _deliver(client: Client, process_id: str, update: ProcessEvent) -> EventResult:
    handle = client.get_workflow_handle(process_id)
    try:
        result = await update_when_ready(handle, "event", update, result_type=EventResult)
    except WorkflowUpdateFailedError as err:
        raise _refusal(err.cause) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise ApiError(
            503,
            "process %(id)s did not answer in time; the event may or may not have been "
            "taken. Send it again with the same Idempotency-Key: a repeat changes nothing.",
            headers={"Retry-After": "5"},
            id=process_id,
        ) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError(
                409, "process %(id)s has ended; it accepts no more events", id=process_id
            ) from None
        raise unavailable("The workflow service (Temporal)") from None
    assert isinstance(result, EventResult)
    return result


REFUSAL_STATUS = {"Invalid": 422, "Conflict": 409, "Forbidden": 403}


def _refusal(cause: BaseException | None) -> ApiError:
    if isinstance(cause, ApplicationError):
        return ApiError(REFUSAL_STATUS.get(cause.type or "", 409), refusal_message(cause))
    return ApiError(409, str(cause) if cause else "the process refused the event")


async def _audit_refusal(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    process_id: str,
    event: str,
    event_id: str,
    error: ApiError,
    source: str,
) -> None:
    async with sessions() as session, session.begin():
        await append_audit(
            session,
            AuditRecord(
                actor=principal.username,
                action="event.refused",
                entity_type="process",
                entity_id=process_id,
                outcome="refused",
                reason=error.detail,
                workflow_id=process_id,
                source=source,
                after={"event": event, "event_id": event_id, "http_status": error.status_code},
            ),
        )
