"""Demo processes started right after the demo data loads, so the inbox is not empty."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from erp.seed_master_data import seeded_lot_number
from schemas.approval import ApprovalRequestInput
from schemas.change_control import ChangeContent, ChangeRequestInput
from schemas.human_task import DecisionRule
from schemas.quality import NcSource, NonconformanceRequest, Severity
from schemas.supply import (
    ProcureToDeliverRequest,
    PurchaseLine,
    PurchaseRequest,
    ShipmentLineRequest,
    ShipmentRequest,
)

DEMO_REQUESTS: list[ApprovalRequestInput] = [
    ApprovalRequestInput(
        process_id="apr-demo-0001",
        title="Approve SOP-QA-014 rev D (incoming inspection)",
        description="Revision D adds sampling per ANSI/ASQ Z1.4 for the new PEEK housings.",
        initiator="alice",
        approver_groups=["qa"],
        escalation_chain=["qa-manager", "quality-director"],
        signs=True,
        context={"Document": "SOP-QA-014", "Revision": "D"},
    ),
    ApprovalRequestInput(
        process_id="apr-demo-0002",
        title="Approve drawing change DWG-2207 rev C (catheter hub tolerance)",
        description="Tightens the luer taper tolerance; two change-control board members approve.",
        initiator="alice",
        approver_groups=["ccb"],
        rule=DecisionRule.K_OF_N,
        k=2,
        escalation_chain=["quality-director"],
        signs=True,
        context={"Drawing": "DWG-2207", "Revision": "C"},
    ),
    ApprovalRequestInput(
        process_id="apr-demo-0003",
        title="Approve line clearance deviation on line 3 (urgent)",
        description="Label roll changeover left one label in the bin; please review today.",
        initiator="ivan",
        approver_groups=["qa"],
        sla_hours=1,
        reminder_hours=None,
        escalation_chain=["qa-manager", "quality-director"],
        signs=True,
        context={"Line": "3"},
    ),
]


def demo_change() -> ChangeRequestInput:
    """A design change waiting for QA triage, on the demo catalogue (effective in 30 days)."""
    effective = date.today() + timedelta(days=30)
    return ChangeRequestInput(
        process_id="cr-demo-0001",
        requester="alice",
        content=ChangeContent.model_validate(
            {
                "change_type": "design",
                "title": "Luer lock connector rev D: thicker rotating collar",
                "reason": "Collar cracks in complaints CMP-2026-031/034; rev D thickens the "
                "collar wall from 1.2 to 1.5 mm. Label artwork updated for the new revision.",
                "risk": "medium",
                "affected_items": ["IS-2000"],
                "actions": [
                    {"kind": "item_revision", "target": "LC-0110", "new_revision": "D"},
                    {"kind": "document_version", "target": "LBL-IS-2000", "new_revision": "04"},
                    {
                        "kind": "asl_status",
                        "target": "SUP-0002",
                        "part_number": "LC-0110",
                        "new_status": "conditional",
                        "note": "first articles of rev D pending",
                    },
                ],
                "requested_effective_on": effective.isoformat(),
            }
        ),
    )


def demo_supply() -> list[tuple[str, ProcureToDeliverRequest | PurchaseRequest | ShipmentRequest]]:
    """A customer order for pumps (5 in stock, 30 to make, mechanisms to buy), a purchase of tubing
    awaiting approval, and a shipment of infusion sets for the warehouse to pick."""
    today = date.today()
    return [
        (
            "ProcureToDeliver",
            ProcureToDeliverRequest(
                process_id="co-demo-0001",
                requester="frank",
                customer_code="CUS-0001",
                part_number="IP-3000",
                quantity=Decimal(35),
                due_on=today + timedelta(days=45),
                customer_reference="PO 4500123987",
            ),
        ),
        (
            "Purchase",
            PurchaseRequest(
                process_id="po-demo-0001",
                requester="frank",
                supplier_code="SUP-0001",
                lines=[
                    PurchaseLine(
                        part_number="TB-0150", quantity=Decimal(20000), unit_price=Decimal("0.42")
                    )
                ],
                due_on=today + timedelta(days=21),
                buyer_note="Safety stock for Q1",
            ),
        ),
        (
            "Shipment",
            ShipmentRequest(
                process_id="sh-demo-0001",
                requester="grace",
                customer_code="CUS-0003",
                lines=[ShipmentLineRequest(part_number="IS-2000", quantity=Decimal(200))],
            ),
        ),
    ]


def demo_nonconformance() -> NonconformanceRequest:
    """The drip chambers held at incoming inspection, now reported: waiting for QA to investigate."""
    return NonconformanceRequest(
        process_id="nc-demo-0001",
        reporter="heidi",
        source=NcSource.INCOMING,
        severity=Severity.MAJOR,
        title="Flash on the filter seat of drip chambers DC-0330",
        description="Incoming inspection found flash on the filter seat in 3 of 80 samples; "
        "the filter may not seat and let particles through.",
        part_number="DC-0330",
        lots=[seeded_lot_number("DC-0330", "ON_HOLD", date.today())],
        evidence="Inspection record and photos IR-2026-0117",
        supplier_code="SUP-0003",
    )


async def start_demo_processes(client: Client, task_queue: str) -> list[str]:
    """Start the demo processes; returns the ids started now (repeats are skipped)."""
    started: list[str] = []
    change = demo_change()
    try:
        await client.start_workflow(
            "ChangeControl", change, id=change.process_id, task_queue=task_queue
        )
        started.append(change.process_id)
    except WorkflowAlreadyStartedError:
        pass
    nc = demo_nonconformance()
    try:
        await client.start_workflow("Nonconformance", nc, id=nc.process_id, task_queue=task_queue)
        started.append(nc.process_id)
    except WorkflowAlreadyStartedError:
        pass
    for workflow_type, supply in demo_supply():
        try:
            await client.start_workflow(
                workflow_type, supply, id=supply.process_id, task_queue=task_queue
            )
        except WorkflowAlreadyStartedError:
            continue
        started.append(supply.process_id)
    for request in DEMO_REQUESTS:
        try:
            await client.start_workflow(
                "ApprovalRequest", request, id=request.process_id, task_queue=task_queue
            )
        except WorkflowAlreadyStartedError:
            continue
        started.append(request.process_id)
    return started
