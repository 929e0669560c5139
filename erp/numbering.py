"""Business numbers (PO-2026-0501, NC-2026-0014, lot R2612-00003) without gaps.

Each series is a row of `number_counter`, advanced by an UPDATE in the transaction that writes
the record: a transaction that rolls back (a refused write, a worker killed before its commit)
gives its number back, and two transactions wanting the same series queue on the row for the
moment until the first commits, which costs nothing more, since every audited write already
waits for the audit chain's lock. See migration 0006 for why sequences were not enough.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from erp.models import Base


class NumberCounter(Base):
    """The last number handed out in one series."""

    __tablename__ = "number_counter"
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger)


async def next_in_series(session: AsyncSession, series: str) -> int:
    """The next number of `series`, taken in the session's transaction."""
    value = await session.scalar(
        update(NumberCounter)
        .where(NumberCounter.name == series)
        .values(last_value=NumberCounter.last_value + 1)
        .returning(NumberCounter.last_value)
    )
    if value is None:
        raise LookupError(f"number series {series!r} does not exist; apply the migrations")
    return int(value)
