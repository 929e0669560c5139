"""Master data a change acts on — items, BOMs, routings, documents, suppliers, the approved
supplier list — and the stock, orders and work orders an impact assessment must see.

Revisions are rows; at most one revision of a part number (or document number) is EFFECTIVE at a
time, which a partial unique index enforces.
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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from erp.models import TZ, Base

REVISION_STATUSES = ("draft", "effective", "obsolete")


class Item(Base):
    """One revision of a part."""

    __tablename__ = "item"
    __table_args__ = (
        UniqueConstraint("part_number", "revision", name="uq_item_part_revision"),
        Index(
            "uq_item_one_effective",
            "part_number",
            unique=True,
            postgresql_where=text("status = 'effective'"),
        ),
        CheckConstraint("status IN ('draft', 'effective', 'obsolete')", name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    part_number: Mapped[str] = mapped_column(String(40), index=True)
    revision: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(String(300))
    device_class: Mapped[str] = mapped_column(String(10), default="none")  # I, II, III, none
    gtin: Mapped[str | None] = mapped_column(String(14))
    shelf_life_days: Mapped[int | None] = mapped_column()
    storage_condition: Mapped[str] = mapped_column(String(100), default="")
    lot_controlled: Mapped[bool] = mapped_column(default=True)
    serial_controlled: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    effective_on: Mapped[date | None] = mapped_column(Date)
    obsolete_on: Mapped[date | None] = mapped_column(Date)
    change_id: Mapped[str | None] = mapped_column(String(200))  # the change that made it
    standard_cost: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))  # EUR/uom


class BomLine(Base):
    """A component of one item revision."""

    __tablename__ = "bom_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    component_part_number: Mapped[str] = mapped_column(String(40), index=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    uom: Mapped[str] = mapped_column(String(10), default="ea")


class RoutingStep(Base):
    __tablename__ = "routing_step"
    __table_args__ = (UniqueConstraint("item_id", "seq", name="uq_routing_step_item_seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    seq: Mapped[int] = mapped_column()
    operation: Mapped[str] = mapped_column(String(200))
    work_center: Mapped[str] = mapped_column(String(60))


class Document(Base):
    """One version of a controlled document: SOP, specification, drawing, label, IFU."""

    __tablename__ = "document"
    __table_args__ = (
        UniqueConstraint("number", "version", name="uq_document_number_version"),
        Index(
            "uq_document_one_effective",
            "number",
            unique=True,
            postgresql_where=text("status = 'effective'"),
        ),
        CheckConstraint("status IN ('draft', 'effective', 'obsolete')", name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300))
    doc_type: Mapped[str] = mapped_column(String(30))  # sop, specification, drawing, label, ifu
    status: Mapped[str] = mapped_column(String(20), default="draft")
    effective_on: Mapped[date | None] = mapped_column(Date)
    obsolete_on: Mapped[date | None] = mapped_column(Date)
    change_id: Mapped[str | None] = mapped_column(String(200))


class DocumentItem(Base):
    """A document (any version) references a part number: labels, specifications, IFUs."""

    __tablename__ = "document_item"
    document_number: Mapped[str] = mapped_column(String(40), primary_key=True)
    part_number: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class Supplier(Base):
    __tablename__ = "supplier"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), default="")
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | disqualified


class SupplierCertificate(Base):
    __tablename__ = "supplier_certificate"
    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))  # ISO 13485:2016, ISO 9001:2015 ...
    number: Mapped[str] = mapped_column(String(60))
    expires_on: Mapped[date] = mapped_column(Date)


class AslEntry(Base):
    """Approved supplier list: may this supplier deliver this part?"""

    __tablename__ = "asl_entry"
    __table_args__ = (
        UniqueConstraint("supplier_id", "part_number", name="uq_asl_entry_supplier_part"),
        CheckConstraint("status IN ('approved', 'conditional', 'disqualified')", name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"))
    part_number: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20))
    since_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(300), default="")
    change_id: Mapped[str | None] = mapped_column(String(200))


class PurchaseOrder(Base):
    """A requisition that becomes a purchase order once approved and issued (one row throughout:
    statuses requisition → approved → issued → confirmed → partially_received → received →
    closed, or rejected / cancelled)."""

    __tablename__ = "purchase_order"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    status: Mapped[str] = mapped_column(String(30), default="draft")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    process_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    due_on: Mapped[date | None] = mapped_column(Date)
    promised_on: Mapped[date | None] = mapped_column(Date)  # the supplier's confirmation
    supplier_reference: Mapped[str] = mapped_column(String(60), default="")
    asn_reference: Mapped[str] = mapped_column(String(60), default="")
    customer_order_id: Mapped[int | None] = mapped_column(ForeignKey("customer_order.id"))
    approved_at: Mapped[datetime | None] = mapped_column(TZ)
    issued_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"), index=True)
    part_number: Mapped[str] = mapped_column(String(40), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    received_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    due_on: Mapped[date | None] = mapped_column(Date)
    line_no: Mapped[int] = mapped_column(default=1)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    uom: Mapped[str] = mapped_column(String(10), default="ea")


LOT_STATUSES = (
    "QUARANTINE",
    "RELEASED",
    "ON_HOLD",
    "REJECTED",
    "CONSUMED",
    "SHIPPED",
    "RECALLED",
    "EXPIRED",
)


class Lot(Base):
    """A lot: its status follows the machine in table lot_status_transition, which a trigger
    enforces; its quantity is on hand, decremented only by inventory movements (erp/supply.py)."""

    __tablename__ = "lot"
    __table_args__ = (
        CheckConstraint(
            "status IN ('QUARANTINE', 'RELEASED', 'ON_HOLD', 'REJECTED', 'CONSUMED', 'SHIPPED',"
            " 'RECALLED', 'EXPIRED')",
            name="status",
        ),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_number: Mapped[str] = mapped_column(String(60), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    part_number: Mapped[str] = mapped_column(String(40), index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"))
    supplier_lot: Mapped[str | None] = mapped_column(String(60))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    uom: Mapped[str] = mapped_column(String(10), default="ea")
    status: Mapped[str] = mapped_column(String(20), default="QUARANTINE")
    manufactured_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    hold_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    # set together with status; the trigger copies them into lot_status_change
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_changed_by: Mapped[str] = mapped_column(String(64), default="system")
    status_process_id: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(20), default="stock")  # receipt | production | stock
    purchase_order_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_order_line.id"), index=True
    )
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_order.id"), index=True)
    received_quantity: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))  # as created


class WorkOrder(Base):
    __tablename__ = "work_order"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    part_number: Mapped[str] = mapped_column(String(40), index=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    status: Mapped[str] = mapped_column(String(20), default="planned")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    process_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    due_on: Mapped[date | None] = mapped_column(Date)
    produced_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    customer_order_id: Mapped[int | None] = mapped_column(ForeignKey("customer_order.id"))
    released_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


OPEN_PO_STATUSES = ("draft", "issued", "confirmed", "partially_received")
OPEN_WO_STATUSES = ("planned", "released", "in_progress")
IN_STOCK_LOT_STATUSES = ("QUARANTINE", "RELEASED", "ON_HOLD")

_ = Any
