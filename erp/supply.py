"""Procure-to-deliver tables: customers and their orders, the delegation-of-authority matrix, lot
numbering, receipts, inspections, inventory movements, genealogy, serials, shipments, scorecards.

The lot status machine and the rule "only a RELEASED, unexpired lot is consumed or shipped" live in
the database (migration 0003), not only here:
- `lot_status_transition` lists every allowed (from, to); a trigger refuses any other UPDATE of
  `lot.status` (SQLSTATE LL001) and writes `lot_status_change` for every change.
- An `issue` or `ship` row in `inventory_movement` is refused (SQLSTATE LL002) unless its lot is
  RELEASED, not expired, (for `issue`) of the effective revision, and holds the quantity (LL003);
  the trigger then decrements the lot, which becomes CONSUMED or SHIPPED when nothing is left.
- A genealogy edge and a shipment line each point at the movement that made them, so neither
  can be written without passing that check.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from erp.models import TZ, Base

MOVEMENT_KINDS = ("receipt", "output", "issue", "ship", "scrap", "return", "adjust")
# SQLSTATEs raised by the triggers of migration 0003 (class "LL" is ours)
LOT_TRANSITION_REFUSED = "LL001"
LOT_NOT_AVAILABLE = "LL002"
LOT_QUANTITY_SHORT = "LL003"


class Customer(Base):
    """A customer and consignee: where shipments go and recall notices are sent."""

    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    webhook_url: Mapped[str] = mapped_column(String(300), default="")
    # the customer accepts a lot only with at least this many days of shelf life left
    min_shelf_life_days: Mapped[int] = mapped_column(default=0)


class CustomerOrder(Base):
    __tablename__ = "customer_order"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    process_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    part_number: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    due_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(30), default="received")
    requested_by: Mapped[str | None] = mapped_column(String(64))
    external_reference: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class DoaThreshold(Base):
    """Delegation of authority: a purchase of amount A needs, in order, the approver group of every
    level up to and including the first whose `up_to_amount` is at least A (null: no limit)."""

    __tablename__ = "doa_threshold"
    level: Mapped[int] = mapped_column(primary_key=True)
    up_to_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    approver_group: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")


class LotNumberRule(Base):
    """How new lot numbers are made, per origin (receipt, production). Tokens: {YYYY} {YY} {MM}
    {DD} {PART} {SEQ:n} (the shared sequence lot_number_seq, zero-padded to n digits)."""

    __tablename__ = "lot_number_rule"
    origin: Mapped[str] = mapped_column(String(20), primary_key=True)
    pattern: Mapped[str] = mapped_column(String(100))


class Receipt(Base):
    """Goods received against a purchase order line: each receipt makes one lot."""

    __tablename__ = "receipt"
    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_line_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order_line.id"), index=True
    )
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), unique=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    received_by: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    on_time: Mapped[bool] = mapped_column()
    asn_reference: Mapped[str] = mapped_column(String(60), default="")
    gs1: Mapped[str] = mapped_column(String(200), default="")  # the label scanned, as given
    process_id: Mapped[str | None] = mapped_column(String(200), index=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)  # idempotency


class Inspection(Base):
    __tablename__ = "inspection"
    __table_args__ = (
        CheckConstraint("kind IN ('incoming', 'in_process', 'final')", name="kind"),
        CheckConstraint("outcome IN ('pass', 'fail')", name="outcome"),
        UniqueConstraint("idempotency_key", name="uq_inspection_idempotency_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    sample_size: Mapped[int] = mapped_column(default=0)
    accept_number: Mapped[int] = mapped_column(default=0)
    defects: Mapped[int] = mapped_column(default=0)
    results: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    outcome: Mapped[str] = mapped_column(String(10))
    inspector: Mapped[str] = mapped_column(String(64))
    inspected_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    process_id: Mapped[str | None] = mapped_column(String(200), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(300))


class LotStatusTransition(Base):
    """The lot status machine: every allowed (from, to). The trigger refuses anything else."""

    __tablename__ = "lot_status_transition"
    from_status: Mapped[str] = mapped_column(String(20), primary_key=True)
    to_status: Mapped[str] = mapped_column(String(20), primary_key=True)


class LotStatusChange(Base):
    """Written by the trigger on lot, never by the application."""

    __tablename__ = "lot_status_change"
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(64), default="system")
    process_id: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class InventoryMovement(Base):
    __tablename__ = "inventory_movement"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('receipt', 'output', 'issue', 'ship', 'scrap', 'return', 'adjust')",
            name="kind",
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("idempotency_key", name="uq_inventory_movement_idempotency_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    reference: Mapped[str] = mapped_column(String(60), default="")  # PO, WO or shipment number
    process_id: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(64), default="system")
    idempotency_key: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class GenealogyEdge(Base):
    """Parent lot → child lot: `quantity` of the parent went into the child in a work order."""

    __tablename__ = "genealogy_edge"
    __table_args__ = (
        UniqueConstraint(
            "parent_lot_id", "child_lot_id", "work_order_id", name="uq_genealogy_edge_parent_child"
        ),
        CheckConstraint("parent_lot_id <> child_lot_id", name="not_self"),
        Index("ix_genealogy_edge_child", "child_lot_id", "parent_lot_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    child_lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"), index=True)
    movement_id: Mapped[int] = mapped_column(ForeignKey("inventory_movement.id"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class SerialNumber(Base):
    __tablename__ = "serial_number"
    __table_args__ = (
        UniqueConstraint("lot_id", "serial", name="uq_serial_number_lot_serial"),
        Index("ix_serial_number_serial", "serial"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    serial: Mapped[str] = mapped_column(String(20))
    udi: Mapped[str] = mapped_column(String(120))  # (01)GTIN(17)expiry(10)lot(21)serial
    status: Mapped[str] = mapped_column(String(20), default="in_stock")
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipment.id"))


class Shipment(Base):
    __tablename__ = "shipment"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    process_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    customer_order_id: Mapped[int | None] = mapped_column(ForeignKey("customer_order.id"))
    status: Mapped[str] = mapped_column(String(20), default="planned")
    carrier: Mapped[str] = mapped_column(String(60), default="")
    tracking: Mapped[str] = mapped_column(String(100), default="")
    requested_by: Mapped[str | None] = mapped_column(String(64))
    expected_delivery_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    shipped_at: Mapped[datetime | None] = mapped_column(TZ)
    delivered_at: Mapped[datetime | None] = mapped_column(TZ)
    delivery_note: Mapped[str] = mapped_column(Text, default="")


class ShipmentLine(Base):
    """What left in a shipment: lot, quantity and consignee on every line."""

    __tablename__ = "shipment_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipment.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    part_number: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    consignee_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    movement_id: Mapped[int] = mapped_column(ForeignKey("inventory_movement.id"), unique=True)


class SupplierScorecard(Base):
    """Counters updated in the same transaction as every receipt and incoming inspection."""

    __tablename__ = "supplier_scorecard"
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), primary_key=True)
    receipts: Mapped[int] = mapped_column(default=0)
    on_time_receipts: Mapped[int] = mapped_column(default=0)
    inspections: Mapped[int] = mapped_column(default=0)
    accepted_inspections: Mapped[int] = mapped_column(default=0)
    scars: Mapped[int] = mapped_column(default=0)  # supplier corrective action requests (NC issue)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


CUSTOMER_ORDER_NUMBER = "customer_order_seq"
PO_NUMBER = "purchase_order_seq"
WO_NUMBER = "work_order_seq"
SHIPMENT_NUMBER = "shipment_seq"
LOT_NUMBER = "lot_number_seq"
