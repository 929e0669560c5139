"""Issue 7.1: the worker is SIGKILLed inside the audited activities of every process, and the ERP
ends up holding exactly the rows a run without any crash holds.

The story is the REST integration tests of the four processes, as the external systems and the
people drive them (a customer order from purchase to delivery, a change request to signed
closure, a nonconformance from a failed inspection to the MRB's return to the supplier, a recall
from scope to reconciled answers), run on a LocalStack whose every part is its own OS process.
It runs twice: once with a plain worker (the reference), once with tests/reliability/
crashing_worker.py, which kills itself just before or just after the commit of the chosen
activities; a supervisor starts a new worker each time, as an orchestrator would. Then every
table is compared row for row, and the audit chain is verified.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import tests.api.test_change_control_api as change_story
import tests.api.test_nonconformance_from_procurement_api as nc_story
import tests.api.test_procure_to_deliver_api as order_story
import tests.api.test_recall_api_flow as recall_story
from erp.audit import verify_chain
from lotline_run.stack import LocalStack
from tests.reliability.fingerprint import differences, erp_fingerprint

# one death in an activity of each process, before and after the commit
CRASH_POINTS = (
    "receive_goods@after-commit",  # purchase: the lot and its receipt movement
    "record_decision@after-commit",  # human task: decision and e-signature (first one signed)
    "record_production@before-commit",  # work order: consumption, genealogy, serials
    "ship_goods@after-commit",  # shipment: lines and movements
    "apply_change@after-commit",  # change control: new revisions effective, ASL changed
    "contain_lots@after-commit",  # nonconformance: lots on hold
    "apply_disposition@before-commit",  # MRB: return to supplier, SCAR
    "hold_recall_lots@before-commit",  # recall: in-house stock held
    "send_recall_notice@after-commit",  # recall: a consignee's notice in the outbox
)


async def whole_story(stack: LocalStack) -> None:
    """Two processes at a time, in the same order on every run."""
    await asyncio.gather(
        nc_story.test_failed_incoming_inspection_opens_an_nc_that_returns_the_lot(stack),
        change_story.test_change_from_request_to_signed_closure_over_rest(stack),
    )
    await asyncio.gather(
        order_story.test_customer_order_to_delivery_and_trace_both_ways(stack),
        recall_story.test_recall_from_scope_to_reconciled_answers_and_report(stack),
    )


async def keep_a_worker_running(stack: LocalStack, env: dict[str, str], deaths: list[int]) -> None:
    """The orchestrator: whenever the worker dies, note how, and start another."""
    argv = [sys.executable, "-m", "tests.reliability.crashing_worker"]
    while True:
        worker = await stack.start_worker(argv, env=env)
        code = await worker.wait()
        stack.workers.remove(worker)
        deaths.append(code)


async def test_a_worker_killed_inside_audited_activities_leaves_exactly_the_rows_of_a_clean_run(
    tmp_path: Path,
) -> None:
    async with LocalStack(tmp_path / "reference") as reference:
        await reference.start(workers=1)
        await whole_story(reference)
        assert reference.sessions is not None
        expected = await erp_fingerprint(reference.sessions)

    ledger = tmp_path / "crashes.txt"
    env = {"LOTLINE_CRASH_POINTS": ",".join(CRASH_POINTS), "LOTLINE_CRASH_LEDGER": str(ledger)}
    deaths: list[int] = []
    async with LocalStack(tmp_path / "crashing") as crashing:
        await crashing.start(workers=0)
        supervisor = asyncio.create_task(keep_a_worker_running(crashing, env, deaths))
        try:
            await whole_story(crashing)
        finally:
            supervisor.cancel()
        fired = ledger.read_text().split() if ledger.exists() else []
        assert sorted(fired) == sorted(CRASH_POINTS), f"crash points that never fired: {fired}"
        assert deaths == [-9] * len(CRASH_POINTS), deaths  # every death was one of ours
        assert crashing.sessions is not None
        actual = await erp_fingerprint(crashing.sessions)
        async with crashing.sessions() as session:
            chain = await verify_chain(session)
    assert chain.ok, chain.problem
    problems = differences(expected, actual)
    assert not problems, "the crashed run's ERP differs:\n" + "\n".join(problems)
    assert sum(actual["audit_entry"].values()) == sum(expected["audit_entry"].values()) > 100
