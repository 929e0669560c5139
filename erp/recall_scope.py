"""A recall's scope, frozen: every lot reached forward from the suspect lots, and every consignee
with what it received (lots, serials, shipments, quantities); its canonical JSON and SHA-256
hash; the difference between two versions; and how effective the recall is so far.

The walk is erp.containment's set-based forward walk (one recursive query from all the suspect
lots at once, index lookups at every step; see its EXPLAIN notes), then the shipment lines and
serials of every lot reached by lot id, then which of them were used in other lots (those that
were not are the finished lots).

The snapshot holds what the genealogy and the shipments say, not what changes with time (a lot's
status or stock): computed again from the same data it gives the same hash, so the hash proves the
scope people worked from is the one that was frozen. The lots' status at that moment is kept on
recall_lot.status_before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, String, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from erp.containment import forward_scope
from erp.master_data import Lot
from erp.recall import EFFECTIVENESS_TARGETS, Recall, RecallConsignee, RecallResponse

_USED = text(
    "SELECT DISTINCT parent_lot_id FROM genealogy_edge WHERE parent_lot_id = ANY(:lot_ids)"
).bindparams(bindparam("lot_ids", type_=ARRAY(Integer)))


@dataclass(frozen=True)
class FrozenScope:
    snapshot: dict[str, Any]
    snapshot_hash: str

    @property
    def lot_numbers(self) -> list[str]:
        return [lot["lot_number"] for lot in self.snapshot["lots"]]

    @property
    def consignee_codes(self) -> list[str]:
        return [c["code"] for c in self.snapshot["consignees"]]

    def consignee(self, code: str) -> dict[str, Any]:
        return next(c for c in self.snapshot["consignees"] if c["code"] == code)


def canonical_json(snapshot: dict[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 as is: one text for one content."""
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def snapshot_hash(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(snapshot).encode()).hexdigest()


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


async def compute_scope(session: AsyncSession, suspect_lots: list[Lot]) -> FrozenScope:
    """The scope reached forward from the suspect lots (themselves included)."""
    suspects = {lot.lot_number for lot in suspect_lots}
    lots, shipments, _ = await forward_scope(session, [lot.id for lot in suspect_lots])
    found = await session.execute(
        # one array parameter: an IN list has a parameter per lot, and a hub lot's scope passes
        # the 65,535 the protocol allows
        select(Lot.lot_number, Lot.id).where(
            Lot.lot_number
            == any_(bindparam("numbers", [lot.lot_number for lot in lots], type_=ARRAY(String)))
        )
    )
    ids: dict[str, int] = dict(found.tuples().all())
    used = set(await session.scalars(_USED, {"lot_ids": list(ids.values())}))
    consignees: dict[str, dict[str, Any]] = {}
    for s in shipments:
        consignee = consignees.setdefault(
            s.consignee_code,
            {
                "code": s.consignee_code,
                "name": s.consignee_name,
                "quantity": Decimal(0),
                "lots": {},
            },
        )
        consignee["quantity"] += s.quantity
        lot = consignee["lots"].setdefault(
            s.lot_number,
            {
                "lot_number": s.lot_number,
                "part_number": s.part_number,
                "quantity": Decimal(0),
                "shipments": [],
                "serials": [],
            },
        )
        lot["quantity"] += s.quantity
        lot["shipments"] = sorted({*lot["shipments"], s.shipment})
        lot["serials"] = sorted({*lot["serials"], *s.serials})
    snapshot = {
        "suspect_lots": sorted(suspects),
        "lots": [
            {
                "lot_number": lot.lot_number,
                "part_number": lot.part_number,
                "role": "suspect" if lot.lot_number in suspects else "affected",
                "finished": ids[lot.lot_number] not in used,
            }
            for lot in sorted(lots, key=lambda lot: lot.lot_number)
        ],
        "consignees": [
            {
                "code": c["code"],
                "name": c["name"],
                "quantity": _quantity(c["quantity"]),
                "lots": [
                    lot | {"quantity": _quantity(lot["quantity"])}
                    for _, lot in sorted(c["lots"].items())
                ],
            }
            for _, c in sorted(consignees.items())
        ],
    }
    return FrozenScope(snapshot, snapshot_hash(snapshot))


def difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """What a later version adds: suspect lots, lots, consignees, and the consignees already in
    scope that now received more of the recalled product."""
    old_consignees = {c["code"]: c for c in before.get("consignees", [])}
    return {
        "suspect_lots_added": sorted(
            set(after["suspect_lots"]) - set(before.get("suspect_lots", []))
        ),
        "lots_added": sorted(
            {lot["lot_number"] for lot in after["lots"]}
            - {lot["lot_number"] for lot in before.get("lots", [])}
        ),
        "consignees_added": sorted(
            c["code"] for c in after["consignees"] if c["code"] not in old_consignees
        ),
        "consignees_changed": sorted(
            c["code"]
            for c in after["consignees"]
            if c["code"] in old_consignees and old_consignees[c["code"]] != c
        ),
    }


def scope_figures(snapshot: dict[str, Any]) -> tuple[int, int, Decimal]:
    """(finished lots, serials shipped, quantity shipped) of a snapshot."""
    finished = sum(1 for lot in snapshot["lots"] if lot["finished"])
    serials = sum(len(lot["serials"]) for c in snapshot["consignees"] for lot in c["lots"])
    shipped = sum((Decimal(c["quantity"]) for c in snapshot["consignees"]), Decimal(0))
    return finished, serials, shipped


# ---------------------------------------------------------------- effectiveness


@dataclass(frozen=True)
class EffectivenessFigures:
    level: str | None
    target_percent: int
    consignees: int
    notified: int
    responded: int
    reconciled: int
    checks: int
    checks_open: int
    checks_failed: int

    @property
    def responded_percent(self) -> float:
        return 100.0 * self.responded / self.consignees if self.consignees else 100.0

    @property
    def reconciled_percent(self) -> float:
        return 100.0 * self.reconciled / self.consignees if self.consignees else 100.0

    @property
    def met(self) -> bool:
        """Responded and reconciled shares at or above the level's target, every sampled check
        verified. Before classification (no level) it is not met."""
        if self.level is None:
            return False
        return (
            self.responded_percent >= self.target_percent
            and self.reconciled_percent >= self.target_percent
            and self.checks_open == 0
            and self.checks_failed == 0
        )


async def effectiveness(session: AsyncSession, recall: Recall) -> EffectivenessFigures:
    """A consignee responded when it acknowledged or any answer of it was recorded; it is
    reconciled when its notice reconciled what it received with what it answered and returned.
    A sampled check is open while it has no result, failed while its result says so."""
    answered = (
        select(RecallResponse.id)
        .where(RecallResponse.recall_consignee_id == RecallConsignee.id)
        .exists()
    )
    row = (
        await session.execute(
            select(
                func.count(),
                func.count(RecallConsignee.notified_at),
                func.count().filter(RecallConsignee.acknowledged_at.is_not(None) | answered),
                func.count(RecallConsignee.reconciled_at),
                func.count().filter(RecallConsignee.checked),
                func.count().filter(RecallConsignee.checked, RecallConsignee.check_result == ""),
                func.count().filter(
                    RecallConsignee.checked, RecallConsignee.check_result.like("failed%")
                ),
            ).where(RecallConsignee.recall_id == recall.id)
        )
    ).one()
    level = recall.effectiveness_level
    return EffectivenessFigures(
        level=level,
        target_percent=EFFECTIVENESS_TARGETS[level] if level else 100,
        consignees=row[0],
        notified=row[1],
        responded=row[2],
        reconciled=row[3],
        checks=row[4],
        checks_open=row[5],
        checks_failed=row[6],
    )
