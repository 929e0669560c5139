"""Known rows for the dashboard tests (tests/api/test_dashboard.py, tests/ui/test_dashboard_page.py):
tasks, processes, CAPAs, NCs, receipts and inspections, recalls, written straight into the tables
the dashboard reads, with the figures they must give worked out in the API test."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp.master_data import Item, Lot, PurchaseOrder, PurchaseOrderLine, Supplier
from erp.models import Process, Task
from erp.quality import Capa, Nonconformance
from erp.recall import Recall, RecallConsignee, RecallResponse
from erp.supply import Customer, Inspection, Receipt

# the test's date range: two ISO weeks, Monday 5 January to Sunday 18 January 2026 (UTC)
RANGE = {"from": "2026-01-05", "to": "2026-01-18"}
WEEK_1, WEEK_2 = "2026-01-05", "2026-01-12"
_ids = itertools.count(1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def task(
    process_kind: str,
    step: str,
    *,
    status: str = "completed",
    closed: datetime | None = None,
    hours: float = 0,
    due_at: datetime | None = None,
    level: int = 1,
) -> Task:
    n = next(_ids)
    created = (closed - timedelta(hours=hours)) if closed else datetime.now(UTC)
    return Task(
        workflow_id=f"t-{n}",
        run_id="r",
        process_id=f"p-{n}",
        process_kind=process_kind,
        step=step,
        kind="approve",
        title=f"task {n}",
        business_key=f"bk-{n}",
        rule="any",
        spec={},
        status=status,
        level=level,
        due_at=due_at,
        created_at=created,
        closed_at=closed,
    )


def process(kind: str, *, closed: datetime | None, hours: float, status: str = "completed"):
    n = next(_ids)
    end = closed or datetime.now(UTC)
    return Process(
        id=f"proc-{n}",
        run_id="r",
        kind=kind,
        title=f"process {n}",
        business_key=f"bk-{n}",
        status=status,
        started_at=end - timedelta(hours=hours),
        closed_at=closed,
    )


def capa(days_old: int, *, status: str = "root_cause", closed: bool = False) -> Capa:
    n = next(_ids)
    now = datetime.now(UTC)
    return Capa(
        number=f"CAPA-T-{n}",
        process_id=f"capa-{n}",
        title="t",
        problem_statement="t",
        owner="carol",
        requested_by="bob",
        status=status,
        created_at=now - timedelta(days=days_old, hours=1),
        closed_at=now if closed else None,
    )


def nc(source: str, supplier: Supplier | None, created: str) -> Nonconformance:
    n = next(_ids)
    return Nonconformance(
        number=f"NC-T-{n}",
        process_id=f"nc-{n}",
        source=source,
        severity="minor",
        title="t",
        description="t",
        reported_by="heidi",
        supplier_id=supplier.id if supplier else None,
        created_at=at(created),
    )


@dataclass
class Supply:
    """Receipts and incoming inspections of one supplier, each receipt with its own lot."""

    session: AsyncSession
    supplier: Supplier
    item: Item
    line: PurchaseOrderLine | None = None

    async def receipt(self, received: str, *, on_time: bool, inspections: tuple[str, ...] = ()):
        if self.line is None:
            order = PurchaseOrder(number=f"PO-T-{next(_ids)}", supplier_id=self.supplier.id)
            self.session.add(order)
            await self.session.flush()
            self.line = PurchaseOrderLine(
                purchase_order_id=order.id,
                part_number=self.item.part_number,
                item_id=self.item.id,
                quantity=Decimal(100),
            )
            self.session.add(self.line)
            await self.session.flush()
        n = next(_ids)
        lot = Lot(
            lot_number=f"LT-{n}",
            item_id=self.item.id,
            part_number=self.item.part_number,
            supplier_id=self.supplier.id,
            quantity=Decimal(10),
        )
        self.session.add(lot)
        await self.session.flush()
        self.session.add(
            Receipt(
                purchase_order_line_id=self.line.id,
                lot_id=lot.id,
                quantity=Decimal(10),
                received_by="grace",
                received_at=at(received),
                on_time=on_time,
                event_id=f"rcv-{n}",
            )
        )
        for i, spec in enumerate(inspections):
            kind, outcome, when = spec.split(" ", 2)
            self.session.add(
                Inspection(
                    lot_id=lot.id,
                    kind=kind,
                    outcome=outcome,
                    inspector="heidi",
                    inspected_at=at(when),
                    idempotency_key=f"insp-{n}-{i}",
                )
            )


async def load_known_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        suppliers = {s.code: s for s in await session.scalars(select(Supplier))}
        item = await session.scalar(select(Item).where(Item.status == "effective").limit(1))
        customers = list(await session.scalars(select(Customer).order_by(Customer.id)))
        assert item is not None and len(customers) >= 3
        session.add_all(
            [
                # open tasks: purchase 2 on time, 1 due soon, 1 overdue, 1 escalated
                task("purchase", "approval", status="open", due_at=now + timedelta(hours=48)),
                task("purchase", "approval", status="open", due_at=None),
                task("purchase", "inspection", status="open", due_at=now + timedelta(hours=2)),
                task("purchase", "inspection", status="open", due_at=now - timedelta(hours=1)),
                task("purchase", "approval", status="open", due_at=now + timedelta(48), level=2),
                # change control: 1 overdue, 1 escalated (escalated wins over overdue)
                task("change-control", "triage", status="open", due_at=now - timedelta(hours=3)),
                task("change-control", "ccb-r1", status="open", due_at=now - timedelta(1), level=3),
                # completed in the range: purchase inspection 1, 2, 3 h (week 1), 4, 10 h (week 2)
                task("purchase", "inspection", closed=at("2026-01-06 10:00"), hours=1),
                task("purchase", "inspection", closed=at("2026-01-06 11:00"), hours=2),
                task("purchase", "inspection", closed=at("2026-01-06 12:00"), hours=3),
                task("purchase", "inspection", closed=at("2026-01-13 10:00"), hours=4),
                task("purchase", "inspection", closed=at("2026-01-18 23:59"), hours=10),
                # rounds of one step count as that step: approval-1 and approval-2 are "approval"
                task("purchase", "approval-1", closed=at("2026-01-07 09:00"), hours=5),
                task("purchase", "approval-2", closed=at("2026-01-14 09:00"), hours=7),
                task("change-control", "ccb-r2", closed=at("2026-01-08 09:00"), hours=20),
                # not counted: closed outside the range, or cancelled
                task("purchase", "inspection", closed=at("2026-01-19 00:00"), hours=100),
                task("purchase", "inspection", closed=at("2026-01-04 23:59"), hours=100),
                task(
                    "purchase", "inspection", status="cancelled", closed=at("2026-01-07"), hours=9
                ),
                # processes: purchase 24 h (week 1) and 48 h (week 2); running and cancelled not
                process("purchase", closed=at("2026-01-06 08:00"), hours=24),
                process("purchase", closed=at("2026-01-13 08:00"), hours=48),
                process("change-control", closed=at("2026-01-15 08:00"), hours=100),
                process("purchase", closed=None, hours=500, status="running"),
                process("purchase", closed=at("2026-01-13"), hours=700, status="cancelled"),
                # CAPAs: one open in each age bucket; a closed and a cancelled one not counted
                capa(5),
                capa(45),
                capa(100, status="effectiveness"),
                capa(200),
                capa(10, status="closed", closed=True),
                capa(12, status="cancelled"),
                # NCs in the range: incoming ×3 (SUP-0003 ×2, SUP-0001), complaint ×1; one after
                nc("incoming", suppliers["SUP-0003"], "2026-01-06 10:00"),
                nc("incoming", suppliers["SUP-0003"], "2026-01-16 10:00"),
                nc("incoming", suppliers["SUP-0001"], "2026-01-10 10:00"),
                nc("complaint", None, "2026-01-12 10:00"),
                nc("incoming", suppliers["SUP-0003"], "2026-02-10 10:00"),
            ]
        )
        # SUP-0001: 3 of 4 receipts on time, 3 of 4 incoming inspections passed; one receipt
        # outside the range
        sup1 = Supply(session, suppliers["SUP-0001"], item)
        await sup1.receipt(
            "2026-01-06 09:00", on_time=True, inspections=("incoming pass 2026-01-07",)
        )
        await sup1.receipt(
            "2026-01-07 09:00", on_time=True, inspections=("incoming pass 2026-01-08",)
        )
        await sup1.receipt(
            "2026-01-13 09:00", on_time=True, inspections=("incoming fail 2026-01-14",)
        )
        await sup1.receipt(
            "2026-01-14 09:00", on_time=False, inspections=("incoming pass 2026-01-15",)
        )
        await sup1.receipt(
            "2025-12-01 09:00", on_time=False, inspections=("incoming fail 2025-12-02",)
        )
        # SUP-0003: 1 late receipt; 1 of 2 incoming inspections passed (the in-process one and
        # the one after the range do not count)
        sup3 = Supply(session, suppliers["SUP-0003"], item)
        await sup3.receipt(
            "2026-01-08 09:00",
            on_time=False,
            inspections=(
                "incoming pass 2026-01-09",
                "incoming fail 2026-01-10",
                "in_process fail 2026-01-11",
                "incoming fail 2026-01-20",
            ),
        )
        # recalls: one open in the range, level B (target 50 %); one closed before, one after
        recall = Recall(
            number="RCL-T-1",
            process_id="rcl-t-1",
            reason="t",
            source="ui",
            requested_by="carol",
            status="notifying",
            classification="II",
            effectiveness_level="B",
            initiated_at=at("2025-12-20 10:00"),
        )
        closed_before = Recall(
            number="RCL-T-2",
            process_id="rcl-t-2",
            reason="t",
            source="ui",
            requested_by="carol",
            status="closed",
            initiated_at=at("2025-11-01"),
            closed_at=at("2026-01-04 12:00"),
        )
        after = Recall(
            number="RCL-T-3",
            process_id="rcl-t-3",
            reason="t",
            source="ui",
            requested_by="carol",
            status="scoping",
            initiated_at=at("2026-01-19 00:00"),
        )
        session.add_all([recall, closed_before, after])
        await session.flush()
        acknowledged, answered, silent = (
            RecallConsignee(
                recall_id=recall.id,
                customer_id=customers[i].id,
                scope_version=1,
                shipped_quantity=Decimal(shipped),
                notified_at=at("2026-01-05") if notified else None,
                acknowledged_at=at("2026-01-06") if i == 0 else None,
                quantity_returned=Decimal(returned),
                quantity_corrected=Decimal(corrected),
                quantity_received_back=Decimal(back),
            )
            for i, (shipped, notified, returned, corrected, back) in enumerate(
                [(40, True, 10, 5, 8), (30, True, 15, 0, 0), (30, False, 0, 0, 0)]
            )
        )
        session.add_all([acknowledged, answered, silent])
        await session.flush()
        # an answer without acknowledged_at still counts as responded
        session.add(
            RecallResponse(
                recall_consignee_id=answered.id,
                event_id="resp-t-1",
                acknowledged=False,
                quantity_returned=Decimal(15),
                recorded_by="mes",
            )
        )
