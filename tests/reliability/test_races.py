"""Issue 7, item 4: races, on the real stack through the REST API.

Two people deciding (or claiming, or signing) the same task at the same moment, an external event
delivered twice (at-least-once delivery, concurrently and again later), a process start repeated
concurrently with one Idempotency-Key, and a nonconformance holding a lot while a shipment ships
it. Every race must end with one winner, the others told why, and exactly one of each row the
winner wrote. The requests really interleave: the app runs in this event loop (httpx over ASGI)
and asyncio.gather sends them together; each race is repeated to make it bite.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from erp.master_data import Item, Lot, PurchaseOrder
from erp.models import AuditEntry, ESignature, Process, Task, TaskDecision
from erp.quality import NcLot, Nonconformance
from erp.supply import InventoryMovement, LotStatusChange, Receipt, Shipment, ShipmentLine
from tests.api.conftest import Stack
from tests.helpers import eventually

PASSWORD = "lotline-demo"
ROUNDS = 10  # fresh tasks per decision race
APPROVAL: dict[str, Any] = {
    "title": "Approve SOP-QA-020 rev B",
    "description": "Line clearance before each lot",
    "approver_groups": ["qa"],
    "sla_hours": 48,
}
DUE = (date.today() + timedelta(days=30)).isoformat()
PURCHASE: dict[str, Any] = {  # 840 EUR: one buyer (frank or judy) approves, signed
    "supplier_code": "SUP-0001",
    "lines": [{"part_number": "TB-0150", "quantity": "2000", "unit_price": "0.42"}],
    "due_on": DUE,
}
NC_REPORT: dict[str, Any] = {
    "source": "complaint",
    "severity": "major",
    "title": "Occluded tubing reported by a hospital",
    "description": "Two sets from one lot did not prime; the lot is suspect.",
}
_parts = itertools.count(1)


# ---------------------------------------------------------------- helpers


async def tokens(stack: Stack, *usernames: str) -> list[dict[str, str]]:
    return list(await asyncio.gather(*(stack.token(u) for u in usernames)))


async def count(stack: Stack, model: Any, *where: ColumnElement[bool]) -> int:
    async with stack.sessions() as session:
        return await count_in(session, model, *where)


async def count_in(session: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    """Within a session already open: the test shares the worker's small connection pool, and
    a second session opened inside the first could wait for a connection forever."""
    found = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(found or 0)


async def audit_rows(stack: Stack, action: str, entity_id: str) -> list[AuditEntry]:
    async with stack.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def open_task(stack: Stack, *where: ColumnElement[bool]) -> Task:
    async def probe() -> Task | None:
        async with stack.sessions() as session:
            return await session.scalar(select(Task).where(Task.status == "open", *where))

    return await eventually(probe, timeout=60, what=f"an open task {where}")


async def start_approvals(stack: Stack, starter: dict[str, str], n: int, **body: Any) -> list[Task]:
    """`n` approval requests started at once; their open tasks."""

    async def start(i: int) -> Task:
        response = await stack.http.post(
            "/api/v1/processes/approval",
            json=APPROVAL | body | {"title": f"Approve SOP-RACE-{i:02d} rev A"},
            headers=starter,
        )
        assert response.status_code == 201, response.text
        return await open_task(stack, Task.process_id == response.json()["id"])

    return list(await asyncio.gather(*(start(i) for i in range(n))))


async def decide(
    stack: Stack,
    task_id: int,
    who: dict[str, str],
    outcome: str,
    *,
    sign: bool = False,
    **fields: str,
) -> httpx.Response:
    body: dict[str, Any] = {"outcome": outcome, "fields": fields}
    return await stack.http.post(
        f"/api/v1/tasks/{task_id}/decision",
        json=body | ({"password": PASSWORD} if sign else {}),
        headers=who,
    )


@dataclass(frozen=True)
class Contender:
    name: str
    headers: dict[str, str]
    outcome: str
    fields: dict[str, str]


@dataclass(frozen=True)
class RaceResult:
    winner: Contender
    loser: Contender
    refusal: str  # the loser's 409 detail


async def race_decision(
    stack: Stack, task_id: int, contenders: Sequence[Contender], *, sign: bool = False
) -> RaceResult:
    """Both decisions sent at the same moment: exactly one 200, the other a 409."""
    responses = await asyncio.gather(
        *(decide(stack, task_id, c.headers, c.outcome, sign=sign, **c.fields) for c in contenders)
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    won = next(i for i, r in enumerate(responses) if r.status_code == 200)
    winner, loser = contenders[won], contenders[1 - won]
    answer = responses[won].json()
    assert answer["task_status"] == "completed" and answer["final_outcome"] == winner.outcome
    return RaceResult(winner, loser, responses[1 - won].json()["detail"])


async def assert_decided_once(stack: Stack, task_id: int, race: RaceResult) -> None:
    """One decision row and one `task.decided` row, the winner's; the loser's try is audited
    as refused; the task row closed with the winner's outcome."""
    async with stack.sessions() as session:
        decisions = list(
            await session.scalars(select(TaskDecision).where(TaskDecision.task_id == task_id))
        )
        task = await session.get_one(Task, task_id)
    assert [(d.decided_by, d.outcome) for d in decisions] == [
        (race.winner.name, race.winner.outcome)
    ]
    assert (task.status, task.outcome) == ("completed", race.winner.outcome)
    decided = await audit_rows(stack, "task.decided", str(task_id))
    assert [a.actor for a in decided] == [race.winner.name]
    refused = await audit_rows(stack, "task.decision_refused", str(task_id))
    assert [(a.actor, a.outcome) for a in refused] == [(race.loser.name, "refused")]
    assert "already completed" in race.refusal, race.refusal
    assert race.winner.name in race.refusal, race.refusal  # who decided it first


