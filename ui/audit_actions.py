"""The audit trail's recorded actions (`task.decided`, `lot.held`) as a person reads them.

Each action the code writes has an English label — what the task and process timelines have
always shown (`humanize`: `task.decided` → `decided`) — and a Chinese entry under
`msgctxt "audit action"` in `ui/locales/zh_Hans/messages.po` or `audit.po`.
`ui.values.VALUE_LABELS` carries them as the `"audit action"` context, so
`{{ h.action|stored("audit action") }}` shows them, the audit-trail report prints them
(`erp/report_audit.py`) and `tests/ui/test_translations.py` checks each has its translation.
Pages and reports keep the recorded action visible next to its label, so an auditor still reads
the value as stored.

The list holds the literal actions and every value of the composed ones: a status a workflow
sets (`capa.<status>`, `change.<status>`, `process.<status>`, …), a lot disposition
(`lot.<DispositionAction>`), a master-data change (`master_data.<ActionKind>`).
`tests/ui/test_audit_actions.py` reads them all from the code (`tests/ui/audit_action_scan.py`)
and fails on one not listed. An action not listed (an old row's) reads as `humanize` gives it."""

from __future__ import annotations

from schemas.change_control import ActionKind
from schemas.nonconformance import DispositionAction


def humanize(action: str) -> str:
    """The English label of a recorded action as the timelines show it."""
    return (
        action.replace("task.", "")
        .replace("process.", "process ")
        .replace("change.", "change ")
        .replace("master_data.", "master data: ")
        .replace("_", " ")
    )


# every action the code writes (tests/ui/test_audit_actions.py reads them from the code)
RECORDED_ACTIONS: tuple[str, ...] = (
    "task.opened",
    "task.claimed",
    "task.released",
    "task.decided",
    "task.cancelled",
    "task.escalated",
    "task.reminded",
    "task.overdue",
    "task.claim_refused",
    "task.release_refused",
    "task.decision_refused",
    "process.started",
    "process.step",
    "process.completed",
    "process.cancelled",
    "process.failed",
    "process.withdrawn",
    "process.withdraw_refused",
    "login.succeeded",
    "login.failed",
    "login.refused",
    "user.created",
    "user.locale_changed",
    "user.unlocked",
    "group.created",
    "api_key.created",
    "delegation.created",
    "delegation.revoked",
    "signature.locked",
    "signature.refused",
    "report.produced",
    "notification.digest",
    "outbox.retried",
    "webhook.subscribed",
    "webhook.deleted",
    "webhook.delivery_retried",
    "demo.seeded",
    "demo.master_data_seeded",
    "event.refused",
    "change.requested",
    "change.triaged",
    "change.assessed",
    "change.revised",
    "change.effective",
    "change.approved",
    "change.rejected",
    "change.cancelled",
    "change.implementing",
    "change.verified",
    "change.closed",
    # change.<status>: the statuses workflows/change_control.py sets
    "change.triage",
    "change.assessment",
    "change.ccb",
    "change.revision",
    "change.implementation",
    "change.awaiting_effective",
    "change.blocked",
    "change.verification",
    "change.closure",
    "change.withdrawn",
    # master_data.<kind>: a change applied to the master data (erp/changes.apply_actions)
    *(f"master_data.{kind.value}" for kind in ActionKind),
    "capa.opened",
    "capa.root_cause_recorded",
    "capa.plan_recorded",
    "capa.action_completed",
    "capa.action_change_linked",
    "capa.effective",
    "capa.not_effective",
    "capa.closed",
    "capa.cancelled",
    "capa.reopened",
    # capa.<status>: the statuses workflows/capa.py sets
    "capa.root_cause",
    "capa.planning",
    "capa.plan_approval",
    "capa.actions",
    "capa.effectiveness_wait",
    "capa.effectiveness_check",
    "capa.closure",
    "nonconformance.reported",
    "nonconformance.contained",
    "nonconformance.investigated",
    "nonconformance.dispositioned",
    "nonconformance.capa_decided",
    "nonconformance.capa_started",
    "nonconformance.recall_requested",
    "nonconformance.refused",
    "nonconformance.closed",
    "nonconformance.cancelled",
    "nonconformance.extended",
    "nonconformance.recall_not_needed",
    # nonconformance.<status>: the statuses workflows/nonconformance.py sets
    "nonconformance.containment",
    "nonconformance.investigation",
    "nonconformance.disposition",
    "nonconformance.capa_decision",
    "nonconformance.closure",
    "lot.held",
    "lot.released",
    "lot.expired",
    "lot.inspected",
    "lot.reinspected",
    "lot.status_changed",
    "lot.nonconformance_raised",
    "lot.not_held",
    # lot.<disposition>: a nonconformance's disposition applied to a lot
    *(f"lot.{action.value}" for action in DispositionAction),
    "purchase.requested",
    "purchase.supplier_checked",
    "purchase.supplier_changed",
    "purchase.issued",
    "purchase.confirmed",
    "purchase.asn",
    "purchase.goods_received",
    "purchase.rejected",
    "purchase.received",
    "purchase.cancelled",
    # purchase.<status>: the order statuses workflows/purchase.py sets
    "purchase.approved",
    "purchase.closed",
    "customer_order.received",
    "customer_order.planned",
    "customer_order.delivered",
    "customer_order.cancelled",
    "customer_order.blocked",
    # customer_order.<status>: workflows/procure_to_deliver.py
    "customer_order.purchasing",
    "customer_order.production",
    "customer_order.shipping",
    "work_order.planned",
    "work_order.allocated",
    "work_order.materials_short",
    "work_order.refused",
    "work_order.issue_refused",
    "work_order.production_refused",
    "work_order.cancelled",
    "work_order.produced",
    "shipment.planned",
    "shipment.delivered",
    "shipment.cancelled",
    "shipment.refused",
    "shipment.ship_refused",
    "shipment.stock_short",
    "shipment.picked",
    "shipment.shipped",
    "scar.opened",
    "recall.initiated",
    "recall.scoped",
    "recall.drill_hold_worked_out",
    "recall.health_hazard_evaluated",
    "recall.classified",
    "recall.strategy_approved",
    "recall.consignees_notified",
    "recall.notice_sent",
    "recall.reminder_sent",
    "recall.response_recorded",
    "recall.consignee_escalated",
    "recall.consignee_reconciled",
    "recall.return_received",
    "recall.checks_sampled",
    "recall.check_verified",
    "recall.check_failed",
    "recall.report_clock_started",
    "recall.report_submitted",
    "recall.status_report",
    "recall.termination_approved",
    "recall.termination_rejected",
    "recall.termination_waived",
    "recall.refused",
    "recall.scope_widened",
    "recall.stock_held",
    "recall.strategy_rejected",
    "recall.termination_refused",
    # recall.<status>: the statuses workflows/recall.py sets
    "recall.scoping",
    "recall.holding",
    "recall.hazard_evaluation",
    "recall.classification",
    "recall.strategy_approval",
    "recall.notifying",
    "recall.effectiveness",
    "recall.termination_approval",
    "recall.terminated",
    "recall.closure",
    "recall.closed",
    "recall.cancelled",
)

AUDIT_ACTION_LABELS: dict[str, str] = {action: humanize(action) for action in RECORDED_ACTIONS}
