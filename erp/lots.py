"""Lots: numbering, status changes, movements and first-expiry-first-out picking.

Every process that touches a lot goes through these functions; the database triggers of
migration 0003 are the guard behind them (see erp/supply.py), so a caller that bypasses them is
still refused. A refusal by a trigger comes back as `LotRefused` with the trigger's message
(a `Said` when it is one we know, so it is translated).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from erp.master_data import Item, Lot
from erp.numbering import next_in_series
from erp.supply import (
    LOT_NOT_AVAILABLE,
    LOT_QUANTITY_SHORT,
    LOT_TRANSITION_REFUSED,
    InventoryMovement,
    LotNumberRule,
)
from schemas.wording import Said, said

_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|PART|SEQ(?::(\d+))?)\}")
REFUSAL_STATES = {LOT_TRANSITION_REFUSED, LOT_NOT_AVAILABLE, LOT_QUANTITY_SHORT}


class LotRefused(Exception):
    """The database refused a lot change (status machine, availability or quantity).
    `message` is a `Said` when the refusal is one the triggers are known to say (see
    `trigger_said`), so a person reads it in their language; its English is the trigger's."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate


# What the triggers of migrations 0003 (lot_status_check, inventory_movement_check) and 0004
# (nc_hold_check) say, by SQLSTATE, as the pattern of their RAISE and our template of it: the
# captured parts are the values, so the English of the template is the trigger's text itself.
_LOT = r"lot (?P<lot>.+?)"
_VERB = r": it cannot be (?P<verb>issued|shipped)"
TRIGGER_REFUSALS: dict[str, list[tuple[re.Pattern[str], dict[str, str]]]] = {
    LOT_TRANSITION_REFUSED: [
        (
            re.compile(_LOT + r" is held by (?P<holders>.+): only its disposition releases it"),
            {"": "lot %(lot)s is held by %(holders)s: only its disposition releases it"},
        ),
        (
            re.compile(_LOT + r" cannot go from (?P<before>[A-Z_]+) to (?P<after>[A-Z_]+)"),
            {"": "lot %(lot)s cannot go from %(before)s to %(after)s"},
        ),
    ],
    LOT_NOT_AVAILABLE: [
        (
            re.compile(_LOT + r" is (?P<status>[A-Z_]+) \((?P<reason>.*)\)" + _VERB),
            {
                "issued": "lot %(lot)s is %(status)s (%(reason)s): it cannot be issued",
                "shipped": "lot %(lot)s is %(status)s (%(reason)s): it cannot be shipped",
            },
        ),
        (
            re.compile(_LOT + r" is (?P<status>[A-Z_]+)" + _VERB),
            {
                "issued": "lot %(lot)s is %(status)s: it cannot be issued",
                "shipped": "lot %(lot)s is %(status)s: it cannot be shipped",
            },
        ),
        (
            re.compile(_LOT + r" expired on (?P<expired>[0-9-]+)" + _VERB),
            {
                "issued": "lot %(lot)s expired on %(expired)s: it cannot be issued",
                "shipped": "lot %(lot)s expired on %(expired)s: it cannot be shipped",
            },
        ),
        (
            re.compile(
                _LOT + r" is of a (?P<status>\S+) revision of (?P<part>.+): "
                "only the effective revision is issued"
            ),
            {
                "": "lot %(lot)s is of a %(status)s revision of %(part)s: "
                "only the effective revision is issued"
            },
        ),
    ],
    LOT_QUANTITY_SHORT: [
        (
            re.compile(_LOT + r" holds (?P<quantity>\S+) (?P<uom>\S+), not (?P<wanted>\S+)"),
            {"": "lot %(lot)s holds %(quantity)s %(uom)s, not %(wanted)s"},
        ),
    ],
}


def trigger_said(message: str, sqlstate: str) -> str:
    """A trigger's refusal as a `Said` (its template and values) when it is one we know and the
    template gives back exactly what the trigger said; otherwise its text as it is."""
    for pattern, templates in TRIGGER_REFUSALS.get(sqlstate, []):
        match = pattern.fullmatch(message)
        if match is None:
            continue
        values = match.groupdict()
        template = templates.get(values.pop("verb", None) or "")
        if template is None:
            continue
        text = said(template, **values)
        if text == message:
            return text
    return message


def refusal_of(err: DBAPIError) -> LotRefused | None:
    """The lot refusal inside a database error raised by our triggers, or None."""
    orig = err.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate not in REFUSAL_STATES:
        return None
    diag = getattr(orig, "diag", None)
    message = getattr(diag, "message_primary", None) or str(orig).splitlines()[0]
    return LotRefused(trigger_said(message, sqlstate), sqlstate)


async def next_lot_number(session: AsyncSession, *, origin: str, part_number: str, on: date) -> str:
    """A new lot number by the configured rule for this origin (receipt or production)."""
    pattern = await session.scalar(
        select(LotNumberRule.pattern).where(LotNumberRule.origin == origin)
    )
    if pattern is None:
        pattern = "L{YY}{MM}-{SEQ:05}"
    seq = await next_in_series(session, "lot_number_seq")
    return format_lot_number(pattern, part_number=part_number, on=on, seq=seq)


