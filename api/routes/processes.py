"""Processes: start, read, list, withdraw."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Response
from fastapi.responses import JSONResponse

from api import change_service, process_service, quality_service, recall_service, supply_service
from api.answers import detail_in_language, in_language
from api.deps import AppSettings, CurrentPrincipal, DbSession, Sessions, Temporal
from api.errors import ApiError
from erp.change_control import ChangeRequest
from schemas.api import (
    ApprovalStart,
    CancelIn,
    ChangeOut,
    ChangeStart,
    ProcessDetail,
    ProcessList,
    ProcessOut,
    QualityProcessOut,
    RecallProcessOut,
    SupplyProcessOut,
)
from schemas.quality import CapaRequest, NonconformanceRequest
from schemas.recall import RecallRequest
from schemas.supply import (
    EventResult,
    ProcureToDeliverRequest,
    PurchaseRequest,
    ShipmentRequest,
    WorkOrderRequest,
)

router = APIRouter(prefix="/api/v1/processes", tags=["processes"])

ProcessId = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]


@router.post("/approval", status_code=201, response_model=ProcessOut)
async def start_approval(
    body: ApprovalStart,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    client: Temporal,
    settings: AppSettings,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ProcessOut:
    """Start a general approval request. Repeating with the same Idempotency-Key (or
    external_id) returns the same process with 200 instead of starting a second one."""
    process_id, created = await process_service.start_approval(
        session=session,
        client=client,
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
        task_queue=settings.task_queue,
    )
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/processes/{process_id}"
    return ProcessOut(
        id=process_id,
        kind="approval",
        title=body.title,
        business_key=process_id,
        initiator=principal.username,
        status="running" if created else "existing",
        current_step="started",
        outcome=None,
        started_at=None,
        closed_at=None,
    )


@router.post("/change-control", status_code=201, response_model=ChangeOut)
async def start_change_control(
    body: ChangeStart,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    client: Temporal,
    settings: AppSettings,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ChangeOut | Response:
    """Start a change request. Affected items, documents and suppliers and every action's target
    must exist. Repeating with the same Idempotency-Key (or external_id) returns the same change
    with 200. The body of the answer is the change once registered (its number CR-YYYY-NNNN)."""
    process_id, created = await change_service.start_change(
        session=session,
        client=client,
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
        task_queue=settings.task_queue,
    )
    response.headers["Location"] = f"/api/v1/changes/{process_id}"
    change = await _registered_change(session, process_id)
    status = 201 if created else 200
    if change is None:
        return JSONResponse(
            {"id": process_id, "status": "starting", "detail": "registered in a moment"},
            status_code=status,
            headers={"Location": f"/api/v1/changes/{process_id}"},
        )
    response.status_code = status
    return change_service.change_out(change)


async def _registered_change(session: DbSession, process_id: str):  # type: ignore[no-untyped-def]
    """The workflow registers the change in its first activity; wait briefly for it."""
    for _ in range(40):
        change = await session.get(ChangeRequest, process_id, populate_existing=True)
        if change is not None:
            return change
        await session.rollback()
        await asyncio.sleep(0.05)
    return None


IdempotencyKey = Annotated[str | None, Header(max_length=200)]
StartSupply = Callable[[str, supply_service.SupplyRequest], Awaitable[SupplyProcessOut]]


async def _supply_starter(
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    sessions: Sessions,
    client: Temporal,
    settings: AppSettings,
    idempotency_key: IdempotencyKey = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> StartSupply:
    """What every supply start route needs besides its body: starts the process of a kind and
    answers it (201 new, 200 repeat) once registered."""

    async def start(kind: str, body: supply_service.SupplyRequest) -> SupplyProcessOut:
        process_id, created = await supply_service.start_supply_process(
            session=session,
            client=client,
            principal=principal,
            kind=kind,
            body=body,
            idempotency_key=idempotency_key,
            task_queue=settings.task_queue,
        )
        await session.rollback()  # end the read transaction before waiting for the registration
        response.status_code = 201 if created else 200
        response.headers["Location"] = f"/api/v1/processes/{process_id}"
        answer = await supply_service.registered_process(sessions, process_id, kind, created)
        return detail_in_language(answer, accept_language)  # "started" in the caller's language

    return start


SupplyStarter = Annotated[StartSupply, Depends(_supply_starter)]


@router.post("/purchase", status_code=201, response_model=SupplyProcessOut)
async def start_purchase(body: PurchaseRequest, start: SupplyStarter) -> SupplyProcessOut:
    """Start a purchase (requisition → DoA approval → supplier check → PO → confirmation, ASN and
    receipts as events → incoming inspection → QA release). The supplier and every part must be
    known, each part with an effective revision. 201 new, 200 repeat (same Idempotency-Key or
    external_id); the answer carries the PO number once the process registered itself."""
    return await start("purchase", body)


@router.post("/work-order", status_code=201, response_model=SupplyProcessOut)
async def start_work_order(body: WorkOrderRequest, start: SupplyStarter) -> SupplyProcessOut:
    """Start a work order for a part's effective revision, which must have a bill of materials."""
    return await start("work-order", body)