async def closed_process(stack: Stack, headers: dict[str, str], process_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await stack.http.get(f"/api/v1/processes/{process_id}", headers=headers)
        body: dict[str, Any] = response.json()
        return body if body["status"] != "running" else None

    return await eventually(probe, timeout=60, what=f"{process_id} closed")


# ---------------------------------------------------------------- 1. decisions and claims


async def test_one_task_decided_by_two_people_at_once_has_one_winner(stack: Stack) -> None:
    """Ten fresh approval tasks, each decided by bob and carol (both qa) at the same moment:
    half with the same outcome, half approve against reject; who is sent first alternates."""
    alice, bob, carol = await tokens(stack, "alice", "bob", "carol")
    tasks = await start_approvals(stack, alice, ROUNDS, signs=False)
    for n, task in enumerate(tasks):
        conflicting = n % 2 == 1
        contenders = [
            Contender("bob", bob, "approve", {}),
            Contender(
                "carol",
                carol,
                "reject" if conflicting else "approve",
                {"reason": "the SOP lacks the line clearance form"} if conflicting else {},
            ),
        ]
        if n % 4 >= 2:
            contenders.reverse()
        race = await race_decision(stack, task.id, contenders)
        await assert_decided_once(stack, task.id, race)
        process = await closed_process(stack, bob, task.process_id)
        assert (process["status"], process["outcome"]) == ("completed", race.winner.outcome)
        moved = await audit_rows(stack, "process.completed", task.process_id)
        assert [a.after["outcome"] for a in moved if a.after] == [race.winner.outcome]


async def test_two_claims_at_once_one_holds_the_task(stack: Stack) -> None:
    alice, bob, carol = await tokens(stack, "alice", "bob", "carol")
    people = {"bob": bob, "carol": carol}
    tasks = await start_approvals(stack, alice, 5, signs=False)
    for n, task in enumerate(tasks):
        order = ["bob", "carol"] if n % 2 == 0 else ["carol", "bob"]
        responses = await asyncio.gather(
            *(
                stack.http.post(f"/api/v1/tasks/{task.id}/claim", headers=people[who])
                for who in order
            )
        )
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
        won = next(i for i, r in enumerate(responses) if r.status_code == 200)
        winner, loser = order[won], order[1 - won]
        assert responses[won].json()["claimed_by"] == winner
        assert f"claimed by {winner}" in responses[1 - won].json()["detail"]
        async with stack.sessions() as session:
            row = await session.get_one(Task, task.id)
        assert row.claimed_by == winner
        assert [a.actor for a in await audit_rows(stack, "task.claimed", str(task.id))] == [winner]
        refused = await audit_rows(stack, "task.claim_refused", str(task.id))
        assert [a.actor for a in refused] == [loser]


# ---------------------------------------------------------------- 2. signatures


async def assert_signed_once(stack: Stack, task: Task, race: RaceResult, meaning: str) -> None:
    """Exactly one e-signature for the task, the winner's, and the decision points at it."""
    async with stack.sessions() as session:
        signatures = list(
            await session.scalars(
                select(ESignature).where(ESignature.workflow_id == task.workflow_id)
            )
        )
        decision = await session.scalar(select(TaskDecision).where(TaskDecision.task_id == task.id))
    assert [(s.signer, s.meaning) for s in signatures] == [(race.winner.name, meaning)]
    assert decision is not None and decision.signature_id == signatures[0].id
    assert signatures[0].signed_content["outcome"] == race.winner.outcome


async def test_two_people_signing_the_same_decision_at_once_make_one_signature(
    stack: Stack,
) -> None:
    alice, bob, carol = await tokens(stack, "alice", "bob", "carol")
    tasks = await start_approvals(stack, alice, 5, signs=True)
    for n, task in enumerate(tasks):
        contenders = [
            Contender("bob", bob, "approve", {}),
            Contender("carol", carol, "approve", {}),
        ]
        if n % 2:
            contenders.reverse()
        race = await race_decision(stack, task.id, contenders, sign=True)
        await assert_decided_once(stack, task.id, race)
        await assert_signed_once(stack, task, race, "approved")
    # the loser typed the right password: no wrong attempt is counted against them
    assert await count(stack, AuditEntry, AuditEntry.action == "signature.refused") == 0


async def test_a_signed_decision_sent_twice_at_once_is_taken_once(stack: Stack) -> None:
    """A double click: bob's signed approval sent twice at the same moment."""
    alice, bob = await tokens(stack, "alice", "bob")
    for task in await start_approvals(stack, alice, 3, signs=True):
        twice = [Contender("bob", bob, "approve", {}), Contender("bob", bob, "approve", {})]
        race = await race_decision(stack, task.id, twice, sign=True)
        await assert_decided_once(stack, task.id, race)
        await assert_signed_once(stack, task, race, "approved")


# ---------------------------------------------------------------- 3. at-least-once delivery


async def fire(times: int, send: Callable[[], Awaitable[httpx.Response]]) -> list[httpx.Response]:
    return list(await asyncio.gather(*(send() for _ in range(times))))


async def test_a_start_repeated_concurrently_starts_one_process(stack: Stack) -> None:
    headers = stack.mes | {"Idempotency-Key": "erp-po-race-1"}
    responses = await fire(
        5, lambda: stack.http.post("/api/v1/processes/purchase", json=PURCHASE, headers=headers)
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201], [
        r.text for r in responses
    ]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    details = sorted(r.json()["detail"] for r in responses)
    assert details == ["started"] + ["started before with this key; nothing new"] * 4, details
    (purchase,) = ids
    await open_task(stack, Task.workflow_id == f"{purchase}.approval")
    assert await count(stack, Process, Process.id == purchase) == 1
    assert await count(stack, PurchaseOrder, PurchaseOrder.process_id == purchase) == 1
    assert len(await audit_rows(stack, "process.started", purchase)) == 1
    assert await count(stack, Task, Task.process_id == purchase) == 1


async def receipt_counts(stack: Stack, purchase: str) -> tuple[int, int, int, int]:
    """(receipts, lots, receipt movements, goods_received audit rows) of the purchase."""
    async with stack.sessions() as session:
        number = await session.scalar(
            select(PurchaseOrder.number).where(PurchaseOrder.process_id == purchase)
        )
        assert number is not None
    lots = select(Receipt.lot_id).where(Receipt.process_id == purchase)
    return (
        await count(stack, Receipt, Receipt.process_id == purchase),
        await count(stack, Lot, Lot.id.in_(lots)),
        await count(
            stack,
            InventoryMovement,
            InventoryMovement.kind == "receipt",
            InventoryMovement.process_id == purchase,
        ),
        len(await audit_rows(stack, "purchase.goods_received", number)),
    )


async def test_goods_received_twice_makes_one_receipt_and_one_lot(stack: Stack) -> None:
    """A real purchase: its signed approval raced by two buyers; each goods receipt delivered
    several times at once and once more later (by Idempotency-Key, and by the body's event_id);
    two different receipts racing for the last open quantity; then the signed QA release of the
    lot raced by two QA people."""
    started = await stack.http.post(
        "/api/v1/processes/purchase", json=PURCHASE, headers=stack.mes | {"Idempotency-Key": "p1"}
    )
    assert started.status_code == 201, started.text
    purchase = started.json()["id"]
    frank, judy, grace = await tokens(stack, "frank", "judy", "grace")
    approval = await open_task(stack, Task.workflow_id == f"{purchase}.approval")
    buyers = [Contender("frank", frank, "approve", {}), Contender("judy", judy, "approve", {})]
    race = await race_decision(stack, approval.id, buyers, sign=True)
    await assert_decided_once(stack, approval.id, race)
    await assert_signed_once(stack, approval, race, "approved")
    await confirmed(stack, purchase)
    url = f"/api/v1/processes/{purchase}/events/goods-received"

    by_key = {"part_number": "TB-0150", "quantity": "1000", "supplier_lot": "NK-A"}
    keyed = grace | {"Idempotency-Key": "dock-2-scan-11"}
    lot_a = (await delivered_repeatedly(stack, url, by_key, keyed, "dock-2-scan-11", 4))[
        "lot_number"
    ]
    assert await receipt_counts(stack, purchase) == (1, 1, 1, 1)
    with_id = {"part_number": "TB-0150", "quantity": "500", "supplier_lot": "NK-B"} | {
        "event_id": "edi-856-0042"
    }
    lot_b = (await delivered_repeatedly(stack, url, with_id, stack.mes, "edi-856-0042", 3))[
        "lot_number"
    ]
    assert lot_b != lot_a
    assert await receipt_counts(stack, purchase) == (2, 2, 2, 2)
    assert await received_quantity(stack, purchase) == Decimal(1500)

    await last_quantity_raced(stack, url, grace, purchase)
    await release_raced(stack, purchase, lot_a)


async def delivered_repeatedly(
    stack: Stack,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    event_id: str,
    times: int,
) -> dict[str, str]:
    """The same event `times` at once, then once more: all 200, exactly one taken now, every
    answer the same; returns the answer's data."""
    first = await fire(times, lambda: stack.http.post(url, json=body, headers=headers))
    later = await stack.http.post(url, json=body, headers=headers)
    answers = [r.json() for r in first + [later]]
    assert [r.status_code for r in first + [later]] == [200] * (times + 1), answers
    assert sorted(a["repeated"] for a in answers) == [False] + [True] * times
    assert answers[-1]["repeated"] is True  # the later one too
    assert {a["event_id"] for a in answers} == {event_id}
    data = [a["data"] for a in answers]
    assert all(d == data[0] for d in data), data
    result: dict[str, str] = data[0]
    return result


async def received_quantity(stack: Stack, purchase: str) -> Decimal:
    async with stack.sessions() as session:
        total = await session.scalar(
            select(func.sum(Receipt.quantity)).where(Receipt.process_id == purchase)
        )
    return Decimal(total or 0)


async def last_quantity_raced(stack: Stack, url: str, grace: dict[str, str], purchase: str) -> None:
    """500 is still open: two different receipts of 300 at once. One is taken, the other is
    refused (409, saying what is still open), never both."""
    responses = await asyncio.gather(
        *(
            stack.http.post(
                url,
                json={"part_number": "TB-0150", "quantity": "300", "supplier_lot": f"NK-{k}"},
                headers=grace | {"Idempotency-Key": f"dock-3-{k}"},
            )
            for k in ("C", "D")
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    detail = refused.json()["detail"]
    assert "only 200 " in detail and "still open" in detail, detail  # what the winner left
    assert await receipt_counts(stack, purchase) == (3, 3, 3, 3)
    assert await received_quantity(stack, purchase) == Decimal(1800)


async def confirmed(stack: Stack, purchase: str) -> None:
    """The supplier's confirmation, once the PO is issued (the approval's effect)."""

    async def attempt() -> httpx.Response | None:
        response = await stack.http.post(
            f"/api/v1/processes/{purchase}/events/supplier-confirmed",
            json={"promised_on": DUE, "supplier_reference": "SO-1"},
            headers=stack.mes | {"Idempotency-Key": "confirm-1"},
        )
        return response if response.status_code == 200 else None

    await eventually(attempt, timeout=60, what="the PO issued")


async def release_raced(stack: Stack, purchase: str, lot_number: str) -> None:
    """Incoming inspection passed, then bob and carol (qa) sign the release at once."""
    heidi, bob, carol = await tokens(stack, "heidi", "bob", "carol")
    inspection = await open_task(stack, Task.workflow_id == f"{purchase}.inspect-1")
    passed = await decide(stack, inspection.id, heidi, "pass", sample_size="80", defects="0")
    assert passed.status_code == 200, passed.text
    release = await open_task(stack, Task.workflow_id == f"{purchase}.release-1")
    qa = [Contender("bob", bob, "release", {}), Contender("carol", carol, "release", {})]
    race = await race_decision(stack, release.id, qa, sign=True)
    await assert_decided_once(stack, release.id, race)
    await assert_signed_once(stack, release, race, "released")

    async def released() -> list[LotStatusChange] | None:
        async with stack.sessions() as session:
            lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
            assert lot is not None
            history = list(
                await session.scalars(
                    select(LotStatusChange)
                    .where(LotStatusChange.lot_id == lot.id)
                    .order_by(LotStatusChange.id)
                )
            )
        return history if lot.status == "RELEASED" else None

    history = await eventually(released, timeout=30, what=f"{lot_number} released")
    assert [(h.from_status, h.to_status) for h in history] == [
        (None, "QUARANTINE"),
        ("QUARANTINE", "RELEASED"),
    ]
    assert history[-1].changed_by == race.winner.name


# ---------------------------------------------------------------- 4. a hold racing a shipment


# seconds around the moment both would commit together (measured in each run, see the test)
RACING_OFFSETS = (-0.15, -0.05, 0.0, 0.05, 0.15)


@dataclass(frozen=True)
class Picked:
    """A shipment whose pick task names one RELEASED lot, waiting for the warehouse."""

    shipment: str
    lot_number: str
    task_id: int


async def released_lot(stack: Stack) -> tuple[str, str]:
    """A part of its own with one RELEASED lot of 40 (no expiry): a shipment of 40 takes it
    whole, and nothing else can be picked instead of it."""
    n = next(_parts)
    part = f"RACE-{n:03d}"
    async with stack.sessions() as session, session.begin():
        item = Item(part_number=part, revision="A", description="Race set", status="effective")
        session.add(item)
        await session.flush()
        lot = Lot(
            lot_number=f"RL-{n:05d}",
            item_id=item.id,
            part_number=part,
            quantity=Decimal(40),
            status="RELEASED",
            origin="production",
        )
        session.add(lot)
    return part, lot.lot_number


async def picked(stack: Stack) -> Picked:
    part, lot_number = await released_lot(stack)
    started = await stack.http.post(
        "/api/v1/processes/shipment",
        json={"customer_code": "CUS-0003", "lines": [{"part_number": part, "quantity": "40"}]},
        headers=stack.mes,
    )
    assert started.status_code == 201, started.text
    shipment = started.json()["id"]
    pick = await open_task(stack, Task.workflow_id == f"{shipment}.pick-1")
    assert lot_number in str(pick.spec["context"])  # the pick names our lot
    return Picked(shipment, lot_number, pick.id)


@dataclass(frozen=True)
class HoldAndShip:
    """The two contenders: the warehouse ships the pick, and an NC names its lot."""

    stack: Stack
    grace: dict[str, str]
    heidi: dict[str, str]

    async def ship(self, target: Picked) -> None:
        response = await decide(
            self.stack, target.task_id, self.grace, "shipped", carrier="DHL", tracking="JD-7"
        )
        assert response.status_code == 200, response.text

    async def hold(self, target: Picked) -> str:
        response = await self.stack.http.post(
            "/api/v1/processes/nonconformance",
            json=NC_REPORT | {"lots": [target.lot_number]},
            headers=self.heidi,
        )
        assert response.status_code == 201, response.text
        nc: str = response.json()["id"]
        return nc

    async def one_then_other(self, target: Picked, first: str) -> tuple[str, float]:
        """`first` ('hold' or 'ship') alone until its effect is committed, then the other.
        Returns the NC's id and how long the first took to take effect (seconds)."""
        effect = "ON_HOLD" if first == "hold" else "SHIPPED"
        began = time.monotonic()
        nc = await self.hold(target) if first == "hold" else None
        if first == "ship":
            await self.ship(target)
        await eventually(
            lambda: lot_is(self.stack, target.lot_number, effect),
            timeout=60,
            what=f"{target.lot_number} {effect}",
        )
        took = time.monotonic() - began
        if nc is None:
            nc = await self.hold(target)
        else:
            await self.ship(target)
        return nc, took

    async def both(self, target: Picked, ship_after: float) -> str:
        """The NC at once and the shipment `ship_after` seconds later (before, if negative)."""

        async def ship() -> None:
            await asyncio.sleep(max(ship_after, 0))
            await self.ship(target)

        async def hold() -> str:
            await asyncio.sleep(max(-ship_after, 0))
            return await self.hold(target)

        nc, _ = await asyncio.gather(hold(), ship())
        return nc


async def lot_is(stack: Stack, lot_number: str, status: str) -> bool:
    async with stack.sessions() as session:
        found = await session.scalar(select(Lot.status).where(Lot.lot_number == lot_number))
    return found == status


async def assert_never_both(stack: Stack, target: Picked, nc: str) -> str:
    """Once both processes have settled: either the lot is held and nothing of it shipped (the
    warehouse told why, naming the NC), or it shipped and the NC records it as not held because
    it was shipped. The lot's status history agrees, with no step skipped."""
    shipment, lot_number = target.shipment, target.lot_number
    nc_lot = await settled_nc_lot(stack, nc)
    refusal = await settled_shipment(stack, shipment)
    async with stack.sessions() as session:
        lot = await session.scalar(select(Lot).where(Lot.lot_number == lot_number))
        assert lot is not None
        lines = await count_in(session, ShipmentLine, ShipmentLine.lot_id == lot.id)
        moved = await count_in(
            session,
            InventoryMovement,
            InventoryMovement.lot_id == lot.id,
            InventoryMovement.kind == "ship",
        )
        history = list(
            await session.scalars(
                select(LotStatusChange)
                .where(LotStatusChange.lot_id == lot.id)
                .order_by(LotStatusChange.id)
            )
        )
        number = await session.scalar(
            select(Nonconformance.number).where(Nonconformance.process_id == nc)
        )
    steps = [(h.from_status, h.to_status) for h in history]
    if nc_lot.held:
        assert (lot.status, lot.quantity, lines, moved) == ("ON_HOLD", Decimal(40), 0, 0)
        assert nc_lot.status_before == "RELEASED"
        assert steps == [(None, "RELEASED"), ("RELEASED", "ON_HOLD")]
        assert history[-1].process_id == nc
        assert f"{lot_number} is ON_HOLD ({number}" in refusal, refusal
        return "hold"
    assert (lot.status, lot.quantity, lines, moved) == ("SHIPPED", Decimal(0), 1, 1)
    assert (nc_lot.status_before, nc_lot.note.split(":")[0]) == ("SHIPPED", "SHIPPED")
    assert steps == [(None, "RELEASED"), ("RELEASED", "SHIPPED")]
    assert history[-1].process_id == shipment and refusal == ""
    return "ship"


async def settled_shipment(stack: Stack, shipment: str) -> str:
    """Once the shipment shipped ('') or told the warehouse why not (that task's title)."""

    async def probe() -> str | None:
        async with stack.sessions() as session:
            status = await session.scalar(
                select(Shipment.status).where(Shipment.process_id == shipment)
            )
            refused = await session.scalar(
                select(Task.title).where(Task.workflow_id == f"{shipment}.ship-refused-1")
            )
        if status == "shipped":
            return "shipped"
        return refused

    settled = await eventually(probe, timeout=60, what=f"{shipment} shipped or refused")
    return "" if settled == "shipped" else settled


async def settled_nc_lot(stack: Stack, nc: str) -> NcLot:
    """The NC's record of the lot, once containment has committed it."""

    async def probe() -> NcLot | None:
        async with stack.sessions() as session:
            return await session.scalar(
                select(NcLot)
                .join(Nonconformance, Nonconformance.id == NcLot.nc_id)
                .where(Nonconformance.process_id == nc)
            )

    return await eventually(probe, timeout=60, what=f"containment of {nc}")


async def test_a_hold_racing_a_shipment_of_the_same_lot_never_both(stack: Stack) -> None:
    """First each alone (the hold committed before the shipment is sent, and the other way
    round), timing how long each takes to commit; then five rounds aimed at both committing at
    about the same moment. Whoever wins, never both."""
    grace, heidi = await tokens(stack, "grace", "heidi")
    contenders = HoldAndShip(stack, grace, heidi)
    held_first, shipped_first = await asyncio.gather(picked(stack), picked(stack))
    (nc_a, to_hold), (nc_b, to_ship) = await asyncio.gather(
        contenders.one_then_other(held_first, "hold"),
        contenders.one_then_other(shipped_first, "ship"),
    )
    assert await assert_never_both(stack, held_first, nc_a) == "hold"
    assert await assert_never_both(stack, shipped_first, nc_b) == "ship"

    targets = await asyncio.gather(*(picked(stack) for _ in RACING_OFFSETS))
    aim = to_hold - to_ship  # the shipment sent this much after the NC: both commit together
    ncs = await asyncio.gather(
        *(contenders.both(t, aim + o) for t, o in zip(targets, RACING_OFFSETS, strict=True))
    )
    for target, nc in zip(targets, ncs, strict=True):
        await assert_never_both(stack, target, nc)


# ---------------------------------------------------------------- 3 (again). a delivery twice


async def test_a_delivery_confirmed_twice_is_recorded_once(stack: Stack) -> None:
    """A shipped shipment's delivery confirmed by the consignee's system and the carrier's at
    the same moment (two event ids), each delivered three times: one event is taken, its repeats
    answer its result, the other is refused as already recorded; one delivery row."""
    grace, heidi = await tokens(stack, "grace", "heidi")
    target = await picked(stack)
    await HoldAndShip(stack, grace, heidi).ship(target)
    await in_transit(stack, target.shipment)
    url = f"/api/v1/processes/{target.shipment}/events/delivered"
    body = {"delivered_on": date.today().isoformat(), "received_by": "Central Pharmacy"}
    keys = ("pod-88121", "carrier-scan-9")
    sent = await asyncio.gather(
        *(
            stack.http.post(url, json=body, headers=stack.mes | {"Idempotency-Key": key})
            for key in keys * 3
        )
    )
    by_key = {key: [r for r, k in zip(sent, keys * 3, strict=True) if k == key] for key in keys}
    taken = [k for k, rs in by_key.items() if all(r.status_code == 200 for r in rs)]
    assert len(taken) == 1, [(r.status_code, r.text) for r in sent]
    winner, loser = taken[0], next(k for k in keys if k != taken[0])
    assert sorted(r.json()["repeated"] for r in by_key[winner]) == [False, True, True]
    for refused in by_key[loser]:
        assert refused.status_code == 409, refused.text
        assert "already recorded" in refused.json()["detail"], refused.text
    # sent again once the shipment has closed (the delivery was its last step): still a repeat
    closed = await closed_process(stack, stack.mes, target.shipment)
    assert closed["status"] == "completed", closed
    again = await stack.http.post(url, json=body, headers=stack.mes | {"Idempotency-Key": winner})
    assert again.status_code == 200, again.text
    assert again.json()["repeated"] is True and again.json()["data"]["status"] == "delivered"
    never = await stack.http.post(url, json=body, headers=stack.mes | {"Idempotency-Key": loser})
    assert never.status_code == 409 and "accepts no more events" in never.json()["detail"]
    async with stack.sessions() as session:
        number = await session.scalar(
            select(Shipment.number).where(Shipment.process_id == target.shipment)
        )
    assert number is not None
    delivered = await audit_rows(stack, "shipment.delivered", number)
    assert [a.after["event_id"] for a in delivered if a.after] == [winner]
    refusals = await audit_rows(stack, "event.refused", target.shipment)
    assert [a.after["event_id"] for a in refusals if a.after] == [loser] * 4  # never the winner


async def in_transit(stack: Stack, shipment: str) -> None:
    """The shipment's workflow has taken in that it shipped (it then accepts `delivered`)."""

    async def probe() -> bool:
        async with stack.sessions() as session:
            step = await session.scalar(select(Process.current_step).where(Process.id == shipment))
        return step == "in-transit"

    await eventually(probe, timeout=60, what=f"{shipment} in transit")
