"""Planning a customer order on real PostgreSQL with the demo catalogue: finished stock the customer
accepts, what is left to make, and what to buy from whom."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from temporalio.testing import ActivityEnvironment

from activities.customer_order import CustomerOrderActivities
from erp.master_data import AslEntry, Lot
from erp.models import AuditEntry
from erp.seed import seed_demo
from erp.supply import Customer, CustomerOrder
from schemas.customer_order import PlanOrderInput, RegisterOrderInput, SetOrderStatusInput
from schemas.supply import ProcureToDeliverRequest


def _order(part: str, quantity: str, customer: str = "CUS-0001") -> ProcureToDeliverRequest:
    return ProcureToDeliverRequest(
        process_id="co-test",
        requester="frank",
        customer_code=customer,
        part_number=part,
        quantity=Decimal(quantity),
        due_on=date.today() + timedelta(days=60),
    )


async def _register(activities: CustomerOrderActivities, request: ProcureToDeliverRequest) -> str:
    env = ActivityEnvironment()
    data = RegisterOrderInput(process_id="co-test", run_id="r1", request=request)
    first = await env.run(activities.register_customer_order, data)
    again = await env.run(activities.register_customer_order, data)  # a retry
    assert first.number == again.number and first.number.startswith("CO-")
    return first.number


async def test_pump_order_buys_only_the_short_component_from_an_approved_supplier(sessions):
    await seed_demo(sessions)
    activities = CustomerOrderActivities(sessions)
    await _register(activities, _order("IP-3000", "35"))
    plan = await ActivityEnvironment().run(
        activities.plan_customer_order,
        PlanOrderInput(process_id="co-test", attempt=1, on=date.today()),
    )
    # 5 pumps in stock; 30 to make: boards 40 and housings 60 suffice, mechanisms 25 do not
    assert plan.finished_available == 5 and plan.to_make == 30
    assert [
        (p.supplier_code, [(li.part_number, li.quantity) for li in p.lines]) for p in plan.purchases
    ] == [("SUP-0007", [("MT-0730", Decimal(5))])]
    assert plan.purchases[0].lines[0].unit_price == Decimal("310.00")
    assert plan.unbuyable == []


async def test_infusion_sets_within_stock_need_nothing_made(sessions):
    await seed_demo(sessions)
    activities = CustomerOrderActivities(sessions)
    await _register(activities, _order("IS-2000", "1000"))
    plan = await ActivityEnvironment().run(
        activities.plan_customer_order,
        PlanOrderInput(process_id="co-test", attempt=1, on=date.today()),
    )
    assert plan.to_make == 0 and plan.purchases == [] and plan.finished_available >= 1000


async def test_customer_shelf_life_rule_and_unbuyable_parts(sessions):
    await seed_demo(sessions)
    async with sessions() as session, session.begin():
        # the wholesaler accepts only lots with almost their whole shelf life left: none qualify
        await session.execute(
            update(Customer).where(Customer.code == "CUS-0002").values(min_shelf_life_days=1090)
        )
        # and no supplier may deliver luer connectors any more
        await session.execute(
            update(AslEntry).where(AslEntry.part_number == "LC-0110").values(status="disqualified")
        )
    activities = CustomerOrderActivities(sessions)
    await _register(activities, _order("IS-2000", "20000", customer="CUS-0002"))
    plan = await ActivityEnvironment().run(
        activities.plan_customer_order,
        PlanOrderInput(process_id="co-test", attempt=1, on=date.today()),
    )
    assert plan.finished_available == 0 and plan.to_make == 20000
    why = {s.part_number: s.why for s in plan.unbuyable}
    # SUP-0003 is only conditionally approved (its certificate expired): drip chambers and
    # spikes cannot be ordered automatically; nobody may deliver luer connectors any more
    assert why == {
        "SP-0440": "SP-0440 has only conditionally approved suppliers (SUP-0003): a buyer must"
        " order it by hand",
        "DC-0330": "DC-0330 has only conditionally approved suppliers (SUP-0003): a buyer must"
        " order it by hand",
        "LC-0110": "no supplier is approved for LC-0110",
    }
    bought = {li.part_number: p.supplier_code for p in plan.purchases for li in p.lines}
    assert bought == {
        "TB-0150": "SUP-0001",
        "RC-0220": "SUP-0002",
        "PK-0550": "SUP-0004",
        "LB-0660": "SUP-0004",
    }


async def test_a_retried_plan_answers_what_was_recorded_and_status_moves_once(sessions):
    await seed_demo(sessions)
    activities = CustomerOrderActivities(sessions)
    number = await _register(activities, _order("IP-3000", "35"))
    env = ActivityEnvironment()
    data = PlanOrderInput(process_id="co-test", attempt=1, on=date.today())
    first = await env.run(activities.plan_customer_order, data)
    async with sessions() as session, session.begin():  # stock changes before the retry
        await session.execute(update(Lot).where(Lot.part_number == "MT-0730").values(quantity=0))
    assert await env.run(activities.plan_customer_order, data) == first
    status = SetOrderStatusInput(process_id="co-test", seq=1, status="purchasing", reason="r")
    await env.run(activities.set_customer_order_status, status)
    await env.run(activities.set_customer_order_status, status)
    async with sessions() as session:
        order = await session.scalar(select(CustomerOrder).where(CustomerOrder.number == number))
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id == number)
                .order_by(AuditEntry.id)
            )
        )
    assert order is not None and order.status == "purchasing"
    assert actions == [
        "customer_order.received",
        "customer_order.planned",
        "customer_order.purchasing",
    ]
