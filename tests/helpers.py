"""Small helpers the tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp.models import AuditEntry, Task

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def audit_actions(sessions: async_sessionmaker[AsyncSession], entity_id: str) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def task_by_workflow(
    sessions: async_sessionmaker[AsyncSession], workflow_id: str
) -> Task | None:
    async with sessions() as session:
        return await session.scalar(select(Task).where(Task.workflow_id == workflow_id))


async def seed_small_master_data(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A few parts, a label, a supplier with its ASL entry, stock, an open PO and a work order."""
    from datetime import date, timedelta
    from decimal import Decimal

    from erp.master_data import (
        AslEntry,
        BomLine,
        Document,
        DocumentItem,
        Item,
        Lot,
        PurchaseOrder,
        PurchaseOrderLine,
        Supplier,
        WorkOrder,
    )
    from erp.seed import seed_demo

    await seed_demo(sessions, master_data=False)  # the demo people, without the demo catalogue
    today = date.today()
    async with sessions() as session, session.begin():
        fg = Item(
            part_number="IS-2000",
            revision="C",
            description="Infusion set, 150 cm",
            device_class="II",
            status="effective",
            effective_on=today - timedelta(days=400),
        )
        tub_b = Item(
            part_number="TUB-100",
            revision="B",
            description="Tubing, PVC-free, 3 mm",
            status="effective",
            effective_on=today - timedelta(days=300),
        )
        tub_c = Item(
            part_number="TUB-100",
            revision="C",
            description="Tubing, PVC-free, 3.2 mm",
            status="draft",
        )
        session.add_all([fg, tub_b, tub_c])
        await session.flush()
        session.add(
            BomLine(
                item_id=fg.id, component_part_number="TUB-100", quantity=Decimal("1.5"), uom="m"
            )
        )
        session.add(
            Document(
                number="LBL-IS-2000",
                version="3",
                title="Label IS-2000",
                doc_type="label",
                status="effective",
                effective_on=today - timedelta(days=200),
            )
        )
        session.add(DocumentItem(document_number="LBL-IS-2000", part_number="IS-2000"))
        supplier = Supplier(code="SUP-A", name="Alpine Polymers", country="AT")
        session.add(supplier)
        await session.flush()
        session.add(
            AslEntry(
                supplier_id=supplier.id,
                part_number="TUB-100",
                status="approved",
                since_on=today - timedelta(days=700),
            )
        )
        po = PurchaseOrder(number="PO-2026-0101", supplier_id=supplier.id, status="issued")
        session.add(po)
        await session.flush()
        session.add(
            PurchaseOrderLine(
                purchase_order_id=po.id,
                part_number="TUB-100",
                item_id=tub_b.id,
                quantity=Decimal(500),
            )
        )
        session.add(
            Lot(
                lot_number="L2611-0001",
                item_id=tub_b.id,
                part_number="TUB-100",
                supplier_id=supplier.id,
                quantity=Decimal(250),
                uom="m",
                status="RELEASED",
                expires_on=today + timedelta(days=500),
            )
        )
        session.add(
            WorkOrder(
                number="WO-2026-0031",
                item_id=fg.id,
                part_number="IS-2000",
                quantity=Decimal(1000),
                status="released",
            )
        )


async def decide_task(
    client: Any,
    workflow_id: str,
    who: str,
    outcome: str,
    *,
    groups: Sequence[str] = (),
    sign: Any = None,
    **fields: str,
) -> Any:
    """Decide the human task `workflow_id` as `who` through its `decide` update, as the API does
    once it has checked the person (waits until the task knows its row id). `sign`: a
    SignatureMeaning for a signing outcome."""
    from temporalio.service import RPCError

    from schemas.human_task import DecisionRequest, SignatureIntent
    from workflows.human_task import HumanTaskWorkflow

    handle = client.get_workflow_handle(workflow_id)

    async def task_id() -> int | None:
        try:
            state = await handle.query(HumanTaskWorkflow.state)
        except RPCError:
            return None
        return state.task_id

    request = DecisionRequest(
        task_id=await eventually(task_id, what=f"task {workflow_id}"),
        decider=who,
        decider_name=who.title(),
        outcome=outcome,
        qualifying_groups=list(groups),
        fields=fields,
        signature=(
            SignatureIntent(meaning=sign, signer=who, printed_name=who.title()) if sign else None
        ),
    )
    return await handle.execute_update(HumanTaskWorkflow.decide, request)
