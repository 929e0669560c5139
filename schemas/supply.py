"""Procure-to-deliver payloads: what starts each process, the external events each accepts, and
what each returns. Workflows, activities and the API all use these."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from schemas.wording import said

PartNumber = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
Code = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9._-]+$")
Quantity = Field(gt=0, max_digits=14, decimal_places=4)


class PurchaseLine(BaseModel):
    part_number: str = PartNumber
    quantity: Decimal = Quantity
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=4)


class PurchaseRequest(BaseModel):
    """Start a purchase: a requisition for one supplier; approval follows the DoA matrix."""

    process_id: str = ""  # set by the API (or the parent workflow) before the start
    requester: str = ""
    supplier_code: str = Code
    lines: list[PurchaseLine] = Field(min_length=1, max_length=50)
    due_on: date
    buyer_note: Annotated[str, Field(max_length=2000)] = ""
    customer_order: str | None = None  # the customer order this buys for (parent process)
    external_id: Annotated[str | None, Field(max_length=200)] = None


class PurchaseResult(BaseModel):
    process_id: str
    number: str
    status: str  # received | rejected | cancelled
    lots: list[str] = []  # lot numbers received
    released_lots: list[str] = []
    held_lots: list[str] = []


class WorkOrderRequest(BaseModel):
    """Start a work order for a finished part (its effective revision is made)."""

    process_id: str = ""
    requester: str = ""
    part_number: str = PartNumber
    quantity: Decimal = Quantity
    due_on: date
    customer_order: str | None = None
    external_id: Annotated[str | None, Field(max_length=200)] = None


class WorkOrderResult(BaseModel):
    process_id: str
    number: str
    status: str  # released | on_hold | rejected | cancelled (while running: the current step)
    lot_number: str | None = None  # the finished lot
    quantity: Decimal = Decimal(0)
    serials: int = 0
    reason: str = ""  # why it was rejected, held or cancelled


class ShipmentLineRequest(BaseModel):
    part_number: str = PartNumber
    quantity: Decimal = Quantity


class ShipmentRequest(BaseModel):
    """Ship released finished goods to a customer (the consignee)."""

    process_id: str = ""
    requester: str = ""
    customer_code: str = Code
    lines: list[ShipmentLineRequest] = Field(min_length=1, max_length=50)
    customer_order: str | None = None
    expected_transit_days: Annotated[int, Field(ge=1, le=90)] = 5
    external_id: Annotated[str | None, Field(max_length=200)] = None


class ShipmentResult(BaseModel):
    process_id: str
    number: str
    status: str  # delivered | rejected | cancelled (while running: the current step)
    lots: list[str] = []
    expected_delivery_on: date | None = None
    delivered_on: date | None = None
    reason: str = ""  # why it was rejected or cancelled


class ProcureToDeliverRequest(BaseModel):
    """A customer order: check stock, purchase what is short, produce, ship, deliver."""

    process_id: str = ""
    requester: str = ""
    customer_code: str = Code
    part_number: str = PartNumber
    quantity: Decimal = Quantity
    due_on: date
    customer_reference: Annotated[str, Field(max_length=100)] = ""
    external_id: Annotated[str | None, Field(max_length=200)] = None


class ProcureToDeliverResult(BaseModel):
    process_id: str
    number: str
    status: str  # delivered | cancelled | failed
    purchases: list[str] = []
    work_order: str | None = None
    shipment: str | None = None


# ---------------------------------------------------------------- external events
# Each arrives as `POST /api/v1/processes/{id}/events/{event}` and reaches the workflow as the
# update "event" with a ProcessEvent. A repeated event_id returns the first answer unchanged.


class SupplierConfirmation(BaseModel):
    """event `supplier-confirmed`: the supplier accepted the PO and promised a date."""

    promised_on: date
    supplier_reference: Annotated[str, Field(max_length=60)] = ""


class AdvanceShipNotice(BaseModel):
    """event `asn`: the supplier shipped; the goods are expected on `expected_on`."""

    asn_reference: str = Field(min_length=1, max_length=60)
    expected_on: date
    carrier: Annotated[str, Field(max_length=60)] = ""


class GoodsReceipt(BaseModel):
    """event `goods-received`: goods counted in at receiving; one receipt makes one lot in
    QUARANTINE. The supplier's lot and dates may come from a GS1 label (the API parses it)."""

    part_number: str = PartNumber
    quantity: Decimal = Quantity
    supplier_lot: str = Field(min_length=1, max_length=60)
    manufactured_on: date | None = None
    expires_on: date | None = None
    gs1: str = Field("", max_length=200)  # the label as scanned, kept with the receipt

    @field_validator("expires_on")
    @classmethod
    def _after_manufacture(cls, value: date | None, info: ValidationInfo) -> date | None:
        made = info.data.get("manufactured_on")
        if value is not None and made is not None and value <= made:
            raise ValueError(said("the expiry date must be after the manufacture date"))
        return value


