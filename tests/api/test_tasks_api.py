"""API → update → audited activity → task row closed → audit rows chained, on the real stack."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from erp.models import AuditEntry, ESignature, Outbox, Task, TaskDecision
from tests.helpers import eventually

APPROVAL = {
    "title": "Approve SOP-QA-014 rev D",
    "description": "Incoming inspection sampling per ANSI Z1.4",
    "approver_groups": ["qa"],
    "sla_hours": 48,
}


async def start_approval(stack, headers, body=None, key: str | None = None) -> str:
    extra = {"Idempotency-Key": key} if key else {}
    response = await stack.http.post(
        "/api/v1/processes/approval", json=body or APPROVAL, headers=headers | extra
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


async def open_task_of(stack, process_id: str) -> Task:
    async def probe():
        async with stack.sessions() as session:
            return await session.scalar(
                select(Task).where(Task.process_id == process_id, Task.status == "open")
            )

    return await eventually(probe, what=f"open task of {process_id}")


async def test_requests_without_credentials_are_refused(stack):
    for method, path in [
        ("GET", "/api/v1/tasks"),
        ("POST", "/api/v1/tasks/1/decision"),
        ("GET", "/api/v1/audit/verify"),
        ("POST", "/api/v1/processes/approval"),
        ("GET", "/metrics"),
    ]:
        response = await stack.http.request(method, path)
        assert response.status_code == 401, (path, response.text)
        assert "Authorization: Bearer" in response.json()["detail"]
    bad = await stack.http.get("/api/v1/tasks", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "invalid or expired" in bad.json()["detail"]


async def test_approval_end_to_end_with_signature(stack):
    alice, bob, carol = (
        await stack.token("alice"),
        await stack.token("bob"),
        await stack.token("carol"),
    )
    process_id = await start_approval(stack, alice, key="sop-qa-014-d")
    again = await stack.http.post(
        "/api/v1/processes/approval",
        json=APPROVAL,
        headers=alice | {"Idempotency-Key": "sop-qa-014-d"},
    )
    assert again.status_code == 200 and again.json()["id"] == process_id
    task = await open_task_of(stack, process_id)

    inbox = (await stack.http.get("/api/v1/tasks", headers=bob)).json()
    assert [t["id"] for t in inbox["items"]] == [task.id]
    assert (await stack.http.get("/api/v1/tasks", headers=alice)).json()["count"] == 0

    own = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": "approve", "password": "lotline-demo"},
        headers=alice,
    )
    assert own.status_code == 403 and "segregation of duties" in own.json()["detail"]

    assert (await stack.http.post(f"/api/v1/tasks/{task.id}/claim", headers=bob)).status_code == 200
    taken = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": "approve", "password": "lotline-demo"},
        headers=carol,
    )
    assert taken.status_code == 409 and "claimed by bob" in taken.json()["detail"]

    unsigned = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision", json={"outcome": "approve"}, headers=bob
    )
    assert unsigned.status_code == 422 and "re-enter your password" in unsigned.json()["detail"]
    wrong = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": "approve", "password": "guess"},
        headers=bob,
    )
    assert wrong.status_code == 403 and "2 attempt(s) left" in wrong.json()["detail"]

    decided = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": "approve", "password": "lotline-demo", "comment": "sampling plan ok"},
        headers=bob,
    )
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["task_status"] == "completed" and body["final_outcome"] == "approve"
    assert body["signature"]["printed_name"] == "Bob Okafor"
    assert body["signature"]["meaning"] == "approved"

    late = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": "reject", "fields": {"reason": "x"}, "password": "lotline-demo"},
        headers=carol,
    )
    assert late.status_code == 409 and "already completed" in late.json()["detail"]

    detail = (await stack.http.get(f"/api/v1/tasks/{task.id}", headers=bob)).json()
    assert detail["status"] == "completed"
    assert detail["decisions"][0]["signature"]["signer"] == "bob"
    actions = [h["action"] for h in detail["history"]]
    assert actions[0] == "task.opened" and actions[-1] == "task.decision_refused"
    for expected in ("task.claimed", "signature.refused", "task.decided"):
        assert expected in actions
    refusals = [h for h in detail["history"] if h["outcome"] == "refused"]
    assert {h["actor"] for h in refusals} == {"alice", "carol", "bob"}

    async def completed():
        response = await stack.http.get(f"/api/v1/processes/{process_id}", headers=alice)
        return response.json() if response.json()["status"] == "completed" else None

    process = await eventually(completed, what="process completed")
    assert process["outcome"] == "approve"
    assert [(s["signer"], s["meaning"]) for s in process["signatures"]] == [("bob", "approved")]
    assert [e["action"] for e in process["timeline"]][:2] == ["process.started", "process.step"]

    verify = (await stack.http.get("/api/v1/audit/verify", headers=carol)).json()
    assert verify["ok"] and verify["rows_checked"] >= 10
    async with stack.sessions() as session:
        signature = await session.scalar(select(ESignature))
        decision = await session.scalar(select(TaskDecision))
    assert signature is not None and decision is not None
    assert decision.signature_id == signature.id and len(signature.record_hash) == 64
    assert signature.signed_content["outcome"] == "approve"


async def test_two_people_deciding_at_once_one_wins(stack):
    alice, bob, carol = (
        await stack.token("alice"),
        await stack.token("bob"),
        await stack.token("carol"),
    )
    process_id = await start_approval(stack, alice, APPROVAL | {"signs": False})
    task = await open_task_of(stack, process_id)
    results = await asyncio.gather(
        *(
            stack.http.post(
                f"/api/v1/tasks/{task.id}/decision", json={"outcome": "approve"}, headers=who
            )
            for who in (bob, carol)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.text for r in results]
    async with stack.sessions() as session:
        count = len((await session.scalars(select(TaskDecision))).all())
    assert count == 1


async def test_delegate_decides_on_behalf_of_delegator(stack):
    alice, carol, ivan = (
        await stack.token("alice"),
        await stack.token("carol"),
        await stack.token("ivan"),
    )
    process_id = await start_approval(stack, alice, APPROVAL | {"signs": False})
    task = await open_task_of(stack, process_id)
    before = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision", json={"outcome": "approve"}, headers=ivan
    )
    assert before.status_code == 403 and "not a candidate" in before.json()["detail"]
    created = await stack.http.post(
        "/api/v1/delegations",
        json={
            "delegate": "ivan",
            "starts_at": "2020-01-01T00:00:00Z",
            "ends_at": "2099-01-01T00:00:00Z",
            "reason": "vacation",
        },
        headers=carol,
    )
    assert created.status_code == 201, created.text
    me = (await stack.http.get("/api/v1/me", headers=ivan)).json()
    assert me["stands_in_for"] == ["carol"]
    decided = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision", json={"outcome": "approve"}, headers=ivan
    )
    assert decided.status_code == 200, decided.text
    async with stack.sessions() as session:
        decision = await session.scalar(select(TaskDecision))
        audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "task.decided"))
    assert decision.decided_by == "ivan" and decision.on_behalf_of == "carol"
    assert audit.actor == "ivan" and audit.on_behalf_of == "carol"


async def test_delegation_of_initiator_does_not_bypass_segregation(stack):
    alice, bob = await stack.token("alice"), await stack.token("bob")
    created = await stack.http.post(
        "/api/v1/delegations",
        json={
            "delegate": "bob",
            "starts_at": "2020-01-01T00:00:00Z",
            "ends_at": "2099-01-01T00:00:00Z",
        },
        headers=alice,
    )
    assert created.status_code == 201
    process_id = await start_approval(stack, alice, APPROVAL | {"signs": False})
    task = await open_task_of(stack, process_id)
    refused = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision", json={"outcome": "approve"}, headers=bob
    )
    assert refused.status_code == 403 and "segregation of duties" in refused.json()["detail"]


async def test_signing_locks_after_repeated_wrong_passwords(stack):
    alice, bob = await stack.token("alice"), await stack.token("bob")
    process_id = await start_approval(stack, alice)
    task = await open_task_of(stack, process_id)
    url = f"/api/v1/tasks/{task.id}/decision"
    for _ in range(3):
        wrong = await stack.http.post(
            url, json={"outcome": "approve", "password": "x"}, headers=bob
        )
        assert wrong.status_code == 403
    assert "locked" in wrong.json()["detail"]
    right = await stack.http.post(
        url, json={"outcome": "approve", "password": "lotline-demo"}, headers=bob
    )
    assert right.status_code == 403 and "signing is locked" in right.json()["detail"]
    async with stack.sessions() as session:
        notice = await session.scalar(select(Outbox).where(Outbox.recipient == "group:admin"))
        locked = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "signature.locked")
        )
    assert notice is not None and "Signing locked for bob" in notice.subject
    assert locked is not None and locked.actor == "bob"
    # the task is untouched
    detail = (await stack.http.get(f"/api/v1/tasks/{task.id}", headers=bob)).json()
    assert detail["status"] == "open" and detail["decisions"] == []
    # only an administrator lifts the lock, and it is audited
    admin = await stack.token("admin")
    assert (await stack.http.post("/api/v1/users/bob/unlock", headers=bob)).status_code == 403
    assert (await stack.http.post("/api/v1/users/bob/unlock", headers=admin)).status_code == 204
    signed = await stack.http.post(
        url, json={"outcome": "approve", "password": "lotline-demo"}, headers=bob
    )
    assert signed.status_code == 200, signed.text


async def test_withdrawal_cancels_process_and_closes_its_task(stack):
    alice, bob = await stack.token("alice"), await stack.token("bob")
    process_id = await start_approval(stack, alice)
    task = await open_task_of(stack, process_id)
    refused = await stack.http.post(
        f"/api/v1/processes/{process_id}/cancel", json={"reason": "not mine"}, headers=bob
    )
    assert refused.status_code == 403
    response = await stack.http.post(
        f"/api/v1/processes/{process_id}/cancel", json={"reason": "raised in error"}, headers=alice
    )
    assert response.status_code == 202, response.text

    async def cancelled():
        async with stack.sessions() as session:
            row = await session.get(Task, task.id, populate_existing=True)
            return row if row and row.status == "cancelled" else None

    await eventually(cancelled, what="task cancelled")


async def test_inbox_filters_and_validation_errors(stack):
    alice, bob = await stack.token("alice"), await stack.token("bob")
    await start_approval(stack, alice, APPROVAL | {"title": "Approve label LBL-200 rev B"})
    await start_approval(stack, alice, APPROVAL | {"title": "Approve IFU-7 rev A"})
    await eventually(lambda: _count(stack, bob, "/api/v1/tasks?q=label"), what="task visible")
    found = (await stack.http.get("/api/v1/tasks?q=label", headers=bob)).json()
    assert [t["title"] for t in found["items"]] == ["Approve label LBL-200 rev B"]
    overdue = (await stack.http.get("/api/v1/tasks?overdue=true", headers=bob)).json()
    assert overdue["count"] == 0
    mine = (await stack.http.get("/api/v1/tasks?scope=mine", headers=bob)).json()
    assert mine["count"] == 0
    everything = await stack.http.get("/api/v1/tasks?scope=everything", headers=bob)
    assert everything.status_code == 403
    bad = await stack.http.post(
        "/api/v1/processes/approval", json={"title": "x", "approver_groups": []}, headers=alice
    )
    assert bad.status_code == 422
    assert "title" in bad.json()["detail"] and "approver_groups" in bad.json()["detail"]
    unknown = await stack.http.post(
        "/api/v1/processes/approval", json=APPROVAL | {"approver_groups": ["nobody"]}, headers=alice
    )
    assert unknown.status_code == 422 and "unknown group(s): nobody" in unknown.json()["detail"]
    empty = await stack.http.post("/api/v1/processes/recall", json={}, headers=alice)
    assert empty.status_code == 422 and "suspect_lots" in empty.json()["detail"]
    other = await stack.http.post("/api/v1/processes/teleport", json={}, headers=alice)
    assert other.status_code == 404 and "unknown process kind" in other.json()["detail"]
    missing = await stack.http.get("/api/v1/tasks/999999", headers=bob)
    assert missing.status_code == 404 and "Task 999999 was not found" in missing.json()["detail"]


async def test_the_inbox_count_is_every_visible_task_whatever_the_page(stack):
    """A short page is the last one, so its count is what came before and on it (the count
    query is skipped); a full or empty page counts: each answers the same total."""
    alice, bob = await stack.token("alice"), await stack.token("bob")
    for n in range(3):
        await start_approval(stack, alice, APPROVAL | {"title": f"Approve paging check PGC-{n}"})
    base = "/api/v1/tasks?q=paging%20check"

    async def three():
        return await _count(stack, bob, f"{base}&limit=50") == 3 or None

    await eventually(three, what="three paging tasks visible")
    for limit, offset, shown in ((2, 0, 2), (3, 0, 3), (5, 0, 3), (2, 2, 1), (2, 3, 0), (5, 9, 0)):
        page = (await stack.http.get(f"{base}&limit={limit}&offset={offset}", headers=bob)).json()
        assert (len(page["items"]), page["count"]) == (shown, 3), (limit, offset)


async def _count(stack, headers, url):
    return (await stack.http.get(url, headers=headers)).json()["count"]


async def test_systems_start_processes_but_never_decide(stack):
    started = await stack.http.post(
        "/api/v1/processes/approval", json=APPROVAL | {"signs": False}, headers=stack.mes
    )
    assert started.status_code == 201, started.text
    task = await open_task_of(stack, started.json()["id"])
    listed = await stack.http.get("/api/v1/tasks?scope=everything", headers=stack.mes)
    assert listed.status_code == 200 and listed.json()["count"] == 1
    decided = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision", json={"outcome": "approve"}, headers=stack.mes
    )
    assert decided.status_code == 403 and "a person must" in decided.json()["detail"]
    audit = await stack.http.get("/api/v1/audit", headers=stack.mes)
    assert audit.status_code == 403 and "audit:read" in audit.json()["detail"]


async def test_a_decision_answers_in_the_language_asked_for_with_the_tasks_outcome_label(stack):
    alice, bob = await stack.token("alice"), await stack.token("bob")
    process_id = await start_approval(
        stack, alice, APPROVAL | {"title": "Approve WI-ZH-1 rev A", "signs": False}
    )
    task = await open_task_of(stack, process_id)
    decided = await stack.http.post(
        f"/api/v1/tasks/{task.id}/decision",
        json={"outcome": "approve"},
        headers=bob | {"Accept-Language": "zh-Hans"},
    )
    assert decided.status_code == 200, decided.text
    answer = decided.json()
    assert answer["message"] == "决定已记录。任务已完成：批准。"  # the spec's label "Approve"
    assert answer["message_template"] == "Decision recorded. The task is completed: %(outcome)s."