@router.post("/shipment", status_code=201, response_model=SupplyProcessOut)
async def start_shipment(body: ShipmentRequest, start: SupplyStarter) -> SupplyProcessOut:
    """Ship released finished goods to a known customer; delivery comes as the event
    `delivered`."""
    return await start("shipment", body)


@router.post("/procure-to-deliver", status_code=201, response_model=SupplyProcessOut)
async def start_procure_to_deliver(
    body: ProcureToDeliverRequest, start: SupplyStarter
) -> SupplyProcessOut:
    """A customer order: check stock, buy what is short, make, ship, deliver."""
    return await start("procure-to-deliver", body)


@router.post("/nonconformance", status_code=201, response_model=QualityProcessOut)
async def start_nonconformance(
    body: NonconformanceRequest,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    sessions: Sessions,
    client: Temporal,
    settings: AppSettings,
    idempotency_key: IdempotencyKey = None,
) -> QualityProcessOut:
    """Report a nonconformance (any person; a system with processes:start). Lots by lot number
    or GS1/UDI string; they are held at once (containment). Part, supplier and lots must be
    known; part and supplier default to the lots' own when all lots agree. 201 new, 200 repeat
    (same Idempotency-Key or external_id); the answer carries the NC number once registered."""
    process_id, created = await quality_service.start_nonconformance(
        session=session,
        client=client,
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
        task_queue=settings.task_queue,
    )
    return await _quality_started(
        response, session, sessions, "nonconformance", process_id, created
    )


@router.post("/capa", status_code=201, response_model=QualityProcessOut)
async def start_capa(
    body: CapaRequest,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    sessions: Sessions,
    client: Temporal,
    settings: AppSettings,
    idempotency_key: IdempotencyKey = None,
) -> QualityProcessOut:
    """Start a CAPA, alone or for a nonconformance (nc_process_id: its process id or NC number);
    qa, qa-manager, quality-director or admin, or a system with processes:start. The owner must
    be an active person. 201 new, 200 repeat; the answer carries the CAPA number once
    registered."""
    process_id, created = await quality_service.start_capa(
        session=session,
        client=client,
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
        task_queue=settings.task_queue,
    )
    return await _quality_started(response, session, sessions, "capa", process_id, created)


async def _quality_started(
    response: Response,
    session: DbSession,
    sessions: Sessions,
    kind: str,
    process_id: str,
    created: bool,
) -> QualityProcessOut:
    await session.rollback()  # end the read transaction before waiting for the registration
    response.status_code = 201 if created else 200
    collection = "nonconformances" if kind == "nonconformance" else "capas"
    response.headers["Location"] = f"/api/v1/{collection}/{process_id}"
    started = await supply_service.registered_process(sessions, process_id, kind, created)
    return QualityProcessOut.model_validate(started.model_dump())


