"""Activities of the procure-to-deliver parent: register a customer order, plan it against stock
and the approved supplier list, and move its status."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.audit_context import audit
from activities.process import mirror_status
from activities.records import next_number, process_record, recorded_answer
from erp.audit import already_recorded
from erp.db import database_now
from erp.lots import available_lots, shippable_lots
from erp.master_data import AslEntry, BomLine, Supplier
from erp.supply import CUSTOMER_ORDER_NUMBER, Customer, CustomerOrder
from erp.supply_rules import effective_revision, supplier_refusal
from schemas.customer_order import (
    OrderPlan,
    PlannedPurchase,
    PlanOrderInput,
    RegisterOrderInput,
    RegisterOrderResult,
    SetOrderStatusInput,
    Shortage,
)
from schemas.shipping import joined_said
from schemas.supply import PurchaseLine
from workflows.wording import Said, refuse, said, said_again, wording

TERMINAL = {"delivered": "completed", "cancelled": "cancelled"}


async def _on_hand(session: AsyncSession, query: Any) -> Decimal:
    lots = query.subquery()
    total = await session.scalar(select(func.coalesce(func.sum(lots.c.quantity), 0)))
    return Decimal(total or 0)


async def _sourcing(
    session: AsyncSession, part_number: str, on: Any
) -> tuple[str | None, list[str]]:
    """The first approved supplier that may deliver this part today, or None and why not."""
    codes = await session.scalars(
        select(Supplier.code)
        .join(AslEntry, AslEntry.supplier_id == Supplier.id)
        .where(AslEntry.part_number == part_number, AslEntry.status == "approved")
        .order_by(AslEntry.since_on, Supplier.code)
    )
    refusals: list[str] = []
    for code in codes:
        refusal = await supplier_refusal(
            session, supplier_code=code, part_number=part_number, on=on
        )
        if refusal is None:
            return code, []
        refusals.append(refusal)
    if refusals:
        return None, refusals
    conditional = list(
        await session.scalars(
            select(Supplier.code)
            .join(AslEntry, AslEntry.supplier_id == Supplier.id)
            .where(AslEntry.part_number == part_number, AslEntry.status == "conditional")
            .order_by(Supplier.code)
        )
    )
    if conditional:
        return None, [
            said(
                "%(part)s has only conditionally approved suppliers (%(suppliers)s):"
                " a buyer must order it by hand",
                part=part_number,
                suppliers=", ".join(conditional),
            )
        ]
    return None, [said("no supplier is approved for %(part)s", part=part_number)]


def _why(text: str) -> dict[str, Any]:
    """A shortage's `why` and its wording (`Shortage.why_wording`)."""
    return {"why": str(text), "why_wording": wording(text) if isinstance(text, Said) else None}


class CustomerOrderActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.register_customer_order,
            self.plan_customer_order,
            self.set_customer_order_status,
        ]

    @activity.defn(name="register_customer_order")
    async def register_customer_order(self, data: RegisterOrderInput) -> RegisterOrderResult:
        request = data.request
        async with self._sessions() as session, session.begin():
            existing = await process_record(session, CustomerOrder, data.process_id)
            if existing is not None:
                return RegisterOrderResult(number=existing.number)
            customer = await session.scalar(
                select(Customer).where(Customer.code == request.customer_code)
            )
            if customer is None:
                raise refuse(
                    "Invalid",
                    said("customer %(customer)s is not known", customer=request.customer_code),
                    non_retryable=True,
                )
            order = CustomerOrder(
                number=await next_number(session, "CO", CUSTOMER_ORDER_NUMBER),
                process_id=data.process_id,
                customer_id=customer.id,
                part_number=request.part_number,
                quantity=request.quantity,
                due_on=request.due_on,
                status="received",
                requested_by=request.requester,
                external_reference=request.customer_reference,
            )
            session.add(order)
            await session.flush()
            await audit(
                session,
                actor=request.requester or "system",
                action="customer_order.received",
                entity_type="customer_order",
                entity_id=order.number,
                after=request.model_dump(mode="json", exclude={"process_id"}),
                key=f"{data.process_id}:{data.run_id}:order-registered",
            )
            return RegisterOrderResult(number=order.number)

    @activity.defn(name="plan_customer_order")
    async def plan_customer_order(self, data: PlanOrderInput) -> OrderPlan:
        """Finished stock the customer would accept, what is left to make, and the components to
        buy for it from suppliers that may deliver them today. Recorded once per planning round."""
        key = f"{data.process_id}:plan:{data.attempt}"
        async with self._sessions() as session, session.begin():
            recorded = await recorded_answer(session, key, OrderPlan)
            if recorded is not None:  # a retry answers what was recorded
                return recorded
            order = await process_record(session, CustomerOrder, data.process_id)
            assert order is not None, "the order is registered before it is planned"
            customer = await session.get(Customer, order.customer_id)
            assert customer is not None
            plan = await self._plan(session, order, customer, data)
            await audit(
                session,
                actor="system",
                action="customer_order.planned",
                entity_type="customer_order",
                entity_id=order.number,
                reason=plan.summary(),
                after=plan.model_dump(mode="json"),
                key=key,
            )
            return plan

    async def _plan(
        self, session: AsyncSession, order: CustomerOrder, customer: Customer, data: PlanOrderInput
    ) -> OrderPlan:
        finished = await _on_hand(
            session,
            shippable_lots(
                order.part_number, on=data.on, min_shelf_life_days=customer.min_shelf_life_days
            ),
        )
        to_make = max(order.quantity - finished, Decimal(0))
        plan = OrderPlan(finished_available=finished, to_make=to_make)
        if to_make == 0:
            return plan
        item = await effective_revision(session, order.part_number)
        if item is None:
            plan.unbuyable.append(
                Shortage(
                    part_number=order.part_number,
                    needed=to_make,
                    available=finished,
                    **_why(
                        said("%(part)s has no effective revision to make", part=order.part_number)
                    ),
                )
            )
            return plan
        by_supplier: dict[str, list[PurchaseLine]] = defaultdict(list)
        for line in await session.scalars(
            select(BomLine).where(BomLine.item_id == item.id).order_by(BomLine.id)
        ):
            needed = to_make * line.quantity
            available = await _on_hand(
                session, available_lots(line.component_part_number, on=data.on)
            )
            if available >= needed:
                continue
            supplier, refusals = await _sourcing(session, line.component_part_number, data.on)
            if supplier is None:
                plan.unbuyable.append(
                    Shortage(
                        part_number=line.component_part_number,
                        needed=needed,
                        available=available,
                        **_why(joined_said(refusals)),  # `a; b` as before
                    )
                )
                continue
            component = await effective_revision(session, line.component_part_number)
            by_supplier[supplier].append(
                PurchaseLine(
                    part_number=line.component_part_number,
                    quantity=needed - available,
                    unit_price=component.standard_cost if component else Decimal(0),
                )
            )
        plan.purchases = [
            PlannedPurchase(supplier_code=code, lines=lines) for code, lines in by_supplier.items()
        ]
        return plan

    @activity.defn(name="set_customer_order_status")
    async def set_customer_order_status(self, data: SetOrderStatusInput) -> None:
        key = f"{data.process_id}:status:{data.seq}"
        async with self._sessions() as session, session.begin():
            if await already_recorded(session, key):
                return
            order = await process_record(session, CustomerOrder, data.process_id, lock=True)
            if order is None:  # cancelled before it was registered
                return
            before = order.status
            order.status = data.status
            now = await database_now(session)
            if data.status in TERMINAL:
                order.closed_at = now
            await mirror_status(
                session,
                data.process_id,
                step=data.status,
                ended=TERMINAL.get(data.status),
                outcome=data.status,
                at=now,
            )
            await audit(
                session,
                actor="system",
                action=f"customer_order.{data.status}",
                entity_type="customer_order",
                entity_id=order.number,
                reason=said_again(data.reason_wording, data.reason),
                before={"status": before},
                after={"status": data.status, "children": data.children},
                key=key,
            )
