"""The recall notice to one consignee: what 21 CFR 7.49 asks a recall communication to say.

The product (part number, revision, description, GTIN), the lots and serials this consignee
received, the reason and the hazard, the classification and depth, what to do, how to answer and
the recall number — as text (the e-mail) and as JSON (the webhook, and the audit row of a drill).
`notice_facts` reads them from the ERP; `compose_notice` and `compose_reminder` only format.

`recall_consignee.shipped` (written with the scope, erp/recall_scope.py) lists what went to the
consignee, one entry per lot: {"lot_number", "part_number", "quantity", "shipments": [...],
"serials": [...]}; entries of the same lot are merged here. The part, its description and GTIN
come from the lot's item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import Item, Lot
from erp.recall import Recall, RecallConsignee
from erp.supply import Customer
from schemas.production import quantity_text

DEPTH_WORDS = {
    "consumer": "the consumer or user level",
    "retail": "the retail level",
    "wholesale": "the wholesale level",
}
RESPONSE_EVENT = "consignee-response"


@dataclass
class ShippedLot:
    lot_number: str
    quantity: Decimal
    uom: str = "ea"
    expires_on: str | None = None
    serials: list[str] = field(default_factory=list)
    shipments: list[str] = field(default_factory=list)


@dataclass
class RecalledProduct:
    part_number: str
    revision: str
    description: str
    gtin: str | None
    lots: list[ShippedLot] = field(default_factory=list)


@dataclass
class NoticeFacts:
    recall_number: str
    recall_process_id: str
    drill: bool
    reason: str
    health_hazard: str
    classification: str | None
    depth: str | None
    public_warning: bool | None
    consignee_code: str
    consignee_name: str
    shipped_quantity: Decimal
    products: list[RecalledProduct]


@dataclass(frozen=True)
class NoticeContent:
    subject: str
    text: str
    document: dict[str, Any]  # the same notice as JSON


async def notice_facts(
    session: AsyncSession, recall: Recall, consignee: RecallConsignee, customer: Customer
) -> NoticeFacts:
    """What the notice to this consignee says, read from the recall and the lots it received."""
    lots = _merged(consignee.shipped)
    found = await session.execute(
        select(Lot, Item)
        .join(Item, Item.id == Lot.item_id)
        .where(Lot.lot_number.in_([lot.lot_number for lot in lots]))
    )
    by_number = {lot.lot_number: (lot, item) for lot, item in found}
    products: dict[tuple[str, str], RecalledProduct] = {}
    for shipped in lots:
        lot, item = by_number.get(shipped.lot_number, (None, None))
        if lot is None or item is None:  # a lot the ERP no longer knows: name it as shipped
            key = ("", "")
            products.setdefault(key, RecalledProduct("(unknown part)", "", "", None))
        else:
            shipped.uom = lot.uom
            shipped.expires_on = lot.expires_on.isoformat() if lot.expires_on else None
            key = (item.part_number, item.revision)
            products.setdefault(
                key, RecalledProduct(item.part_number, item.revision, item.description, item.gtin)
            )
        products[key].lots.append(shipped)
    return NoticeFacts(
        recall_number=recall.number,
        recall_process_id=recall.process_id,
        drill=recall.drill,
        reason=recall.reason,
        health_hazard=recall.health_hazard,
        classification=recall.classification,
        depth=recall.depth,
        public_warning=recall.public_warning,
        consignee_code=customer.code,
        consignee_name=customer.name,
        shipped_quantity=consignee.shipped_quantity,
        products=sorted(products.values(), key=lambda p: (p.part_number, p.revision)),
    )


def _merged(shipped: list[dict[str, Any]]) -> list[ShippedLot]:
    """One entry per lot, in the order first shipped: quantities added, serials and shipments
    joined."""
    lots: dict[str, ShippedLot] = {}
    for entry in shipped:
        number = str(entry.get("lot_number") or "")
        if not number:
            continue
        lot = lots.setdefault(number, ShippedLot(number, Decimal(0)))
        lot.quantity += Decimal(str(entry.get("quantity") or 0))
        lot.serials += [s for s in entry.get("serials") or [] if s not in lot.serials]
        for shipment in [*(entry.get("shipments") or []), entry.get("shipment")]:
            if shipment and shipment not in lot.shipments:
                lot.shipments.append(str(shipment))
    return list(lots.values())


def instructions(facts: NoticeFacts) -> list[str]:
    """What the consignee is to do, in order (21 CFR 7.49(c)(1)(iii))."""
    steps = [
        "Stop using and stop distributing the product listed here at once.",
        "Quarantine every unit you hold: separate it, label it 'recalled — do not use'.",
        "Return the quarantined units to us, or correct them as we instruct; tell us how many.",
        "Answer within 7 days with the quantity you have on hand, returned and corrected, "
        "even if it is zero.",
    ]
    if facts.depth in ("retail", "wholesale", "consumer"):
        steps.append(
            "If you passed the product on, notify your own customers at once and tell them to "
            f"do the same (this recall extends to {DEPTH_WORDS[facts.depth]})."
        )
    return steps


def _lot_line(lot: ShippedLot) -> str:
    line = f"lot {lot.lot_number}: {quantity_text(lot.quantity)} {lot.uom}"
    if lot.expires_on:
        line += f", expires {lot.expires_on}"
    if lot.shipments:
        line += f", shipment {', '.join(lot.shipments)}"
    if lot.serials:
        line += f"; serials {', '.join(lot.serials)}"
    return line


def compose_notice(facts: NoticeFacts) -> NoticeContent:
    """The notice as text and as JSON."""
    parts = ", ".join(f"{p.part_number} {p.description}".strip() for p in facts.products)
    subject = f"URGENT: MEDICAL DEVICE RECALL {facts.recall_number} — {parts}"[:300]
    respond = {
        "event": RESPONSE_EVENT,
        "path": f"/api/v1/processes/{facts.recall_process_id}/events/{RESPONSE_EVENT}",
        "data": {
            "consignee_code": facts.consignee_code,
            "acknowledged": True,
            "quantity_on_hand": "…",
            "quantity_returned": "…",
            "quantity_corrected": "…",
            "note": "",
        },
    }
    classification = f"Class {facts.classification}" if facts.classification else "not classified"
    depth = DEPTH_WORDS.get(facts.depth or "", "not set")
    steps = instructions(facts)
    lines = [
        subject,
        "",
        f"To: {facts.consignee_name} ({facts.consignee_code})",
        f"Recall number: {facts.recall_number}",
        f"Classification: {classification}; recall depth: {depth}",
        "",
        "Product concerned:",
    ]
    for product in facts.products:
        gtin = f", GTIN {product.gtin}" if product.gtin else ""
        revision = f" rev. {product.revision}" if product.revision else ""
        lines.append(f"- {product.part_number}{revision} {product.description}{gtin}")
        lines += [f"    {_lot_line(lot)}" for lot in product.lots]
    lines += [
        f"Total shipped to you: {quantity_text(facts.shipped_quantity)}",
        "",
        f"Reason for the recall: {facts.reason}",
        f"Health hazard: {facts.health_hazard or 'under evaluation'}",
        "",
        "What to do:",
        *(f"{n}. {step}" for n, step in enumerate(steps, start=1)),
        "",
        f"How to answer: reply to this message quoting {facts.recall_number} and your customer "
        f"code {facts.consignee_code}, or send the event '{RESPONSE_EVENT}' to "
        f"{respond['path']} with your code and the quantities on hand, returned and corrected.",
    ]
    document = {
        "type": "recall.notice",
        "recall_number": facts.recall_number,
        "drill": facts.drill,
        "classification": facts.classification,
        "depth": facts.depth,
        "public_warning": facts.public_warning,
        "reason": facts.reason,
        "health_hazard": facts.health_hazard,
        "consignee": {"code": facts.consignee_code, "name": facts.consignee_name},
        "shipped_quantity": quantity_text(facts.shipped_quantity),
        "products": [
            {
                "part_number": p.part_number,
                "revision": p.revision,
                "description": p.description,
                "gtin": p.gtin,
                "lots": [
                    {
                        "lot_number": lot.lot_number,
                        "quantity": quantity_text(lot.quantity),
                        "uom": lot.uom,
                        "expires_on": lot.expires_on,
                        "serials": lot.serials,
                        "shipments": lot.shipments,
                    }
                    for lot in p.lots
                ],
            }
            for p in facts.products
        ],
        "instructions": steps,
        "respond": respond,
    }
    return NoticeContent(subject=subject, text="\n".join(lines), document=document)


def compose_reminder(notice: NoticeContent, reminder: int, days: int) -> NoticeContent:
    """A reminder: the notice again, headed by how long we have waited for the answer."""
    subject = f"REMINDER {reminder}: {notice.subject}"[:300]
    head = (
        f"REMINDER {reminder}: we sent you the recall notice below {days} days ago and have not "
        "received your answer. Please act on it and answer today."
    )
    document = notice.document | {"type": "recall.reminder", "reminder": reminder}
    return NoticeContent(subject=subject, text=f"{head}\n\n{notice.text}", document=document)