def format_lot_number(pattern: str, *, part_number: str, on: date, seq: int) -> str:
    def token(match: re.Match[str]) -> str:
        name, width = match.group(1), match.group(2)
        if name.startswith("SEQ"):
            return str(seq).zfill(int(width or 1))
        return {
            "YYYY": f"{on:%Y}",
            "YY": f"{on:%y}",
            "MM": f"{on:%m}",
            "DD": f"{on:%d}",
            "PART": part_number,
        }[name]

    return _TOKEN.sub(token, pattern)


async def set_lot_status(
    session: AsyncSession,
    lot: Lot,
    status: str,
    *,
    reason: str,
    actor: str,
    process_id: str | None,
) -> None:
    """Move a lot to `status` (flushed now, so a refusal by the status machine raises here).
    A reason that is a `said(…)` is noted for the transaction's audit row (`note_lot_reason`)."""
    note_lot_reason(session, lot.lot_number, reason)
    lot.status = status
    lot.status_reason = reason
    lot.status_changed_by = actor
    lot.status_process_id = process_id
    if status == "ON_HOLD":
        lot.hold_reason = reason
    elif lot.hold_reason and status in ("RELEASED", "QUARANTINE"):
        lot.hold_reason = ""
    try:
        await session.flush()
    except DBAPIError as err:
        refusal = refusal_of(err)
        if refusal is None:
            raise
        raise refusal from None


LOT_REASONS = "lot_reasons"  # the session.info key of the reasons noted for the audit row


def note_lot_reason(session: AsyncSession, lot_number: str, reason: str) -> None:
    """Keep a lot's status reason that is a `Said` (its template and values) until this
    transaction's next audit row (`activities.audit_context.audit`) stores its wording in
    `after["lot_reasons"]`: the lot history (`lot_status_change`, written by a trigger) has no
    room for it, so the lot page finds it there (`ui.reason_text`). A plain reason is not kept."""
    if isinstance(reason, Said):
        session.info.setdefault(LOT_REASONS, {})[lot_number] = reason


def noted_lot_reasons(session: AsyncSession) -> dict[str, Said]:
    """The lot reasons noted since the last audit row, taken (so each row stores its own)."""
    noted: dict[str, Said] = session.info.pop(LOT_REASONS, None) or {}
    return noted


async def move(
    session: AsyncSession,
    lot: Lot,
    *,
    kind: str,
    quantity: Decimal,
    reference: str,
    actor: str,
    process_id: str | None,
    idempotency_key: str | None = None,
) -> InventoryMovement:
    """Record an inventory movement; the trigger checks an issue or shipment and decrements."""
    movement = InventoryMovement(
        lot_id=lot.id,
        kind=kind,
        quantity=quantity,
        reference=reference,
        actor=actor,
        process_id=process_id,
        idempotency_key=idempotency_key,
    )
    session.add(movement)
    try:
        await session.flush()
    except DBAPIError as err:
        refusal = refusal_of(err)
        if refusal is None:
            raise
        raise refusal from None
    await session.refresh(lot)  # the trigger changed its quantity and perhaps its status
    return movement


def available_lots(part_number: str, *, on: date, min_shelf_life_days: int = 0) -> Select[Lot]:
    """RELEASED, unexpired lots of a part's effective revision, first expiry first out."""
    good_until = on + timedelta(days=min_shelf_life_days)
    return (
        select(Lot)
        .join(Item, Item.id == Lot.item_id)
        .where(
            Lot.part_number == part_number,
            Lot.status == "RELEASED",
            Lot.quantity > 0,
            Item.status == "effective",
            or_(Lot.expires_on.is_(None), Lot.expires_on >= good_until),
        )
        .order_by(Lot.expires_on.asc().nulls_last(), Lot.created_at, Lot.id)
    )


def shippable_lots(part_number: str, *, on: date, min_shelf_life_days: int) -> Select[Lot]:
    """RELEASED lots of any revision with enough shelf life left for the customer, FEFO."""
    good_until = on + timedelta(days=min_shelf_life_days)
    return (
        select(Lot)
        .where(
            Lot.part_number == part_number,
            Lot.status == "RELEASED",
            Lot.quantity > 0,
            or_(Lot.expires_on.is_(None), and_(Lot.expires_on >= good_until)),
        )
        .order_by(Lot.expires_on.asc().nulls_last(), Lot.created_at, Lot.id)
    )


@dataclass(frozen=True)
class Pick:
    lot_id: int
    lot_number: str
    quantity: Decimal
    expires_on: date | None


async def pick_fefo(
    session: AsyncSession, query: Select[Lot], quantity: Decimal
) -> tuple[list[Pick], Decimal]:
    """Lots to take `quantity` from, first expiry first; and the quantity still short."""
    picks: list[Pick] = []
    remaining = quantity
    for lot in await session.scalars(query):
        if remaining <= 0:
            break
        take = min(lot.quantity, remaining)
        picks.append(Pick(lot.id, lot.lot_number, take, lot.expires_on))
        remaining -= take
    return picks, max(remaining, Decimal(0))