class DeliveryConfirmation(BaseModel):
    """event `delivered`: the consignee received the shipment."""

    delivered_on: date
    received_by: Annotated[str, Field(max_length=200)] = ""
    note: Annotated[str, Field(max_length=2000)] = ""


EVENTS: dict[str, dict[str, type[BaseModel]]] = {
    "purchase": {
        "supplier-confirmed": SupplierConfirmation,
        "asn": AdvanceShipNotice,
        "goods-received": GoodsReceipt,
    },
    "shipment": {"delivered": DeliveryConfirmation},
}

# Which people may send an event by hand (systems need the scope events:send).
EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "supplier-confirmed": ("buyer", "purchasing-manager"),
    "asn": ("buyer", "purchasing-manager", "warehouse"),
    "goods-received": ("warehouse",),
    "delivered": ("warehouse", "buyer"),
}


class ProcessEvent(BaseModel):
    """The update "event": an external event after the API checked its data and its sender."""

    event: str
    event_id: str = Field(min_length=1, max_length=200)
    sent_by: str
    data: dict[str, Any]


class EventResult(BaseModel):
    process_id: str
    event: str
    event_id: str
    repeated: bool = False  # True when this event_id was seen before: nothing changed
    message: str
    # the message's English template and values (workflows.wording.answered), None in older
    # answers: the API answers in the caller's language, the pages in the reader's
    message_template: str | None = None
    message_values: dict[str, str | int | float] | None = None
    data: dict[str, str] = {}  # e.g. the lot number a receipt created


# ---------------------------------------------------------------- trace (erp/trace.py)


class TraceLot(BaseModel):
    lot_number: str
    part_number: str
    revision: str
    status: str
    quantity: Decimal  # on hand now
    supplier_code: str | None = None
    supplier_lot: str | None = None
    expires_on: date | None = None
    depth: int  # 0 for the lot traced from


class TraceEdge(BaseModel):
    """parent lot → child lot: `quantity` of the parent went into the child."""

    parent: str
    child: str
    quantity: Decimal
    work_order: str | None = None


class TraceShipment(BaseModel):
    shipment: str
    lot_number: str
    quantity: Decimal
    consignee_code: str
    consignee_name: str
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


class TraceResult(BaseModel):
    """Every lot reached from `root` (forward: what it went into; backward: what it came from),
    the edges between them, and (forward) the shipments with their consignees at the leaves."""

    root: str
    direction: str  # forward | backward
    serial: str | None = None  # when traced from a serial's UDI
    lots: list[TraceLot]
    edges: list[TraceEdge]
    shipments: list[TraceShipment] = []


class Gs1Label(BaseModel):
    """What a GS1 element string (a supplier's label or our UDI) says."""

    gtin: str | None = None
    lot: str | None = None
    serial: str | None = None
    expires_on: date | None = None
    manufactured_on: date | None = None
