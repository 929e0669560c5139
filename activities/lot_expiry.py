"""The nightly lot expiry: every in-stock lot past its expiry date becomes EXPIRED.

The triggers of migration 0003 already refuse to issue or ship a lot past its expiry date; this
activity records the status, so pages, lists and FEFO queries stop showing such a lot as RELEASED.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.audit_context import activity_origin, with_lot_reasons, with_reason_wording
from erp.audit import AuditRecord, append_audit
from erp.lots import LotRefused, set_lot_status
from erp.master_data import Lot
from schemas.lot_expiry import ExpireLotsInput, ExpireLotsResult
from workflows.wording import refuse, said

# the statuses a lot in stock can expire from (lot_status_transition)
IN_STOCK = ("QUARANTINE", "RELEASED", "ON_HOLD")


def expiry_key(lot_number: str, on: date) -> str:
    """The idempotency key of one lot's expiry judged on `on`."""
    return f"lot-expiry:{on.isoformat()}:{lot_number}"


class LotExpiryActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    def activities(self) -> list[Callable[..., Any]]:
        return [self.expire_lots]

    @activity.defn(name="expire_lots")
    async def expire_lots(self, data: ExpireLotsInput) -> ExpireLotsResult:
        """Move every QUARANTINE, RELEASED or ON_HOLD lot whose expiry date is before `data.on`
        to EXPIRED, with one audit row per lot, all in one transaction."""
        async with self._sessions() as session, session.begin():
            # Locked in id order: a shipment of the same lot waits, then sees EXPIRED. A retry
            # after a commit finds these lots EXPIRED already, so it writes nothing twice.
            lots = await session.scalars(
                select(Lot)
                .where(Lot.expires_on < data.on, Lot.status.in_(IN_STOCK))
                .order_by(Lot.id)
                .with_for_update()
            )
            for lot in lots.all():
                await self._expire(session, lot, data)
            return ExpireLotsResult(on=data.on, lot_numbers=await _expired_by(session, data))

    async def _expire(self, session: AsyncSession, lot: Lot, data: ExpireLotsInput) -> None:
        before = lot.status
        reason = said("expired on %(day)s", day=f"{lot.expires_on:%Y-%m-%d}")
        try:
            await set_lot_status(
                session, lot, "EXPIRED", reason=reason, actor="system", process_id=data.process_id
            )
        except LotRefused as refused:  # only if the status machine itself was changed
            raise refuse("LotRefused", refused.message, non_retryable=True) from None
        await append_audit(
            session,
            AuditRecord(
                actor="system",
                action="lot.expired",
                entity_type="lot",
                entity_id=lot.lot_number,
                reason=reason,
                before={"status": before, "expires_on": lot.expires_on},
                after=with_lot_reasons(session, with_reason_wording({"status": "EXPIRED"}, reason)),
                idempotency_key=expiry_key(lot.lot_number, data.on),
                **activity_origin(),
            ),
        )


async def _expired_by(session: AsyncSession, data: ExpireLotsInput) -> list[str]:
    """The lots this process has moved to EXPIRED: the same answer when a committed attempt is
    retried (its lots are EXPIRED by then, so the selection above finds none)."""
    rows = await session.scalars(
        select(Lot.lot_number)
        .where(Lot.status == "EXPIRED", Lot.status_process_id == data.process_id)
        .order_by(Lot.lot_number)
    )
    return list(rows)
