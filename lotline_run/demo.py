"""Demo processes started right after the demo data loads, so the inbox is not empty."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from schemas.approval import ApprovalRequestInput
from schemas.human_task import DecisionRule

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


async def start_demo_processes(client: Client, task_queue: str) -> list[str]:
    """Start the demo approval requests; returns the ids started now (repeats are skipped)."""
    started: list[str] = []
    for request in DEMO_REQUESTS:
        try:
            await client.start_workflow(
                "ApprovalRequest", request, id=request.process_id, task_queue=task_queue
            )
        except WorkflowAlreadyStartedError:
            continue
        started.append(request.process_id)
    return started
