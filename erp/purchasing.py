"""Purchasing rules: who approves an amount (the delegation-of-authority matrix), how many pieces
incoming inspection samples (ANSI/ASQ Z1.4), when a delivery counts as on time, and the supplier
scorecard counters that every receipt and incoming inspection update."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import BomLine
from erp.supply import DoaThreshold, SupplierScorecard
from schemas.purchase import SamplingPlan
from schemas.supply import PurchaseLine

# ---------------------------------------------------------------- delegation of authority


def order_amount(lines: Iterable[PurchaseLine]) -> Decimal:
    """Σ quantity × unit price, to the cent."""
    total = sum((line.quantity * line.unit_price for line in lines), Decimal(0))
    return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def doa_route(levels: Iterable[tuple[Decimal | None, str]], amount: Decimal) -> list[str]:
    """The approver group of every level, in level order, up to and including the first level
    whose limit covers the amount (None: no limit). Above every limit: every level."""
    groups: list[str] = []
    for up_to, group in levels:
        groups.append(group)
        if up_to is None or amount <= up_to:
            break
    return groups


async def approver_groups(session: AsyncSession, amount: Decimal) -> list[str]:
    rows = await session.execute(
        select(DoaThreshold.up_to_amount, DoaThreshold.approver_group).order_by(DoaThreshold.level)
    )
    return doa_route([(up_to, group) for up_to, group in rows], amount)


async def doa_levels(session: AsyncSession) -> list[str]:
    """The matrix in words, e.g. 'level 1 buyer: up to 5,000.00 EUR'."""
    rows = await session.scalars(select(DoaThreshold).order_by(DoaThreshold.level))
    return [
        f"level {t.level} {t.approver_group}: "
        + (f"up to {t.up_to_amount:,.2f} {t.currency}" if t.up_to_amount is not None else "any")
        for t in rows
    ]


# ---------------------------------------------------------------- incoming inspection sampling

# General inspection level II: the largest lot size of each sample size code letter (above: Q).
CODE_LETTERS: tuple[tuple[int, str], ...] = (
    (8, "A"),
    (15, "B"),
    (25, "C"),
    (50, "D"),
    (90, "E"),
    (150, "F"),
    (280, "G"),
    (500, "H"),
    (1200, "J"),
    (3200, "K"),
    (10000, "L"),
    (35000, "M"),
    (150000, "N"),
    (500000, "P"),
)
LETTERS = "ABCDEFGHJKLMNPQR"
SAMPLE_SIZES = dict(
    zip(LETTERS, (2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800, 1250, 2000), strict=True)
)
# Table II-A (single sampling, normal inspection), column AQL 1.0: the accept number, or an arrow
# to the first plan below ("down") or above ("up"), whose sample size is then used.
AQL_1_0: dict[str, int | str] = {
    "A": "down",
    "B": "down",
    "C": "down",
    "D": "down",
    "E": 0,
    "F": "up",
    "G": "down",
    "H": 1,
    "J": 2,
    "K": 3,
    "L": 5,
    "M": 7,
    "N": 10,
    "P": 14,
    "Q": 21,
    "R": "up",
}
Z14 = "ANSI/ASQ Z1.4, general inspection level II, single sampling, normal inspection, AQL 1.0"


def code_letter(lot_size: int) -> str:
    """The sample size code letter of a lot at general inspection level II."""
    return next((letter for largest, letter in CODE_LETTERS if lot_size <= largest), "Q")


def aql_plan(letter: str) -> tuple[str, int]:
    """(the code letter whose plan applies, its accept number), following the table's arrows."""
    index = LETTERS.index(letter)
    while isinstance(entry := AQL_1_0[LETTERS[index]], str):
        index += 1 if entry == "down" else -1
    return LETTERS[index], entry


def sampling_plan(quantity: Decimal, *, hundred_percent: bool = False) -> SamplingPlan:
    """How many to inspect from a lot and how many defective it may hold.

    A supplier approved only conditionally gets 100 % inspection and no defective accepted;
    a sample as large as the lot also means 100 % inspection (the standard's rule)."""
    lot_size = max(1, math.ceil(quantity))
    letter = code_letter(lot_size)
    plan_letter, accept = aql_plan(letter)
    sample = SAMPLE_SIZES[plan_letter]
    arrow = f" → plan of code letter {plan_letter}" if plan_letter != letter else ""
    basis = f"{Z14}: lot of {lot_size} → code letter {letter}{arrow} → sample {sample}"
    if hundred_percent:
        sample, accept = lot_size, 0
        basis = "100 % inspection: the supplier is approved only conditionally for this part"
    elif sample >= lot_size:
        sample = lot_size
        basis += f"; the sample is as large as the lot, so all {lot_size} are inspected"
    return SamplingPlan(
        lot_size=lot_size,
        code_letter=letter,
        sample_size=sample,
        accept_number=accept,
        reject_number=accept + 1,
        hundred_percent=hundred_percent or sample == lot_size,
        basis=basis,
    )


# ---------------------------------------------------------------- receipts


def is_on_time(received_on: date, *, promised_on: date | None, due_on: date | None) -> bool:
    """Received on or before the supplier's promised date (else the date we asked for)."""
    deadline = promised_on or due_on
    return deadline is None or received_on <= deadline


def expiry_date(
    *,
    expires_on: date | None,
    manufactured_on: date | None,
    received_on: date,
    shelf_life_days: int | None,
) -> date | None:
    """The lot's expiry: as labelled, else the item's shelf life from manufacture (from receipt
    when the manufacture date is not known); None for an item without a shelf life."""
    if expires_on is not None or shelf_life_days is None:
        return expires_on
    return (manufactured_on or received_on) + timedelta(days=shelf_life_days)


async def unit_of_measure(session: AsyncSession, part_number: str) -> str:
    """The unit a part is counted in: as the bills of material use it, else each."""
    uom = await session.scalar(
        select(BomLine.uom).where(BomLine.component_part_number == part_number).limit(1)
    )
    return uom or "ea"


# ---------------------------------------------------------------- supplier scorecard


async def count_receipt(session: AsyncSession, *, supplier_id: int, on_time: bool) -> None:
    """One more receipt on the supplier's scorecard (in the caller's transaction)."""
    await _bump(session, supplier_id, receipts=1, on_time_receipts=int(on_time))


async def count_inspection(session: AsyncSession, *, supplier_id: int, accepted: bool) -> None:
    """One more incoming inspection on the supplier's scorecard (in the caller's transaction)."""
    await _bump(session, supplier_id, inspections=1, accepted_inspections=int(accepted))


async def _bump(session: AsyncSession, supplier_id: int, **counts: int) -> None:
    zero = dict.fromkeys(("receipts", "on_time_receipts", "inspections", "accepted_inspections"), 0)
    statement = (
        insert(SupplierScorecard)
        .values(supplier_id=supplier_id, scars=0, **(zero | counts))
        .on_conflict_do_update(
            index_elements=["supplier_id"],
            set_={name: getattr(SupplierScorecard, name) + value for name, value in counts.items()}
            | {"updated_at": func.now()},
        )
    )
    await session.execute(statement)
