"""Activities of a shipment: register it, pick released finished lots (FEFO, the customer's
minimum remaining shelf life), ship them in one transaction (movements, lines with consignee,
serials, ship notice), record the delivery.

Each write is one transaction with its audit row, keyed by the workflow id and step (and the
event id for a delivery), so a retried activity writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.audit_context import audit
from activities.records import (
    find_customer_order,
    lot_picks,
    next_number,
    process_record,
    recorded,
    recorded_answer,
    required_process_record,
    write_moving_lots,
)
from erp.db import database_now
from erp.lots import LotRefused, move, pick_fefo, shippable_lots
from erp.master_data import Item, Lot
from erp.models import Outbox
from erp.production import database_today, plan_issue, ship_serials
from erp.supply import SHIPMENT_NUMBER, Customer, Shipment, ShipmentLine
from schemas.production import LotPick, Shortage, quantity_text
from schemas.shipping import (
    CancelShipmentInput,
    Picking,
    PickShipmentInput,
    RecordDeliveryInput,
    RegisterShipmentInput,
    RegisterShipmentResult,
    ShipGoodsInput,
    ShipmentRecord,
    ShippedLine,
    quantities_by_part,
    shortages_said,
)
from workflows.wording import refuse, said, said_again, wording


async def _shipment(session: AsyncSession, process_id: str) -> tuple[Shipment, Customer]:
    shipment = await required_process_record(
        session, Shipment, process_id, said("shipment"), lock=True
    )
    return shipment, await session.get_one(Customer, shipment.customer_id)


async def _uoms(session: AsyncSession, lot_ids: list[int]) -> dict[int, str]:
    rows = await session.execute(select(Lot.id, Lot.uom).where(Lot.id.in_(lot_ids)))
    return {lot_id: uom for lot_id, uom in rows}


class ShipmentActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.register_shipment,
            self.pick_shipment,
            self.ship_goods,
            self.record_delivery,
            self.cancel_shipment,
        ]

    @activity.defn(name="register_shipment")
    async def register_shipment(self, data: RegisterShipmentInput) -> RegisterShipmentResult:
        request = data.request
        key = f"{data.process_id}:shipment-registered"
        async with self._sessions() as session, session.begin():
            existing = await process_record(session, Shipment, data.process_id)
            if existing is not None:
                consignee = await session.get_one(Customer, existing.customer_id)
                return _registered(existing.number, consignee)
            earlier = await recorded(session, key)
            if earlier is not None:  # refused before a retry: the same answer
                return RegisterShipmentResult(
                    number=earlier.entity_id,
                    refusal=earlier.reason,
                    refusal_wording=(earlier.after or {}).get("reason_wording"),
                    customer_code=request.customer_code,
                )
            number = await next_number(session, "SH", SHIPMENT_NUMBER)
            customer = await session.scalar(
                select(Customer).where(Customer.code == request.customer_code)
            )
            customer_order = await find_customer_order(session, request.customer_order)
            refusal = await _registration_refusal(session, data, customer)
            if not refusal and request.customer_order and customer_order is None:
                refusal = said(
                    "customer order %(order)s is not known", order=request.customer_order
                )
            lines = [line.model_dump(mode="json") for line in request.lines]
            if refusal:
                await audit(
                    session,
                    actor=request.requester or "system",
                    action="shipment.refused",
                    entity_type="shipment",
                    entity_id=number,
                    outcome="refused",
                    reason=refusal,
                    after=request.model_dump(mode="json"),
                    key=key,
                )
                return RegisterShipmentResult(
                    number=number,
                    refusal=refusal,
                    refusal_wording=wording(refusal),
                    customer_code=request.customer_code,
                )
            assert customer is not None
            session.add(
                Shipment(
                    number=number,
                    process_id=data.process_id,
                    customer_id=customer.id,
                    customer_order_id=customer_order.id if customer_order else None,
                    status="planned",
                    requested_by=request.requester or None,
                )
            )
            await audit(
                session,
                actor=request.requester or "system",
                action="shipment.planned",
                entity_type="shipment",
                entity_id=number,
                after={
                    "customer": customer.code,
                    "customer_order": customer_order.number if customer_order else None,
                    "lines": lines,
                    "expected_transit_days": request.expected_transit_days,
                    "status": "planned",
                },
                key=key,
            )
            return _registered(number, customer)

    @activity.defn(name="pick_shipment")
    async def pick_shipment(self, data: PickShipmentInput) -> Picking:
        """First-expiry-first-out picks of released lots with the shelf life the customer asks
        for, and what is short."""
        key = f"{data.process_id}:pick:{data.attempt}"
        async with self._sessions() as session, session.begin():
            earlier = await recorded_answer(session, key, Picking, "picking")
            if earlier is not None:
                return earlier
            shipment, customer = await _shipment(session, data.process_id)
            today = await database_today(session)
            picking = Picking()
            for part, wanted in quantities_by_part(data.lines).items():
                query = shippable_lots(
                    part, on=today, min_shelf_life_days=customer.min_shelf_life_days
                )
                picks, short = await pick_fefo(session, query, wanted)
                uoms = await _uoms(session, [p.lot_id for p in picks])
                uom = next(iter(uoms.values()), "ea")
                picking.picks.extend(lot_picks(part, uom, picks))
                if short > 0:
                    picking.shortages.append(
                        Shortage(
                            part_number=part, required=wanted, available=wanted - short, uom=uom
                        )
                    )
            shelf_life = _shelf_life_rule(customer)
            await audit(
                session,
                actor="system",
                action="shipment.stock_short" if picking.shortages else "shipment.picked",
                entity_type="shipment",
                entity_id=shipment.number,
                reason=(
                    said("%(short)s (%(rule)s)", short=picking.shortage_text(), rule=shelf_life)
                    if picking.shortages
                    else ""
                ),
                after={"picking": picking.model_dump(mode="json"), "rule": shelf_life},
                key=key,
            )
            return picking

    @activity.defn(name="ship_goods")
    async def ship_goods(self, data: ShipGoodsInput) -> ShipmentRecord:
        """One transaction: ship the lots the warehouse picked (then FEFO for anything beyond),
        a line per lot with its consignee, serials marked shipped, the shipment shipped, the ship
        notice in the outbox. A lot the database refuses (held since picking) rolls all of it
        back and comes back as a LotRefused error, audited."""
        key = f"{data.process_id}:ship:{data.attempt}"
        return await write_moving_lots(
            self._sessions,
            key,
            lambda session: self._ship(session, data, key),
            lambda session, refusal, refused_key: self._audit_refusal(
                session, data, refusal, refused_key
            ),
        )

    async def _ship(self, session: AsyncSession, data: ShipGoodsInput, key: str) -> ShipmentRecord:
        earlier = await recorded_answer(session, key, ShipmentRecord, "record")
        if earlier is not None:
            return earlier
        shipment, customer = await _shipment(session, data.process_id)
        if shipment.status != "planned":
            raise refuse(
                None,
                said(
                    "shipment %(number)s is %(status)s: it cannot be shipped again",
                    number=shipment.number,
                    status=shipment.status,
                ),
                non_retryable=True,
            )
        today = await database_today(session)
        to_ship: list[LotPick] = []
        shortages: list[Shortage] = []
        for part, wanted in quantities_by_part(data.lines).items():
            picks, short = await plan_issue(
                session,
                quantity=wanted,
                given=[p for p in data.picks if p.part_number == part],
                more=shippable_lots(
                    part, on=today, min_shelf_life_days=customer.min_shelf_life_days
                ),
            )
            to_ship.extend(lot_picks(part, "ea", picks))
            if short > 0:
                shortages.append(
                    Shortage(part_number=part, required=wanted, available=wanted - short)
                )
        if shortages:
            problem = said("stock short: %(shortages)s", shortages=shortages_said(shortages))
            record = ShipmentRecord(problem=problem, problem_wording=wording(problem))
            await self._audit_shipment(
                session, shipment, data, key, record, refused=True, problem=problem
            )
            return record
        lines = [await self._ship_lot(session, shipment, customer, data, key, p) for p in to_ship]
        now = await database_now(session)
        shipment.status = "shipped"
        shipment.shipped_at = now
        shipment.expected_delivery_on = today + timedelta(days=data.expected_transit_days)
        shipment.carrier, shipment.tracking = data.carrier, data.tracking
        record = ShipmentRecord(
            lines=lines, shipped_at=now, expected_delivery_on=shipment.expected_delivery_on
        )
        session.add(_ship_notice(shipment, customer, record))
        await self._audit_shipment(session, shipment, data, key, record, refused=False)
        return record

    async def _ship_lot(
        self,
        session: AsyncSession,
        shipment: Shipment,
        customer: Customer,
        data: ShipGoodsInput,
        key: str,
        pick: LotPick,
    ) -> ShippedLine:
        lot = await session.get_one(Lot, pick.lot_id)
        item = await session.get_one(Item, lot.item_id)
        whole = pick.quantity == pick.quantity.to_integral_value()
        if item.serial_controlled and not whole:
            raise LotRefused(
                said(
                    "lot %(lot)s is serialised: only whole units ship, not %(quantity)s",
                    lot=lot.lot_number,
                    quantity=quantity_text(pick.quantity),
                ),
                "LL003",
            )
        movement = await move(
            session,
            lot,
            kind="ship",
            quantity=pick.quantity,
            reference=shipment.number,
            actor=data.shipped_by,
            process_id=data.process_id,
            idempotency_key=f"{key}:ship:{lot.id}",
        )
        session.add(
            ShipmentLine(
                shipment_id=shipment.id,
                lot_id=lot.id,
                part_number=lot.part_number,
                quantity=pick.quantity,
                consignee_id=customer.id,
                movement_id=movement.id,
            )
        )
        serials: list[str] = []
        if item.serial_controlled:
            serials = await ship_serials(
                session, lot=lot, shipment_id=shipment.id, count=int(pick.quantity)
            )
            if len(serials) != int(pick.quantity):
                raise LotRefused(
                    said(
                        "lot %(lot)s has %(serials)s serials in stock, not %(quantity)s",
                        lot=lot.lot_number,
                        serials=len(serials),
                        quantity=quantity_text(pick.quantity),
                    ),
                    "LL003",
                )
        return ShippedLine(
            part_number=lot.part_number,
            lot_number=lot.lot_number,
            quantity=pick.quantity,
            expires_on=lot.expires_on,
            serials=serials,
        )

    async def _audit_shipment(
        self,
        session: AsyncSession,
        shipment: Shipment,
        data: ShipGoodsInput,
        key: str,
        record: ShipmentRecord,
        *,
        refused: bool,
        problem: str = "",
    ) -> None:
        await audit(
            session,
            actor=data.shipped_by,
            action="shipment.ship_refused" if refused else "shipment.shipped",
            entity_type="shipment",
            entity_id=shipment.number,
            outcome="refused" if refused else "ok",
            reason=problem or record.problem,
            after={
                "record": record.model_dump(mode="json"),
                "carrier": data.carrier,
                "tracking": data.tracking,
            },
            key=key,
        )

    async def _audit_refusal(
        self, session: AsyncSession, data: ShipGoodsInput, refusal: LotRefused, refused_key: str
    ) -> None:
        shipment, _ = await _shipment(session, data.process_id)
        await audit(
            session,
            actor=data.shipped_by,
            action="shipment.ship_refused",
            entity_type="shipment",
            entity_id=shipment.number,
            outcome="refused",
            reason=refusal.message,
            after={
                "sqlstate": refusal.sqlstate,
                "picks": [p.model_dump(mode="json") for p in data.picks],
            },
            key=refused_key,
        )

    @activity.defn(name="record_delivery")
    async def record_delivery(self, data: RecordDeliveryInput) -> None:
        key = f"{data.process_id}:delivered:{data.event_id}"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            shipment, customer = await _shipment(session, data.process_id)
            before = {"status": shipment.status}
            shipment.status = "delivered"
            # the consignee reports a day, not a moment: the day's start (UTC) stands for it
            shipment.delivered_at = datetime.combine(data.delivered_on, time(0), UTC)
            shipment.delivery_note = "; ".join(
                part
                for part in (
                    f"received by {data.received_by}" if data.received_by else "",
                    data.note,
                )
                if part
            )
            await audit(
                session,
                actor=data.recorded_by,
                action="shipment.delivered",
                entity_type="shipment",
                entity_id=shipment.number,
                reason=shipment.delivery_note,
                before=before,
                after={
                    "status": "delivered",
                    "delivered_on": data.delivered_on,
                    "consignee": customer.code,
                    "event_id": data.event_id,
                },
                key=key,
            )

    @activity.defn(name="cancel_shipment")
    async def cancel_shipment(self, data: CancelShipmentInput) -> None:
        """Cancel a shipment not shipped yet (a shipped one is what it is: nothing changes)."""
        key = f"{data.process_id}:shipment-cancelled"
        async with self._sessions() as session, session.begin():
            if await recorded(session, key) is not None:
                return
            shipment = await process_record(session, Shipment, data.process_id, lock=True)
            if shipment is None or shipment.status != "planned":
                return
            shipment.status = "cancelled"
            await audit(
                session,
                actor="system",
                action="shipment.cancelled",
                entity_type="shipment",
                entity_id=shipment.number,
                reason=said_again(data.reason_wording, data.reason),
                before={"status": "planned"},
                after={"status": "cancelled"},
                key=key,
            )


def _registered(number: str, customer: Customer) -> RegisterShipmentResult:
    return RegisterShipmentResult(
        number=number,
        customer_code=customer.code,
        customer_name=customer.name,
        min_shelf_life_days=customer.min_shelf_life_days,
    )


def _shelf_life_rule(customer: Customer) -> str:
    return said(
        "%(customer)s accepts lots with at least %(days)s days of shelf life left",
        customer=customer.code,
        days=customer.min_shelf_life_days,
    )


async def _registration_refusal(
    session: AsyncSession, data: RegisterShipmentInput, customer: Customer | None
) -> str:
    if customer is None:
        return said("customer %(customer)s is not known", customer=data.request.customer_code)
    for part, wanted in quantities_by_part(data.request.lines).items():
        items = list(await session.scalars(select(Item).where(Item.part_number == part)))
        if not items:
            return said("part %(part)s is not known", part=part)
        if any(i.serial_controlled for i in items) and wanted != wanted.to_integral_value():
            return said(
                "%(part)s is serialised: ship a whole number of units, not %(quantity)s",
                part=part,
                quantity=quantity_text(wanted),
            )
    return ""


def _ship_notice(shipment: Shipment, customer: Customer, record: ShipmentRecord) -> Outbox:
    expected = record.expected_delivery_on.isoformat() if record.expected_delivery_on else "—"
    carrier = f" by {shipment.carrier}" if shipment.carrier else ""
    tracking = f", tracking {shipment.tracking}" if shipment.tracking else ""
    return Outbox(
        channel="webhook" if customer.webhook_url else "email",
        recipient=f"customer:{customer.code}",
        subject=f"Ship notice {shipment.number}: expected {expected}"[:300],
        body=(
            f"Dear {customer.name}, shipment {shipment.number} left us{carrier}{tracking}; "
            f"expected on {expected}. " + " ".join(f"{line.describe()}." for line in record.lines)
        ),
        payload={
            "event": "shipment.shipped",
            "shipment": shipment.number,
            "consignee": customer.code,
            "carrier": shipment.carrier,
            "tracking": shipment.tracking,
            "expected_delivery_on": expected,
            "lines": [line.model_dump(mode="json") for line in record.lines],
        },
    )
