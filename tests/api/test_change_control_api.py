"""Change control through the REST API, as an external system and the people would drive it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from erp.master_data import AslEntry, Document, Item
from erp.models import Task
from tests.helpers import eventually

CHANGE = {
    "change_type": "design",
    "title": "Luer lock connector rev D (stronger collar)",
    "reason": "Collar cracks found in complaint CMP-2026-031; rev D uses a thicker collar.",
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
    "requested_effective_on": date.today().isoformat(),
}
PASSWORD = "lotline-demo"


async def open_task(stack, change_id: str, step: str) -> Task:
    async def probe():
        async with stack.sessions() as session:
            return await session.scalar(
                select(Task).where(Task.workflow_id == f"{change_id}.{step}", Task.status == "open")
            )

    return await eventually(probe, what=f"task {step}")


async def decide(stack, headers, change_id: str, step: str, outcome: str, fields=None, sign=False):
    task = await open_task(stack, change_id, step)
    body = {"outcome": outcome, "fields": fields or {}} | ({"password": PASSWORD} if sign else {})
    response = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision", json=body, headers=headers
    )
    assert response.status_code == 200, (step, response.text)
    return response.json()


async def registered_change(stack, change_id: str) -> dict:
    """Read the change until it has registered itself (a slow worker: the start said so)."""

    async def probe():
        response = await stack.http.get(f"/api/v1/changes/{change_id}", headers=stack.mes)
        return response.json() if response.status_code == 200 else None

    return await eventually(probe, timeout=60, what=f"change {change_id} registered")


async def test_change_from_request_to_signed_closure_over_rest(stack):
    bob, carol, erin, ivan, alice = [
        await stack.token(u) for u in ("bob", "carol", "erin", "ivan", "alice")
    ]
    started = await stack.http.post(
        "/api/v1/processes/change-control",
        json=CHANGE,
        headers=stack.mes | {"Idempotency-Key": "mes-eco-7781"},
    )
    assert started.status_code == 201, started.text
    change = started.json()
    if change["status"] == "starting":  # the documented answer while it is being registered
        change = await registered_change(stack, change["id"])
    assert change["number"].startswith("CR-") and change["status"] == "triage"
    again = await stack.http.post(
        "/api/v1/processes/change-control",
        json=CHANGE,
        headers=stack.mes | {"Idempotency-Key": "mes-eco-7781"},
    )
    assert again.status_code == 200 and again.json()["id"] == change["id"]
    cid = change["id"]

    await decide(
        stack,
        bob,
        cid,
        "triage-1",
        "accept",
        {
            "classification": "minor",
            "assess_engineering": "no",
            "assess_qa": "yes",
            "assess_ra": "yes",
            "assess_production": "no",
            "assess_supply_chain": "no",
            "implementer": "ivan",
        },
    )

    async def triaged():
        body = (await stack.http.get(f"/api/v1/changes/{cid}", headers=alice)).json()
        return body if body["classification"] else None

    detail = await eventually(triaged, what="triage recorded")
    assert detail["classification"] == "minor" and detail["required_assessments"] == ["qa", "ra"]
    await decide(
        stack, carol, cid, "assess-qa-r1", "acceptable", {"assessment": "Inspect collar wall."}
    )
    await decide(stack, erin, cid, "assess-ra-r1", "acceptable", {"assessment": "Letter to file."})

    async def assessed():
        body = (await stack.http.get(f"/api/v1/changes/{change['number']}", headers=alice)).json()
        return body if len(body["assessments"]) == 2 else None

    detail = await eventually(assessed, what="assessments recorded")
    assert {"open_po", "lot_in_stock", "where_used", "document", "asl"} <= set(
        detail["impact"]["counts"]
    )
    before = {s["record"]: s for s in detail["side_by_side"]}
    assert before["part LC-0110"]["before"]["revision"] == "C"
    assert before["part LC-0110"]["after"]["revision"] == "D"

    await decide(stack, bob, cid, "ccb-r1", "approve", sign=True)
    await decide(stack, erin, cid, "ccb-r1", "approve", sign=True)
    withdraw = await stack.http.post(
        f"/api/v1/processes/{cid}/cancel",
        json={"reason": "too late"},
        headers=await stack.token("admin"),
    )
    assert withdraw.status_code == 409 and "can no longer be withdrawn" in withdraw.json()["detail"]
    for n in (1, 2, 3):
        await decide(
            stack, ivan, cid, f"implement-{n}-round1", "done", {"evidence": "ECO-7781 pack"}
        )
    verify_task = await open_task(stack, cid, "verify-round1")
    by_implementer = await stack.http.post(
        f"/api/v1/tasks/{verify_task.id}/decision",
        json={"outcome": "verified", "password": PASSWORD},
        headers=ivan,
    )
    assert by_implementer.status_code == 403
    await decide(stack, bob, cid, "verify-round1", "verified", sign=True)
    await decide(stack, carol, cid, "closure", "close", sign=True)

    async def closed():
        body = (await stack.http.get(f"/api/v1/changes/{cid}", headers=alice)).json()
        return body if body["status"] == "closed" else None

    final = await eventually(closed, what="change closed")
    assert [s["meaning"] for s in final["signatures"]] == [
        "approved",
        "approved",
        "verified",
        "closed",
    ]
    sides = {s["record"]: s for s in final["side_by_side"]}
    assert sides["part LC-0110"]["before"]["status"] == "obsolete"
    assert sides["part LC-0110"]["after"]["status"] == "effective"
    actions = [e["action"] for e in final["timeline"]]
    assert "change.requested" in actions and "change.effective" in actions
    async with stack.sessions() as session:
        revision = await session.scalar(
            select(Item.revision).where(Item.part_number == "LC-0110", Item.status == "effective")
        )
        label = await session.scalar(
            select(Document.version).where(
                Document.number == "LBL-IS-2000", Document.status == "effective"
            )
        )
        asl = await session.scalar(select(AslEntry.status).where(AslEntry.part_number == "LC-0110"))
    assert (revision, label, asl) == ("D", "04", "conditional")
    audit = await stack.http.get("/api/v1/audit?action=master_data.item_revision", headers=carol)
    row = audit.json()["items"][0]
    assert row["before"]["revision"] == "C" and row["after"]["revision"] == "D"
    assert (await stack.http.get("/api/v1/audit/verify", headers=carol)).json()["ok"]
    listed = (await stack.http.get("/api/v1/changes?status=closed", headers=alice)).json()
    assert [c["number"] for c in listed["items"]] == [change["number"]]


async def test_bad_change_requests_get_clear_errors(stack):
    alice = await stack.token("alice")
    unknown = await stack.http.post(
        "/api/v1/processes/change-control",
        json=CHANGE
        | {"actions": [{"kind": "item_revision", "target": "NOPE-1", "new_revision": "B"}]},
        headers=alice,
    )
    assert unknown.status_code == 422 and "unknown part number NOPE-1" in unknown.json()["detail"]
    invalid = await stack.http.post(
        "/api/v1/processes/change-control",
        json=CHANGE | {"risk": "extreme", "actions": []},
        headers=alice,
    )
    assert invalid.status_code == 422
    assert "risk" in invalid.json()["detail"] and "actions" in invalid.json()["detail"]
    effective = await stack.http.post(
        "/api/v1/processes/change-control",
        json=CHANGE
        | {"actions": [{"kind": "item_revision", "target": "LC-0110", "new_revision": "C"}]},
        headers=alice,
    )
    assert effective.status_code == 422 and "already effective" in effective.json()["detail"]
    no_key = await stack.http.get("/api/v1/changes")
    assert no_key.status_code == 401


async def test_a_system_without_the_start_scope_is_refused(stack):
    from erp.users import create_api_key

    async with stack.sessions() as session, session.begin():
        key = await create_api_key(session, "lims-read", "mes", "tasks:read")
    refused = await stack.http.post(
        "/api/v1/processes/change-control", json=CHANGE, headers={"X-API-Key": key}
    )
    assert refused.status_code == 403 and "processes:start" in refused.json()["detail"]
    async with stack.sessions() as session:
        from erp.change_control import ChangeRequest

        assert (await session.scalar(select(ChangeRequest.id))) is None


async def test_the_requester_withdraws_before_approval(stack):
    alice, bob = await stack.token("alice"), await stack.token("bob")
    started = await stack.http.post("/api/v1/processes/change-control", json=CHANGE, headers=alice)
    cid = started.json()["id"]
    await open_task(stack, cid, "triage-1")
    refused = await stack.http.post(
        f"/api/v1/processes/{cid}/cancel", json={"reason": "not mine"}, headers=bob
    )
    assert refused.status_code == 403
    withdrawn = await stack.http.post(
        f"/api/v1/processes/{cid}/cancel",
        json={"reason": "superseded by CR for rev E"},
        headers=alice,
    )
    assert withdrawn.status_code == 202, withdrawn.text
    detail = (await stack.http.get(f"/api/v1/changes/{cid}", headers=alice)).json()
    assert detail["status"] == "withdrawn" and detail["open_tasks"] == []
    reasons = [e["reason"] for e in detail["timeline"] if e["action"] == "change.withdrawn"]
    assert reasons == ["withdrawn by alice: superseded by CR for rev E"]
    result = await stack.temporal.get_workflow_handle(cid).result()
    assert result["status"] == "withdrawn"  # a withdrawal is a normal end, not a failure
    again = await stack.http.post(
        f"/api/v1/processes/{cid}/cancel", json={"reason": "twice"}, headers=alice
    )
    assert again.status_code == 409
