"""Payloads of the nightly lot expiry: which day it judges, and the lots it moved to EXPIRED."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel


class ExpireLotsInput(BaseModel):
    process_id: str  # the workflow id: recorded on each lot's status change
    on: date  # a lot whose expiry date is before this day expires


class ExpireLotsResult(BaseModel):
    """The day judged and the lots this process moved to EXPIRED (a retry returns the same)."""

    on: date
    lot_numbers: list[str] = []
