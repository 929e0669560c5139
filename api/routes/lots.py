"""Lots (list, facts, trace), suppliers (scorecard, certificates, ASL) and customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import lot_service
from api.deps import CurrentPrincipal, DbSession
from schemas.api import (
    CustomerList,
    LotDetail,
    LotList,
    SupplierDetail,
    SupplierList,
)
from schemas.supply import TraceResult

router = APIRouter(prefix="/api/v1", tags=["lots and suppliers"])

LotReference = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="a lot number, or a GS1/UDI string (URL-encoded), e.g. "
        "(01)00614141300013(10)L2610-0016(21)IP3-000003",
    ),
]


@router.get("/lots", response_model=LotList)
async def list_lots(
    principal: CurrentPrincipal,
    session: DbSession,
    part_number: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20, description="e.g. RELEASED")] = None,
    supplier: Annotated[str | None, Query(max_length=20, description="supplier code")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> LotList:
    """Lots, newest first; filter by part number, status and supplier."""
    items, count = await lot_service.list_lots(
        session=session,
        principal=principal,
        part_number=part_number,
        status=status,
        supplier=supplier,
        limit=limit,
        offset=offset,
    )
    return LotList(items=items, count=count)


@router.get("/lots/{lot}", response_model=LotDetail)
async def get_lot(lot: LotReference, principal: CurrentPrincipal, session: DbSession) -> LotDetail:
    """A lot's facts: status history, movements, receipt, inspections and how many serials."""
    return await lot_service.lot_detail(session=session, principal=principal, reference=lot)


@router.get("/lots/{lot}/trace", response_model=TraceResult)
async def trace(
    lot: LotReference,
    principal: CurrentPrincipal,
    session: DbSession,
    direction: Annotated[str, Query(max_length=10, description="forward or backward")] = "forward",
) -> TraceResult:
    """Forward: every lot this lot went into and where they were shipped (consignees).
    Backward: every lot it was made from, up to the suppliers' lots. A serial's UDI traces its
    lot and names the serial."""
    return await lot_service.lot_trace(
        session=session, principal=principal, reference=lot, direction=direction
    )


@router.get("/suppliers", response_model=SupplierList)
async def list_suppliers(principal: CurrentPrincipal, session: DbSession) -> SupplierList:
    items = await lot_service.list_suppliers(session=session, principal=principal)
    return SupplierList(items=items, count=len(items))


@router.get("/suppliers/{code}", response_model=SupplierDetail)
async def get_supplier(
    code: Annotated[str, Path(max_length=20)], principal: CurrentPrincipal, session: DbSession
) -> SupplierDetail:
    """Scorecard (on-time delivery and acceptance rates), certificates, approved supplier list."""
    return await lot_service.supplier_detail(session=session, principal=principal, code=code)


@router.get("/customers", response_model=CustomerList)
async def list_customers(principal: CurrentPrincipal, session: DbSession) -> CustomerList:
    items = await lot_service.list_customers(session=session, principal=principal)
    return CustomerList(items=items, count=len(items))
