"""Demo master data: one product family of a medical-device maker, loaded by `seed_demo()`.

A single-use infusion set (IS-2000, device class II) with its components, BOM, routing,
and a serialised volumetric infusion pump (IP-3000) with three sub-assemblies;
controlled documents, suppliers with ISO 13485 certificates, the approved supplier list, open
purchase orders, lots in stock and work orders. Every name is invented. Dates are relative to the
day the demo is first started, so certificates, expiries and due dates stay believable: one
supplier's certificate has expired, another's expires within two months, the rest are valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import (
    AslEntry,
    BomLine,
    Document,
    DocumentItem,
    Item,
    Lot,
    PurchaseOrder,
    PurchaseOrderLine,
    RoutingStep,
    Supplier,
    SupplierCertificate,
    WorkOrder,
)
from erp.supply import Customer, SerialNumber

# GS1's own documentation example company prefix: it belongs to no device maker.
GS1_EXAMPLE_COMPANY_PREFIX = "0614141"


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit for a GTIN's other digits (weights 3, 1, 3 ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def gtin14(indicator: str, company_prefix: str, item_reference: str) -> str:
    body = indicator + company_prefix + item_reference
    if len(body) != 13 or not body.isdigit():
        raise ValueError(f"a GTIN-14 needs 13 digits before its check digit, not {body!r}")
    return body + gs1_check_digit(body)


FINISHED_GOOD = "IS-2000"
SERIALISED_GOOD = "IP-3000"


@dataclass(frozen=True)
class Part:
    part_number: str
    description: str
    # (revision, status, became effective this many days ago or None for a draft), oldest first
    revisions: tuple[tuple[str, str, int | None], ...]
    shelf_life_days: int | None
    storage_condition: str = "15–30 °C, dry"
    device_class: str = "none"
    gtin: str | None = None
    uom: str = "ea"
    serial_controlled: bool = False
    standard_cost: str = "0"  # EUR per unit of measure


PARTS: tuple[Part, ...] = (
    Part(
        FINISHED_GOOD,
        "Infusion set, 150 cm, luer lock",
        (("B", "obsolete", 1310), ("C", "effective", 420)),
        shelf_life_days=1095,
        device_class="II",
        gtin=gtin14("0", GS1_EXAMPLE_COMPANY_PREFIX, "20001"),
        standard_cost="2.10",
    ),
    Part(
        "TB-0150",
        "Tubing, PVC-free TPE, DEHP-free, ID 3.0 mm × OD 4.1 mm",
        (("B", "obsolete", 1310), ("C", "effective", 420)),
        shelf_life_days=1825,
        storage_condition="15–30 °C, dry, protected from UV light",
        uom="m",
        standard_cost="0.42",
    ),
    Part(
        "LC-0110",
        "Luer lock connector, male, rotating collar, polycarbonate",
        (("C", "effective", 900), ("D", "draft", None)),
        shelf_life_days=1825,
        standard_cost="0.18",
    ),
    Part(
        "RC-0220",
        "Roller clamp, ABS, for 4.1 mm OD tubing",
        (("A", "obsolete", 1700), ("B", "effective", 760)),
        shelf_life_days=1825,
        standard_cost="0.09",
    ),
    Part(
        "DC-0330",
        "Drip chamber, 20 drops ≈ 1 ml, 15 µm fluid filter",
        (("C", "effective", 1100),),
        shelf_life_days=1825,
        standard_cost="0.35",
    ),
    Part(
        "SP-0440",
        "Spike with air vent and 0.2 µm air filter, ABS",
        (("B", "effective", 1250),),
        shelf_life_days=1825,
        standard_cost="0.27",
    ),
    Part(
        "PK-0550",
        "Sterile barrier peel pouch, medical paper / PET-PE film, 320 × 160 mm, EO-permeable",
        (("C", "effective", 540),),
        shelf_life_days=1825,
        standard_cost="0.11",
    ),
    Part(
        "LB-0660",
        "Pouch label IS-2000, 100 × 60 mm, UDI carrier printed",
        (("C", "effective", 420),),
        shelf_life_days=730,
        storage_condition="15–30 °C, 30–60 % RH",
        standard_cost="0.04",
    ),
    Part(
        SERIALISED_GOOD,
        "Volumetric infusion pump, single channel, mains and battery",
        (("A", "effective", 700),),
        shelf_life_days=None,
        device_class="II",
        gtin=gtin14("0", GS1_EXAMPLE_COMPANY_PREFIX, "30001"),
        serial_controlled=True,
        standard_cost="2450.00",
        storage_condition="-20–50 °C, 10–90 % RH non-condensing",
    ),
    Part(
        "PB-0710",
        "Pump controller board, assembled, flashed and functionally tested",
        (("A", "obsolete", 900), ("B", "effective", 500)),
        shelf_life_days=None,
        storage_condition="ESD protected, 15–30 °C",
        standard_cost="185.00",
    ),
    Part(
        "HS-0720",
        "Pump housing set, PC/ABS V-0, front and rear shell",
        (("A", "effective", 700),),
        shelf_life_days=None,
        standard_cost="42.50",
    ),
    Part(
        "MT-0730",
        "Peristaltic pumping mechanism with stepper motor and occlusion sensor",
        (("A", "effective", 700),),
        shelf_life_days=None,
        standard_cost="310.00",
    ),
)

# (component, quantity, uom) per (finished good, revision)
BOM: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {
    (SERIALISED_GOOD, "A"): (
        ("PB-0710", "1", "ea"),
        ("HS-0720", "1", "ea"),
        ("MT-0730", "1", "ea"),
    ),
    (FINISHED_GOOD, "B"): (
        ("SP-0440", "1", "ea"),
        ("DC-0330", "1", "ea"),
        ("TB-0150", "1.60", "m"),
        ("RC-0220", "1", "ea"),
        ("LC-0110", "1", "ea"),
        ("PK-0550", "1", "ea"),
        ("LB-0660", "1", "ea"),
    ),
    (FINISHED_GOOD, "C"): (
        ("SP-0440", "1", "ea"),
        ("DC-0330", "1", "ea"),
        ("TB-0150", "1.55", "m"),
        ("RC-0220", "1", "ea"),
        ("LC-0110", "1", "ea"),
        ("PK-0550", "1", "ea"),
        ("LB-0660", "1", "ea"),
    ),
}

# (seq, operation, work center) of the effective finished-good revision
ROUTING: tuple[tuple[int, str, str], ...] = (
    (
        10,
        "Assembly: spike, drip chamber and roller clamp on cut tubing (ISO 7 clean room)",
        "ASSY-CR1",
    ),
    (20, "Solvent bonding of tubing to drip chamber and luer lock connector", "BOND-CR1"),
    (30, "100 % leak test, pressure decay at 50 kPa", "LEAK-01"),
    (40, "Packaging: seal in sterile barrier pouch and apply UDI label", "PACK-CR1"),
    (50, "EO sterilisation (outsourced to SUP-0006)", "EXT-STERI"),
    (60, "Final inspection and device history record review", "QC-FINAL"),
)


@dataclass(frozen=True)
class Doc:
    number: str
    title: str
    doc_type: str  # sop, specification, drawing, label, ifu
    versions: tuple[tuple[str, str, int | None], ...]  # like Part.revisions
    part_numbers: tuple[str, ...] = ()


DOCUMENTS: tuple[Doc, ...] = (
    Doc(
        "SOP-QA-014",
        "Incoming inspection",
        "sop",
        (("03", "obsolete", 1400), ("04", "effective", 380)),
    ),
    Doc("SOP-QA-022", "Release of finished device lots", "sop", (("02", "effective", 600),)),
    Doc(
        "SOP-PR-020",
        "Solvent bonding",
        "sop",
        (("01", "obsolete", 1300), ("02", "effective", 420), ("03", "draft", None)),
        ("TB-0150", "LC-0110", "DC-0330"),
    ),
    Doc(
        "SOP-PR-031",
        "Leak testing of infusion sets (pressure decay)",
        "sop",
        (("01", "effective", 1300),),
        (FINISHED_GOOD,),
    ),
    Doc(
        "SPEC-IS-2000",
        "Infusion set IS-2000, finished device specification",
        "specification",
        (("04", "obsolete", 1310), ("05", "effective", 420)),
        (FINISHED_GOOD,),
    ),
    Doc(
        "SPEC-TB-0150",
        "PVC-free infusion tubing, material and dimensional specification",
        "specification",
        (("02", "obsolete", 1310), ("03", "effective", 420)),
        ("TB-0150",),
    ),
    Doc(
        "SPEC-LC-0110",
        "Male luer lock connector, specification (ISO 80369-7)",
        "specification",
        (("03", "effective", 900),),
        ("LC-0110",),
    ),
    Doc(
        "SPEC-RC-0220",
        "Roller clamp, specification",
        "specification",
        (("01", "obsolete", 1700), ("02", "effective", 760)),
        ("RC-0220",),
    ),
    Doc(
        "SPEC-DC-0330",
        "Drip chamber with fluid filter, specification",
        "specification",
        (("03", "effective", 1100),),
        ("DC-0330",),
    ),
    Doc(
        "SPEC-SP-0440",
        "Vented spike, specification",
        "specification",
        (("02", "effective", 1250),),
        ("SP-0440",),
    ),
    Doc(
        "SPEC-PK-0550",
        "Sterile barrier peel pouch, specification (ISO 11607-1)",
        "specification",
        (("03", "effective", 540),),
        ("PK-0550",),
    ),
    Doc(
        "SPEC-LB-0660",
        "Label stock and print quality, specification",
        "specification",
        (("01", "effective", 420),),
        ("LB-0660",),
    ),
    Doc(
        "DWG-IS-2000",
        "Infusion set IS-2000, assembly drawing",
        "drawing",
        (("B", "obsolete", 1310), ("C", "effective", 420)),
        (FINISHED_GOOD,),
    ),
    Doc(
        "LBL-IS-2000",
        "Infusion set IS-2000, pouch label artwork",
        "label",
        (("02", "obsolete", 1310), ("03", "effective", 420)),
        (FINISHED_GOOD, "LB-0660"),
    ),
    Doc(
        "SPEC-IP-3000",
        "Infusion pump IP-3000, device specification (IEC 60601-2-24)",
        "specification",
        (("02", "effective", 700),),
        (SERIALISED_GOOD, "PB-0710", "HS-0720", "MT-0730"),
    ),
    Doc(
        "IFU-IS-2000",
        "Infusion set IS-2000, instructions for use",
        "ifu",
        (("04", "obsolete", 1310), ("05", "effective", 420)),
        (FINISHED_GOOD,),
    ),
)


@dataclass(frozen=True)
class Vendor:
    code: str
    name: str
    country: str
    # (kind, certificate number, expires in this many days; negative: expired)
    certificates: tuple[tuple[str, str, int], ...]
    # (part number, ASL status, since this many days ago, note)
    asl: tuple[tuple[str, str, int, str], ...]
    status: str = "active"


SUPPLIERS: tuple[Vendor, ...] = (
    Vendor(
        "SUP-0001",
        "Nordkamm Polymertechnik GmbH",
        "DE",
        (("ISO 13485:2016", "QMS-13485-40871", 610),),
        (("TB-0150", "approved", 1400, ""),),
    ),
    Vendor(
        "SUP-0002",
        "Valdoro Stampaggi Medicali S.r.l.",
        "IT",
        (("ISO 13485:2016", "QMS-13485-22519", 41),),
        (
            ("LC-0110", "approved", 1500, "Certificate renewal audit scheduled"),
            ("RC-0220", "approved", 900, ""),
        ),
    ),
    Vendor(
        "SUP-0003",
        "Brightwater Molding Inc.",
        "US",
        (("ISO 13485:2016", "QMS-13485-77304", -18),),
        (
            (
                "DC-0330",
                "conditional",
                18,
                "ISO 13485 certificate expired: 100 % incoming inspection until renewal",
            ),
            (
                "SP-0440",
                "conditional",
                18,
                "ISO 13485 certificate expired: 100 % incoming inspection until renewal",
            ),
        ),
    ),
    Vendor(
        "SUP-0004",
        "Kestrel Medical Packaging Ltd",
        "GB",
        (
            ("ISO 13485:2016", "QMS-13485-51162", 455),
            ("ISO 9001:2015", "QMS-9001-51163", 455),
        ),
        (("PK-0550", "approved", 1200, ""), ("LB-0660", "approved", 800, "")),
    ),
    Vendor(
        "SUP-0005",
        "Hanxi Precision Plastics Co., Ltd.",
        "CN",
        (("ISO 13485:2016", "QMS-13485-63095", 300),),
        (
            (
                "LC-0110",
                "disqualified",
                95,
                "Disqualified after failed supplier audit SA-0011: uncontrolled regrind in moulding",
            ),
            ("RC-0220", "disqualified", 95, "Disqualified with the supplier (audit SA-0011)"),
        ),
        status="disqualified",
    ),
    Vendor(
        "SUP-0006",
        "Lowland Sterilisation Services B.V.",
        "NL",
        (("ISO 13485:2016", "QMS-13485-30448", 820),),
        ((FINISHED_GOOD, "approved", 1310, "EO sterilisation, cycle validated to ISO 11135"),),
    ),
    Vendor(
        "SUP-0007",
        "Taurus Electronics Manufacturing s.r.o.",
        "CZ",
        (("ISO 13485:2016", "QMS-13485-81226", 540),),
        (("PB-0710", "approved", 600, ""), ("MT-0730", "approved", 600, "")),
    ),
    Vendor(
        "SUP-0008",
        "Ostrava Precision Moulding a.s.",
        "CZ",
        (("ISO 13485:2016", "QMS-13485-81931", 380),),
        (("HS-0720", "approved", 700, ""),),
    ),
)

# (sequence, supplier, status, [(part, quantity, received, due in days)])
PURCHASE_ORDERS: tuple[tuple[int, str, str, tuple[tuple[str, str, str, int], ...]], ...] = (
    (101, "SUP-0001", "issued", (("TB-0150", "12000", "0", 28),)),
    (
        102,
        "SUP-0002",
        "confirmed",
        (("LC-0110", "20000", "0", 14), ("RC-0220", "20000", "0", 14)),
    ),
    (
        103,
        "SUP-0003",
        "partially_received",
        (("DC-0330", "10000", "4000", -6), ("SP-0440", "10000", "10000", -6)),
    ),
    (
        104,
        "SUP-0004",
        "confirmed",
        (("PK-0550", "15000", "0", 10), ("LB-0660", "15000", "0", 10)),
    ),
    (105, "SUP-0006", "issued", ((FINISHED_GOOD, "5000", "0", 9),)),
)


@dataclass(frozen=True)
class StockLot:
    part_number: str
    quantity: str
    status: str
    made_days_ago: int
    supplier: str | None = None
    supplier_lot_prefix: str | None = None
    hold_reason: str = ""
    revision: str | None = None  # None: the effective revision


LOTS: tuple[StockLot, ...] = (
    StockLot("TB-0150", "6000", "RELEASED", 75, "SUP-0001", "NK"),
    StockLot("TB-0150", "3000", "QUARANTINE", 9, "SUP-0001", "NK"),
    StockLot("LC-0110", "12000", "RELEASED", 120, "SUP-0002", "VSM"),
    StockLot("RC-0220", "9000", "RELEASED", 95, "SUP-0002", "VSM"),
    StockLot(
        "DC-0330",
        "4000",
        "ON_HOLD",
        20,
        "SUP-0003",
        "BWM",
        "Incoming inspection: flash on the filter seat in 3 of 80 samples; awaiting MRB disposition",
    ),
    StockLot("SP-0440", "10000", "QUARANTINE", 20, "SUP-0003", "BWM"),
    StockLot("PK-0550", "10000", "RELEASED", 140, "SUP-0004", "KMP"),
    StockLot("LB-0660", "8000", "RELEASED", 60, "SUP-0004", "KMP"),
    StockLot(FINISHED_GOOD, "1200", "RELEASED", 470, revision="B"),
    StockLot(FINISHED_GOOD, "4800", "RELEASED", 45),
    StockLot(
        FINISHED_GOOD,
        "2400",
        "ON_HOLD",
        30,
        hold_reason="Pouch seal strength below specification in 2 of 32 peel tests; under investigation",
    ),
    StockLot(FINISHED_GOOD, "5000", "QUARANTINE", 6),  # awaiting EO sterilisation and release
    StockLot("PB-0710", "40", "RELEASED", 60, "SUP-0007", "TEM"),
    StockLot("HS-0720", "60", "RELEASED", 80, "SUP-0008", "OPM"),
    StockLot("MT-0730", "25", "RELEASED", 50, "SUP-0007", "TEM"),
    StockLot(SERIALISED_GOOD, "5", "RELEASED", 40),  # serials IP3-000001 … 000005
)

# (sequence, quantity, status) of work orders for the effective finished-good revision
WORK_ORDERS: tuple[tuple[int, str, str], ...] = ((31, "5000", "released"), (32, "10000", "planned"))


# code, name, country, e-mail, minimum remaining shelf life (days) the customer accepts
CUSTOMERS: tuple[tuple[str, str, str, str, int], ...] = (
    (
        "CUS-0001",
        "St. Aurelia Hospital, Central Pharmacy",
        "DE",
        "pharmacy@st-aurelia.example",
        365,
    ),
    ("CUS-0002", "Meridian Medical Distribution B.V.", "NL", "orders@meridian-med.example", 540),
    ("CUS-0003", "Clínica Santa Lucía", "ES", "compras@santalucia.example", 180),
    ("CUS-0004", "Hudson Valley Health Network", "US", "supply@hvhn.example", 365),
)


def seeded_lot_number(part_number: str, status: str, today: date) -> str:
    """The number the seed gives the first lot of this part in this status (for demo processes
    started on the day the demo data was loaded)."""
    for n, spec in enumerate(LOTS, start=1):
        if spec.part_number == part_number and spec.status == status:
            return f"L{today - timedelta(days=spec.made_days_ago):%y%m}-{n:04d}"
    raise LookupError(f"the seed has no {status} lot of {part_number}")


def _dated(today: date, days_ago: int | None) -> date | None:
    return None if days_ago is None else today - timedelta(days=days_ago)


def _revision_rows(
    revisions: tuple[tuple[str, str, int | None], ...], today: date
) -> list[tuple[str, str, date | None, date | None]]:
    """(revision, status, effective_on, obsolete_on): an obsolete revision ends when the next
    dated revision begins. Refuses data with other than one effective revision."""
    if sum(1 for _, status, _ in revisions if status == "effective") != 1:
        raise ValueError(f"exactly one effective revision expected in {revisions}")
    rows = []
    for i, (rev, status, days_ago) in enumerate(revisions):
        obsolete_on = None
        if status == "obsolete":
            later = [d for _, _, d in revisions[i + 1 :] if d is not None]
            obsolete_on = _dated(today, later[0]) if later else today
        rows.append((rev, status, _dated(today, days_ago), obsolete_on))
    return rows


async def seed_master_data(session: AsyncSession) -> dict[str, int]:
    """Add the demo master data to the session's transaction (the caller commits); return counts."""
    today = date.today()
    year = today.year

    items: dict[tuple[str, str], Item] = {}
    effective: dict[str, Item] = {}
    for part in PARTS:
        for rev, status, effective_on, obsolete_on in _revision_rows(part.revisions, today):
            item = Item(
                part_number=part.part_number,
                revision=rev,
                description=part.description,
                device_class=part.device_class,
                gtin=part.gtin,
                shelf_life_days=part.shelf_life_days,
                storage_condition=part.storage_condition,
                lot_controlled=True,
                serial_controlled=part.serial_controlled,
                standard_cost=Decimal(part.standard_cost),
                status=status,
                effective_on=effective_on,
                obsolete_on=obsolete_on,
            )
            items[part.part_number, rev] = item
            if status == "effective":
                effective[part.part_number] = item
    session.add_all(items.values())
    await session.flush()

    bom_lines = [
        BomLine(
            item_id=items[good, rev].id,
            component_part_number=component,
            quantity=Decimal(quantity),
            uom=uom,
        )
        for (good, rev), lines in BOM.items()
        for component, quantity, uom in lines
    ]
    routing = [
        RoutingStep(item_id=effective[FINISHED_GOOD].id, seq=seq, operation=op, work_center=wc)
        for seq, op, wc in ROUTING
    ]
    documents = [
        Document(
            number=doc.number,
            version=version,
            title=doc.title,
            doc_type=doc.doc_type,
            status=status,
            effective_on=effective_on,
            obsolete_on=obsolete_on,
        )
        for doc in DOCUMENTS
        for version, status, effective_on, obsolete_on in _revision_rows(doc.versions, today)
    ]
    document_items = [
        DocumentItem(document_number=doc.number, part_number=pn)
        for doc in DOCUMENTS
        for pn in doc.part_numbers
    ]
    suppliers = {
        v.code: Supplier(code=v.code, name=v.name, country=v.country, status=v.status)
        for v in SUPPLIERS
    }
    session.add_all([*bom_lines, *routing, *documents, *document_items, *suppliers.values()])
    await session.flush()

    certificates = [
        SupplierCertificate(
            supplier_id=suppliers[v.code].id,
            kind=kind,
            number=number,
            expires_on=today + timedelta(days=expires_in),
        )
        for v in SUPPLIERS
        for kind, number, expires_in in v.certificates
    ]
    asl = [
        AslEntry(
            supplier_id=suppliers[v.code].id,
            part_number=pn,
            status=status,
            since_on=today - timedelta(days=since),
            note=note,
        )
        for v in SUPPLIERS
        for pn, status, since, note in v.asl
    ]
    orders = {
        seq: PurchaseOrder(
            number=f"PO-{year}-{seq:04d}", supplier_id=suppliers[code].id, status=status
        )
        for seq, code, status, _ in PURCHASE_ORDERS
    }
    session.add_all([*certificates, *asl, *orders.values()])
    await session.flush()

    order_lines = [
        PurchaseOrderLine(
            purchase_order_id=orders[seq].id,
            part_number=pn,
            item_id=effective[pn].id,
            quantity=Decimal(quantity),
            received_quantity=Decimal(received),
            due_on=today + timedelta(days=due_in),
        )
        for seq, _, _, lines in PURCHASE_ORDERS
        for pn, quantity, received, due_in in lines
    ]
    uoms = {p.part_number: p.uom for p in PARTS}
    shelf_lives = {p.part_number: p.shelf_life_days for p in PARTS}
    lots = []
    for n, spec in enumerate(LOTS, start=1):
        made = today - timedelta(days=spec.made_days_ago)
        item = (
            items[spec.part_number, spec.revision] if spec.revision else effective[spec.part_number]
        )
        shelf_life = shelf_lives[spec.part_number]
        lots.append(
            Lot(
                lot_number=f"L{made:%y%m}-{n:04d}",
                item_id=item.id,
                part_number=spec.part_number,
                supplier_id=suppliers[spec.supplier].id if spec.supplier else None,
                supplier_lot=(
                    f"{spec.supplier_lot_prefix}{made:%y%m%d}-{100 + 7 * n}"
                    if spec.supplier_lot_prefix
                    else None
                ),
                quantity=Decimal(spec.quantity),
                uom=uoms[spec.part_number],
                status=spec.status,
                manufactured_on=made,
                expires_on=made + timedelta(days=shelf_life) if shelf_life else None,
                hold_reason=spec.hold_reason,
            )
        )
    work_orders = [
        WorkOrder(
            number=f"WO-{year}-{seq:04d}",
            item_id=effective[FINISHED_GOOD].id,
            part_number=FINISHED_GOOD,
            quantity=Decimal(quantity),
            status=status,
        )
        for seq, quantity, status in WORK_ORDERS
    ]
    customers = [
        Customer(code=code, name=name, country=country, email=email, min_shelf_life_days=days)
        for code, name, country, email, days in CUSTOMERS
    ]
    session.add_all([*order_lines, *lots, *work_orders, *customers])
    await session.flush()
    serials = [
        SerialNumber(
            lot_id=lot.id,
            serial=f"IP3-{n:06d}",
            udi=f"(01){effective[lot.part_number].gtin}(10){lot.lot_number}(21)IP3-{n:06d}",
        )
        for lot in lots
        if lot.part_number == SERIALISED_GOOD
        for n in range(1, int(lot.quantity) + 1)
    ]
    session.add_all(serials)
    await session.flush()

    return {
        "items": len(items),
        "bom_lines": len(bom_lines),
        "routing_steps": len(routing),
        "documents": len(documents),
        "document_items": len(document_items),
        "suppliers": len(suppliers),
        "supplier_certificates": len(certificates),
        "asl_entries": len(asl),
        "purchase_orders": len(orders),
        "purchase_order_lines": len(order_lines),
        "lots": len(lots),
        "work_orders": len(work_orders),
        "customers": len(customers),
        "serial_numbers": len(serials),
    }