@router.post("/recall", status_code=201, response_model=RecallProcessOut)
async def start_recall(
    body: RecallRequest,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    sessions: Sessions,
    client: Temporal,
    settings: AppSettings,
    idempotency_key: IdempotencyKey = None,
) -> RecallProcessOut:
    """Initiate a recall, or a drill (`drill`: the same process, nothing leaves the house).
    qa-manager, quality-director, ra or admin (a drill also qa), or a system with
    processes:start. Suspect lots by lot number or GS1/UDI string; unknown ones are refused by
    name (422). 201 new, 200 repeat (same Idempotency-Key or external_id); the answer carries
    the RCL number (DRL in a drill) once registered."""
    process_id, created = await recall_service.start_recall(
        session=session,
        client=client,
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
        task_queue=settings.task_queue,
    )
    return await recall_started(response, session, sessions, process_id, created)


async def recall_started(
    response: Response, session: DbSession, sessions: Sessions, process_id: str, created: bool
) -> RecallProcessOut:
    """The answer to a recall start: 201 or 200, Location, the number once registered."""
    await session.rollback()  # end the read transaction before waiting for the registration
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/recalls/{process_id}"
    started = await supply_service.registered_process(
        sessions, process_id, recall_service.RECALL_KIND, created
    )
    return RecallProcessOut.model_validate(started.model_dump())


@router.post("/{kind}", status_code=201, include_in_schema=False)
async def start_other(kind: str, principal: CurrentPrincipal) -> None:
    if kind in process_service.KINDS_PLANNED:
        raise ApiError(
            404,
            "the '%(kind)s' process is not available in this release yet; available: %(available)s",
            kind=kind,
            available=", ".join(process_service.KINDS_AVAILABLE),
        )
    raise ApiError(
        404,
        "unknown process kind '%(kind)s'; available: %(available)s",
        kind=kind,
        available=", ".join(process_service.KINDS_AVAILABLE),
    )


@router.get("", response_model=ProcessList)
async def list_processes(
    principal: CurrentPrincipal,
    session: DbSession,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    initiator: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ProcessList:
    items, count = await process_service.list_processes(
        session=session,
        principal=principal,
        kind=kind,
        status=status,
        initiator=initiator,
        limit=limit,
        offset=offset,
    )
    return ProcessList(items=items, count=count)


@router.get("/{process_id}", response_model=ProcessDetail)
async def get_process(
    process_id: ProcessId, principal: CurrentPrincipal, session: DbSession, client: Temporal
) -> ProcessDetail:
    """Status, current step, open tasks and the timeline (audit rows) of one process."""
    return await process_service.process_detail(
        session=session, client=client, principal=principal, process_id=process_id
    )


@router.post("/{process_id}/cancel", response_model=ProcessOut, status_code=202)
async def cancel(
    process_id: ProcessId,
    body: CancelIn,
    principal: CurrentPrincipal,
    sessions: Sessions,
    client: Temporal,
) -> ProcessOut:
    """Withdraw a running process (initiator or administrator); its open tasks are cancelled."""
    return await process_service.cancel_process(
        sessions=sessions,
        client=client,
        principal=principal,
        process_id=process_id,
        reason=body.reason,
        source="api",
    )


@router.post("/{process_id}/events/{event}", response_model=EventResult)
async def send_event(
    process_id: ProcessId,
    event: Annotated[str, Path(max_length=40, pattern=r"^[a-z0-9-]+$")],
    data: Annotated[dict[str, Any], Body(description="the event's fields, a JSON object")],
    principal: CurrentPrincipal,
    sessions: Sessions,
    client: Temporal,
    idempotency_key: IdempotencyKey = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> EventResult:
    """An external event for a running process: a purchase accepts `supplier-confirmed`, `asn`
    and `goods-received` (whose `gs1` label fills supplier_lot and dates), a shipment
    `delivered`, a recall `consignee-response` and `return-received` (with the consignee's
    `consignee_code`; delivered to that consignee's notice). The Idempotency-Key header (or the body's event_id) names the event: sent
    again, it answers the first result with repeated=true and changes nothing. The `message`
    is in English unless `Accept-Language` asks for Chinese (`message_template` and
    `message_values` carry its English template)."""
    result = await supply_service.send_event(
        sessions=sessions,
        client=client,
        principal=principal,
        process_id=process_id,
        event=event,
        data=data,
        event_id=idempotency_key,
        source="api",
    )
    return in_language(result, accept_language)
