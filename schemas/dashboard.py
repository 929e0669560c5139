"""The operations dashboard: its filters and every figure it shows (GET /api/v1/dashboard and the
/dashboard page read the same model, computed by erp/dashboard.py). Definitions: docs/dashboard.md."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel

# every kind of process: what the dashboard can be narrowed to, and the labels of ui/values.py
PROCESS_KINDS = (
    "approval",
    "change-control",
    "procure-to-deliver",
    "purchase",
    "work-order",
    "shipment",
    "nonconformance",
    "capa",
    "recall",
    "recall-notice",
)
SLA_STATES = ("on_time", "due_soon", "overdue", "escalated")
DUE_SOON_HOURS = 24  # an open task due within this many hours is "due soon"
DEFAULT_WEEKS = 12  # the default date range: the last 12 weeks up to today
MAX_RANGE_DAYS = 731  # two years: a longer range is refused (422)
SLOWEST_STEPS = 5


class DashboardFilters(BaseModel):
    date_from: date  # inclusive, 00:00 UTC
    date_to: date  # inclusive, up to 24:00 UTC
    process_kind: str | None = None  # narrows open tasks and cycle times


class SlaRow(BaseModel):
    """Open tasks of one process kind by SLA state (each task in exactly one state)."""

    process_kind: str
    on_time: int
    due_soon: int
    overdue: int
    escalated: int
    total: int


class CycleTime(BaseModel):
    """Hours from open to close: of completed tasks of one step, or of completed processes of
    one kind (step is None)."""

    process_kind: str
    step: str | None = None
    count: int
    median_hours: float
    p90_hours: float


class WeeklyCycleTime(BaseModel):
    """One ISO week (Monday) of a cycle-time trend; process_kind None: every task in the filter."""

    week: date
    process_kind: str | None = None
    count: int
    median_hours: float
    p90_hours: float


class AgeBucket(BaseModel):
    key: str  # 0-30, 31-90, 91-180, over-180
    low_days: int
    high_days: int | None
    count: int


class CountRow(BaseModel):
    key: str  # an NC source, or a supplier code
    label: str  # the supplier's name; the source itself for sources
    count: int


class SupplierScore(BaseModel):
    supplier_code: str
    supplier_name: str
    receipts: int
    on_time_receipts: int
    on_time_percent: float | None  # None: no receipt in the range
    inspections: int
    accepted_inspections: int
    acceptance_percent: float | None  # None: no incoming inspection in the range
    nonconformances: int


class RecallEffectiveness(BaseModel):
    number: str
    process_id: str
    drill: bool
    status: str
    classification: str | None
    level: str | None  # effectiveness-check level A–E
    target_percent: int | None  # of consignees responded (21 CFR 7.42(b)(3))
    consignees: int
    notified: int
    responded: int
    responded_percent: float
    target_met: bool
    units_shipped: Decimal
    units_recovered: Decimal  # returned + corrected, as the consignees reported
    units_received_back: Decimal  # counted back in at our dock
    recovered_percent: float


class LotOnHold(BaseModel):
    lot_number: str
    part_number: str
    quantity: Decimal
    uom: str
    supplier_code: str | None
    hold_reason: str
    held_since: datetime | None  # the last change into ON_HOLD, if the trigger recorded it


class Dashboard(BaseModel):
    filters: DashboardFilters
    generated_at: datetime  # database time: "now" for the SLA states and ages
    due_soon_hours: int = DUE_SOON_HOURS
    open_tasks: list[SlaRow]
    step_cycle_times: list[CycleTime]
    process_cycle_times: list[CycleTime]
    slowest_steps: list[CycleTime]
    task_trend: list[WeeklyCycleTime]
    process_trend: list[WeeklyCycleTime]
    capa_aging: list[AgeBucket]
    nc_by_source: list[CountRow]
    nc_by_supplier: list[CountRow]
    supplier_scorecards: list[SupplierScore]
    recalls: list[RecallEffectiveness]
    lots_on_hold: list[LotOnHold]
    lots_on_hold_count: int
