"""Recalls over REST: who may start one (a drill also QA), suspect lots by lot number or GS1
string (422 naming unknown ones), 201 then 200 with Location; a recall from the NC that asked
for it; the list and one recall (scope versions with their hashes, consignee board, clock,
effectiveness, drill times) over a recall story written straight into the ERP as the workflow
writes it; consignee events routed to the consignee's notice; the PDF report."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp.master_data import Item, Lot
from erp.models import Process
from erp.quality import Nonconformance
from erp.recall import Recall, RecallConsignee, RecallLot, RecallResponse, RecallScope
from erp.recall_report import build_recall_report
from erp.supply import Customer
from schemas.api import RecallDetail
from tests.activities.test_trace import Genealogy, generate_genealogy

NOW = datetime.now(UTC)
RECALL_ID = "rcl-story-0001"
DRILL_ID = "rcl-story-0002"


@dataclass
class RecallStory:
    recall: str  # process id of the running recall
    drill: str  # process id of the closed drill
    gs1: str  # a GS1 string of finished lot TR-F3


def _hash(snapshot: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()


async def write_recall_story(sessions: async_sessionmaker[AsyncSession]) -> RecallStory:
    """A genealogy shipped to four consignees (tests.activities.test_trace) and two recalls as
    their workflows record them: RCL-2026-9001 running, its scope widened once (v2 added
    CUS-0003), CUS-0001 answered and reconciled, CUS-0002 silent 6 days after two reminders and
    escalated, CUS-0003 not yet notified; DRL-2026-9001, a closed drill."""
    async with sessions() as session, session.begin():
        await generate_genealogy(session, Genealogy())
        customers = {c.code: c for c in await session.scalars(select(Customer))}
        lots = {lot.lot_number: lot for lot in await session.scalars(select(Lot))}
        gtin = await session.scalar(select(Item.gtin).where(Item.id == lots["TR-F3"].item_id))
        v1 = {"lots": ["TR-T2", "TR-S1", "TR-F3"], "consignees": ["CUS-0001", "CUS-0002"]}
        v2 = {"lots": [*v1["lots"], "TR-F5"], "consignees": [*v1["consignees"], "CUS-0003"]}
        recall = Recall(
            number="RCL-2026-9001",
            process_id=RECALL_ID,
            reason="Tubing lot TR-T2 cracks under pressure",
            source="ui",
            requested_by="carol",
            status="notifying",
            health_hazard="Leak during infusion: under-dosing",
            classification="II",
            depth="consumer",
            public_warning=False,
            effectiveness_level="A",
            scope_version=2,
            scope_hash=_hash(v2),
            report_due_on=(NOW + timedelta(days=14)).date(),
            initiated_at=NOW - timedelta(days=7),
            scoped_at=NOW - timedelta(days=7) + timedelta(seconds=4),
            held_at=NOW - timedelta(days=7) + timedelta(seconds=5),
            notified_at=None,
        )
        drill = Recall(
            number="DRL-2026-9001",
            process_id=DRILL_ID,
            drill=True,
            reason="Quarterly mock recall of TR-C1",
            source="ui",
            requested_by="bob",
            status="closed",
            scope_version=1,
            scope_hash=_hash(v1),
            initiated_at=NOW - timedelta(days=30),
            scoped_at=NOW - timedelta(days=30) + timedelta(seconds=2),
            notified_at=NOW - timedelta(days=30) + timedelta(seconds=9),
            closed_at=NOW - timedelta(days=29),
        )
        session.add_all([recall, drill])
        for pid, key, status in (
            (RECALL_ID, recall.number, "running"),
            (DRILL_ID, drill.number, "completed"),
        ):
            session.add(
                Process(
                    id=pid,
                    run_id="run-story",
                    kind="recall",
                    title=f"Recall {key}",
                    business_key=key,
                    initiator="carol",
                    status=status,
                    current_step="notify" if status == "running" else "closed",
                )
            )
        await session.flush()
        session.add_all(
            [
                RecallScope(
                    recall_id=recall.id,
                    version=1,
                    snapshot=v1,
                    snapshot_hash=_hash(v1),
                    difference={},
                    reason="initial scope",
                    created_by="carol",
                    created_at=NOW - timedelta(days=7),
                ),
                RecallScope(
                    recall_id=recall.id,
                    version=2,
                    snapshot=v2,
                    snapshot_hash=_hash(v2),
                    difference={"added_lots": ["TR-F5"], "added_consignees": ["CUS-0003"]},
                    reason="TR-F5 also used the suspect tubing",
                    created_by="erin",
                    created_at=NOW - timedelta(days=2),
                ),
                RecallScope(
                    recall_id=drill.id,
                    version=1,
                    snapshot=v1,
                    snapshot_hash=_hash(v1),
                    reason="initial scope",
                    created_by="bob",
                ),
            ]
        )
        for number, role, version in (
            ("TR-T2", "suspect", 1),
            ("TR-S1", "affected", 1),
            ("TR-F3", "affected", 1),
            ("TR-F5", "affected", 2),
        ):
            session.add(
                RecallLot(
                    recall_id=recall.id,
                    lot_id=lots[number].id,
                    role=role,
                    scope_version=version,
                    status_before="RELEASED",
                    held=number != "TR-F3",
                )
            )
        answered = RecallConsignee(
            recall_id=recall.id,
            customer_id=customers["CUS-0001"].id,
            scope_version=1,
            shipped_quantity=Decimal(10),
            shipped=[{"lot_number": "TR-F3", "quantity": "5", "shipment": "SH-TR-CUS-0001"}],
            status="reconciled",
            notice_process_id=f"{RECALL_ID}.notice-CUS-0001",
            notified_at=NOW - timedelta(days=6),
            acknowledged_at=NOW - timedelta(days=5),
            quantity_on_hand=Decimal(4),
            quantity_returned=Decimal(4),
            quantity_received_back=Decimal(4),
            reconciled_at=NOW - timedelta(days=1),
        )
        silent = RecallConsignee(
            recall_id=recall.id,
            customer_id=customers["CUS-0002"].id,
            scope_version=1,
            shipped_quantity=Decimal(5),
            shipped=[{"lot_number": "TR-F3", "quantity": "5", "shipment": "SH-TR-CUS-0002"}],
            status="escalated",
            notice_process_id=f"{RECALL_ID}.notice-CUS-0002",
            notified_at=NOW - timedelta(days=6),
            reminders=2,
            escalated_at=NOW - timedelta(days=1),
        )
        pending = RecallConsignee(
            recall_id=recall.id,
            customer_id=customers["CUS-0003"].id,
            scope_version=2,
            shipped_quantity=Decimal(5),
            shipped=[{"lot_number": "TR-F5", "quantity": "5", "shipment": "SH-TR-CUS-0003"}],
            status="pending",
        )
        session.add_all([answered, silent, pending])
        await session.flush()
        session.add(
            RecallResponse(
                recall_consignee_id=answered.id,
                event_id="story-response-1",
                quantity_on_hand=Decimal(4),
                quantity_returned=Decimal(4),
                note="4 sets quarantined and sent back",
                recorded_by="mes",
            )
        )
    return RecallStory(recall=RECALL_ID, drill=DRILL_ID, gs1=f"(01){gtin}(10)TR-F3")


async def test_start_recall_who_may_lots_and_repeats(stack):
    async with stack.sessions() as session, session.begin():
        await generate_genealogy(session, Genealogy())
        gtin = await session.scalar(select(Item.gtin).where(Item.part_number == "IS-2000"))
    carol = await stack.token("carol")
    body = {"suspect_lots": ["TR-T2", f"(01){gtin}(10)TR-F3"], "reason": "Cracked tubing"}
    headers = carol | {"Idempotency-Key": "recall-start-1"}
    first = await stack.http.post("/api/v1/processes/recall", json=body, headers=headers)
    assert first.status_code == 201, first.text
    process_id = first.json()["id"]
    assert process_id.startswith("rcl-")
    assert first.headers["Location"] == f"/api/v1/recalls/{process_id}"
    again = await stack.http.post("/api/v1/processes/recall", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == process_id
    started = await stack.temporal.get_workflow_handle(process_id).describe()
    assert started.workflow_type == "Recall"

    unknown = await stack.http.post(
        "/api/v1/processes/recall",
        json=body | {"suspect_lots": ["TR-T2", "NOPE-1"]},
        headers=carol,
    )
    assert unknown.status_code == 422 and "NOPE-1" in unknown.json()["detail"]

    bob = await stack.token("bob")  # qa: a drill yes, a recall no
    refused = await stack.http.post("/api/v1/processes/recall", json=body, headers=bob)
    assert refused.status_code == 403
    assert "qa-manager, quality-director, ra, admin" in refused.json()["detail"]
    drill = await stack.http.post(
        "/api/v1/processes/recall", json=body | {"drill": True}, headers=bob
    )
    assert drill.status_code == 201, drill.text
    frank = await stack.token("frank")
    no_drill = await stack.http.post(
        "/api/v1/processes/recall", json=body | {"drill": True}, headers=frank
    )
    assert no_drill.status_code == 403
    system = await stack.http.post(
        "/api/v1/processes/recall", json=body | {"external_id": "crm-77"}, headers=stack.mes
    )
    assert system.status_code == 201
    anonymous = await stack.http.post("/api/v1/processes/recall", json=body)
    assert anonymous.status_code == 401


async def test_recall_from_the_nc_that_asked_for_it(stack):
    async with stack.sessions() as session, session.begin():
        await generate_genealogy(session, Genealogy())
        for pid, number, requested in (
            ("nc-rq-1", "NC-2026-9101", True),
            ("nc-rq-2", "NC-2026-9102", False),
        ):
            session.add(
                Nonconformance(
                    number=number,
                    process_id=pid,
                    source="complaint",
                    severity="critical",
                    title="Leaking tubing",
                    description="Customer reports leaks",
                    reported_by="heidi",
                    status="recall_decision" if requested else "investigating",
                    recall_requested=requested,
                    recall_scope={"suspect_lots": ["TR-T2"], "reason": "Leaks at the joint"}
                    if requested
                    else {},
                )
            )
    dave = await stack.token("dave")
    started = await stack.http.post("/api/v1/nonconformances/NC-2026-9101/recall", headers=dave)
    assert started.status_code == 201, started.text
    assert started.json()["id"] == "nc-rq-1.recall"
    assert started.headers["Location"] == "/api/v1/recalls/nc-rq-1.recall"
    again = await stack.http.post("/api/v1/nonconformances/nc-rq-1/recall", headers=dave)
    assert again.status_code == 200
    not_asked = await stack.http.post("/api/v1/nonconformances/nc-rq-2/recall", headers=dave)
    assert not_asked.status_code == 409 and "NC-2026-9102 did not ask" in not_asked.json()["detail"]
    missing = await stack.http.post("/api/v1/nonconformances/NC-0000/recall", headers=dave)
    assert missing.status_code == 404


async def test_recall_list_and_detail(stack):
    story = await write_recall_story(stack.sessions)
    carol = await stack.token("carol")
    listed = (await stack.http.get("/api/v1/recalls", headers=carol)).json()
    assert [r["number"] for r in listed["items"]] == ["RCL-2026-9001", "DRL-2026-9001"]
    open_ones = (await stack.http.get("/api/v1/recalls?status=open", headers=carol)).json()
    assert [r["number"] for r in open_ones["items"]] == ["RCL-2026-9001"]
    drills = (await stack.http.get("/api/v1/recalls?drill=yes", headers=carol)).json()
    assert [r["number"] for r in drills["items"]] == ["DRL-2026-9001"]
    bad = await stack.http.get("/api/v1/recalls?status=maybe", headers=carol)
    assert bad.status_code == 422 and "open, closed, all" in bad.json()["detail"]

    by_number = await stack.http.get("/api/v1/recalls/RCL-2026-9001", headers=carol)
    assert by_number.status_code == 200, by_number.text
    d = by_number.json()
    assert d["id"] == story.recall and d["classification"] == "II"
    assert d["scope"]["version"] == 2 and len(d["scope"]["hash"]) == 64
    assert [v["version"] for v in d["scope"]["versions"]] == [1, 2]
    assert d["scope"]["versions"][1]["difference"]["added_consignees"] == ["CUS-0003"]
    assert {lot["lot_number"]: lot["role"] for lot in d["scope"]["lots"]}["TR-T2"] == "suspect"
    board = {c["code"]: c for c in d["consignee_board"]}
    assert board["CUS-0001"]["answered"] and board["CUS-0001"]["reconciled"]
    assert board["CUS-0001"]["responses"][0]["note"] == "4 sets quarantined and sent back"
    assert board["CUS-0002"]["silent_days"] == 6 and board["CUS-0002"]["reminders"] == 2
    assert board["CUS-0003"]["silent_days"] is None and board["CUS-0003"]["status"] == "pending"
    e = d["effectiveness"]
    assert (e["level"], e["target_percent"], e["responded"], e["consignees"]) == ("A", 100, 1, 3)
    assert e["responded_percent"] == 33.3 and not e["met"]
    clock = d["clock"]
    assert clock["report_due_on"] == (NOW + timedelta(days=14)).date().isoformat()
    assert 8 <= clock["working_days_left"] <= 10 and not clock["submitted"]
    assert d["drill_times"]["time_to_scope"] == 4.0 and d["drill_times"]["time_to_notify"] is None
    versions = (
        await stack.http.get(f"/api/v1/recalls/{story.recall}/scope-versions", headers=carol)
    ).json()
    assert versions["count"] == 2 and versions["items"][1]["consignees"] == 3
    missing = await stack.http.get("/api/v1/recalls/RCL-0000", headers=carol)
    assert missing.status_code == 404


async def test_consignee_events_go_to_the_consignee_notice(stack):
    story = await write_recall_story(stack.sessions)
    bob = await stack.token("bob")  # qa keys in consignee responses
    url = f"/api/v1/processes/{story.recall}/events/consignee-response"
    stranger = await stack.http.post(url, json={"consignee_code": "CUS-0004"}, headers=bob)
    assert stranger.status_code == 404
    assert stranger.json()["detail"].endswith("its consignees are CUS-0001, CUS-0002, CUS-0003")
    invalid = await stack.http.post(
        url, json={"consignee_code": "CUS-0002", "quantity_on_hand": -1}, headers=bob
    )
    assert invalid.status_code == 422 and "quantity_on_hand" in invalid.json()["detail"]
    frank = await stack.token("frank")
    refused = await stack.http.post(url, json={"consignee_code": "CUS-0002"}, headers=frank)
    assert refused.status_code == 403 and "ra, qa, qa-manager" in refused.json()["detail"]
    # the story's notices are rows only (no workflow runs them): delivery finds none
    sent = await stack.http.post(url, json={"consignee_code": "CUS-0002"}, headers=stack.mes)
    assert sent.status_code == 409
    assert f"{story.recall}.notice-CUS-0002 has ended" in sent.json()["detail"]
    other = await stack.http.post(
        f"/api/v1/processes/{story.recall}/events/delivered", json={}, headers=stack.mes
    )
    assert other.status_code == 404 and "consignee-response, return-received" in other.text
    closed = await stack.http.post(
        f"/api/v1/processes/{story.drill}/events/consignee-response",
        json={"consignee_code": "CUS-0001"},
        headers=stack.mes,
    )
    assert closed.status_code == 409 and "accepts no more events" in closed.json()["detail"]


async def test_recall_report_pdf(stack):
    story = await write_recall_story(stack.sessions)
    carol = await stack.token("carol")
    answer = await stack.http.get(f"/api/v1/recalls/{story.recall}/report.pdf", headers=carol)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    pdf = answer.content
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type /Page\b", pdf)) >= 1
    assert b"Recall report RCL-2026-9001" in pdf  # the document's title (info dictionary)
    digest = answer.headers["X-Content-SHA256"]
    assert re.fullmatch(r"[0-9a-f]{64}", digest)

    detail = (await stack.http.get(f"/api/v1/recalls/{story.recall}", headers=carol)).json()
    plain, same = build_recall_report(
        RecallDetail.model_validate(detail), produced_by="carol", compress=False
    )
    for text in (b"RCL-2026-9001", b"CUS-0001", b"CUS-0002", b"CUS-0003", b"TR-T2"):
        assert text in plain, text
    assert same == digest  # the same record states the same content
    assert b"Content SHA-256: " + same.encode() in plain
    assert b"produced" in plain and b"by carol" in plain
    assert date.today().isoformat().encode() in plain
