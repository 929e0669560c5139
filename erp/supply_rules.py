"""Rules other processes ask of master data, as changed by change control from the effective moment
on: may this supplier deliver this part today, and may this revision be issued or bought.
A refusal is a `said(…)` (its template and values), so it reads in the person's language where
it is shown (a purchase's or customer order's reason, a work order's problem)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import AslEntry, Item, Supplier, SupplierCertificate
from schemas.wording import said


async def supplier_refusal(
    session: AsyncSession, *, supplier_code: str, part_number: str, on: date
) -> str | None:
    """Why no new order may go to this supplier for this part, or None when it may."""
    supplier = await session.scalar(select(Supplier).where(Supplier.code == supplier_code))
    if supplier is None:
        return said("supplier %(supplier)s is not known", supplier=supplier_code)
    if supplier.status == "disqualified":
        return said("supplier %(supplier)s is disqualified", supplier=supplier_code)
    entry = await session.scalar(
        select(AslEntry).where(
            AslEntry.supplier_id == supplier.id, AslEntry.part_number == part_number
        )
    )
    if entry is None:
        return said(
            "supplier %(supplier)s is not on the approved supplier list for %(part)s",
            supplier=supplier_code,
            part=part_number,
        )
    if entry.status == "disqualified":
        return said(
            "supplier %(supplier)s is disqualified for %(part)s",
            supplier=supplier_code,
            part=part_number,
        )
    valid = await session.scalar(
        select(SupplierCertificate.id).where(
            SupplierCertificate.supplier_id == supplier.id, SupplierCertificate.expires_on >= on
        )
    )
    if valid is None:
        return said(
            "supplier %(supplier)s has no valid quality certificate on %(day)s",
            supplier=supplier_code,
            day=on.isoformat(),
        )
    return None


async def effective_revision(session: AsyncSession, part_number: str) -> Item | None:
    return await session.scalar(
        select(Item).where(Item.part_number == part_number, Item.status == "effective")
    )


async def revision_refusal(session: AsyncSession, item_id: int) -> str | None:
    """Why this item revision may not be issued to production or ordered, or None."""
    item = await session.get(Item, item_id)
    if item is None:
        return said("item %(item)s is not known", item=item_id)
    if item.status != "effective":
        return said(
            "%(part)s revision %(revision)s is %(status)s, not effective",
            part=item.part_number,
            revision=item.revision,
            status=item.status,
        )
    return None
