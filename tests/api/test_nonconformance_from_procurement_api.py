"""A failed incoming inspection in a customer order opens a nonconformance, on the real stack over
REST: the lot is contained at once (neither issued to a work order nor shipped, whoever asks), the
MRB returns it to the supplier, and the SCAR shows on the supplier's scorecard."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from erp.lots import LotRefused, move
from erp.master_data import Lot
from erp.models import Process
from erp.quality import NcLot, Nonconformance, Scar
from tests.api.test_procure_to_deliver_api import decide, event
from tests.helpers import eventually


async def test_failed_incoming_inspection_opens_an_nc_that_returns_the_lot(stack):
    started = await stack.http.post(
        "/api/v1/processes/procure-to-deliver",
        json={
            "customer_code": "CUS-0001",
            "part_number": "IP-3000",
            "quantity": "35",
            "due_on": (date.today() + timedelta(days=45)).isoformat(),
        },
        headers=stack.mes | {"Idempotency-Key": "erp-so-90001"},
    )
    assert started.status_code == 201, started.text
    purchase = f"{started.json()['id']}.purchase-1"
    await decide(stack, "judy", f"{purchase}.approval", "approve", sign=True)
    receipt = await event(
        stack,
        purchase,
        "goods-received",
        "dock-1",
        part_number="MT-0730",
        quantity="5",
        supplier_lot="TEM-BAD-1",
    )
    lot_number = receipt["data"]["lot_number"]
    await decide(
        stack,
        "heidi",
        f"{purchase}.inspect-1",
        "fail",
        sample_size="5",
        defects="2",
        reason="Occlusion sensor reads 40 % low on 2 of 5",
    )

    nc_id = f"{purchase}.nc-1"

    async def contained():
        async with stack.sessions() as session:
            lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
            return (
                lot
                if lot is not None and lot.status == "ON_HOLD" and "NC-" in lot.hold_reason
                else None
            )

    held = await eventually(contained, timeout=60, what="the lot held by the NC")
    # contained: no path issues it to a work order or ships it, whoever calls
    for kind in ("issue", "ship"):
        async with stack.sessions() as session, session.begin():
            lot = await session.get(Lot, held.id)
            assert lot is not None
            with pytest.raises(LotRefused, match="ON_HOLD") as refused:
                await move(
                    session,
                    lot,
                    kind=kind,
                    quantity=Decimal(1),
                    reference="WO-TRY",
                    actor="ivan",
                    process_id=None,
                )
            assert "NC-" in refused.value.message

    await decide(
        stack,
        "bob",
        f"{nc_id}.investigation",
        "done",
        findings="Sensor calibration drift at the supplier's end-of-line test",
    )
    await decide(
        stack,
        "carol",
        f"{nc_id}.disposition-1",
        "disposition",
        sign=True,
        lot_1="return_to_supplier",
        justification="Supplier's calibration fault; return for credit",
    )
    await decide(
        stack,
        "carol",
        f"{nc_id}.capa-decision-1",
        "no_capa",
        reason="Supplier issue handled by the SCAR",
    )

    async def returned():
        async with stack.sessions() as session:
            lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
            return lot if lot is not None and lot.status == "REJECTED" else None

    lot = await eventually(returned, timeout=60, what="the lot returned to the supplier")
    assert lot.quantity == 0
    scorecard = await stack.http.get("/api/v1/suppliers/SUP-0007", headers=stack.mes)
    assert scorecard.status_code == 200, scorecard.text
    card = scorecard.json()
    assert card["scorecard"]["scars"] == 1
    assert card["scorecard"]["inspections"] == 1 and card["scorecard"]["accepted_inspections"] == 0
    await decide(stack, "carol", f"{nc_id}.closure", "close", sign=True, summary="Returned; SCAR")

    async def closed():
        async with stack.sessions() as session:
            process = await session.get(Process, nc_id, populate_existing=True)
            return process if process is not None and process.status == "completed" else None

    await eventually(closed, timeout=60, what="the NC closed")

    async with stack.sessions() as session:
        nc = await session.scalar(select(Nonconformance).where(Nonconformance.process_id == nc_id))
        assert nc is not None
        nc_lot = await session.scalar(select(NcLot).where(NcLot.nc_id == nc.id))
        scar = await session.scalar(select(Scar).where(Scar.nc_id == nc.id))
        process = await session.get(Process, nc_id)
    assert nc.source == "incoming" and nc.origin_process_id == purchase
    assert nc_lot is not None and nc_lot.disposition == "return_to_supplier"
    assert scar is not None and scar.number.startswith("SCAR-")
    assert process is not None and process.kind == "nonconformance"
