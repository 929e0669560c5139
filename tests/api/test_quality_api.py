"""Nonconformance and CAPA over REST, as people and external systems (MES, LIMS) call it: reporting
an NC by lot number and by a label's GS1 string (201, a repeat 200, 422 naming what the ERP does
not know, 401, 403), starting a CAPA (who may), and the lists with their filters and aging, the NC
and CAPA pages' facts and the action board, over a quality story written straight into the ERP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp.lots import set_lot_status
from erp.master_data import Lot, Supplier
from erp.models import Process
from erp.quality import (
    Capa,
    CapaAction,
    CapaEffectivenessCheck,
    NcLot,
    Nonconformance,
    Scar,
)
from erp.users import create_api_key
from tests.helpers import eventually

NOW = datetime.now(UTC)
TODAY = NOW.date()
NC_A, NC_B, NC_C, NC_D = "nc-qs-0001", "nc-qs-0002", "nc-qs-0003", "nc-qs-0004"
CAPA_A, CAPA_B = "capa-qs-0001", "capa-qs-0002"
STORY_NCS = {"NC-2026-9001", "NC-2026-9002", "NC-2026-9003", "NC-2026-9004"}
STORY_CAPAS = {"CAPA-2026-9001", "CAPA-2026-9002"}
SUPPLIER_GTIN = "09506000134352"  # GS1's example GTIN: a supplier's item, not one of ours


@dataclass
class QualityStory:
    returned: str  # the DC-0330 lot the MRB returned to its supplier (REJECTED)
    extended: str  # an IS-2000 lot containment extended to by genealogy
    held: str  # the IS-2000 lot held for NC B, awaiting disposition


def _process(pid: str, kind: str, key: str, title: str, step: str, status: str = "running"):  # type: ignore[no-untyped-def]
    return Process(
        id=pid,
        run_id="run-qs",
        kind=kind,
        title=title,
        business_key=key,
        initiator="heidi",
        status=status,
        current_step=step,
    )


async def _lot(session: AsyncSession, part_number: str, status: str) -> Lot:
    lot = await session.scalar(
        select(Lot)
        .where(Lot.part_number == part_number, Lot.status == status)
        .order_by(Lot.lot_number)
    )
    assert lot is not None, (part_number, status)
    return lot


async def write_quality_story(sessions: async_sessionmaker[AsyncSession]) -> QualityStory:
    """Four NCs and two CAPAs on the demo data:
    A (3 days old, incoming, major, SUP-0003): its DC-0330 lot returned to the supplier (REJECTED,
      a SCAR), an IS-2000 lot extended by genealogy and used as is; CAPA A started from it;
    B (20 days, in-process, minor, IS-2000): overdue, a lot held awaiting disposition;
    C (120 days, complaint, critical): a recall requested, with its scope;
    D (60 days, audit, minor): closed 10 days ago.
    CAPA A (owner alice) was reopened: round 1 not effective, round 2 with an action done, one
    overdue (ivan), one due in 10 days (alice) and one waiting for a change; CAPA B is closed."""
    async with sessions() as session, session.begin():
        brightwater = await session.scalar(select(Supplier).where(Supplier.code == "SUP-0003"))
        assert brightwater is not None
        returned = await _lot(session, "DC-0330", "ON_HOLD")
        extended, held = [
            lot
            for lot in await session.scalars(
                select(Lot)
                .where(Lot.part_number == "IS-2000", Lot.status == "RELEASED")
                .order_by(Lot.lot_number)
            )
        ][:2]
        await set_lot_status(
            session,
            returned,
            "REJECTED",
            reason="MRB: return to supplier (NC-2026-9001)",
            actor="bob",
            process_id=NC_A,
        )
        await set_lot_status(
            session, held, "ON_HOLD", reason="NC-2026-9002", actor="ivan", process_id=NC_B
        )
        session.add_all(
            [
                _process(
                    NC_A, "nonconformance", "NC-2026-9001", "Flash on filter seat", "capa_decision"
                ),
                _process(NC_B, "nonconformance", "NC-2026-9002", "Kinked tubing", "investigation"),
                _process(NC_C, "nonconformance", "NC-2026-9003", "Leaking spike", "investigation"),
                _process(
                    NC_D, "nonconformance", "NC-2026-9004", "Calibration", "closed", "completed"
                ),
                _process(CAPA_A, "capa", "CAPA-2026-9001", "Flash on filter seats", "actions"),
                _process(
                    CAPA_B, "capa", "CAPA-2026-9002", "Calibration intervals", "closed", "completed"
                ),
            ]
        )
        nc_a = Nonconformance(
            number="NC-2026-9001",
            process_id=NC_A,
            source="incoming",
            severity="major",
            title="Flash on the filter seat of drip chambers",
            description="3 of 80 samples with flash on the filter seat (spec: none visible).",
            part_number="DC-0330",
            quantity=Decimal(4000),
            evidence="Incoming inspection record II-4471, photos P-1..P-3",
            supplier_id=brightwater.id,
            reported_by="heidi",
            status="capa_decision",
            investigation="Mould insert 4 worn; supplier confirmed.",
            capa_process_id=CAPA_A,
            created_at=NOW - timedelta(days=3),
            due_on=TODAY + timedelta(days=5),
        )
        nc_b = Nonconformance(
            number="NC-2026-9002",
            process_id=NC_B,
            source="in_process",
            severity="minor",
            title="Kinked tubing at the roller clamp",
            description="Kinks found at station 3 during assembly.",
            part_number="IS-2000",
            reported_by="ivan",
            status="investigation",
            created_at=NOW - timedelta(days=20),
            due_on=TODAY - timedelta(days=5),
        )
        nc_c = Nonconformance(
            number="NC-2026-9003",
            process_id=NC_C,
            source="complaint",
            severity="critical",
            title="Spike leaks at the drip chamber joint",
            description="Two hospitals report leaks during priming.",
            part_number="IS-2000",
            reported_by="carol",
            status="investigation",
            recall_requested=True,
            recall_scope={  # as the NC workflow records it (schemas/nonconformance.RecallScope)
                "source": "nonconformance",
                "nc_number": "NC-2026-9003",
                "nc_process_id": NC_C,
                "reason": "Spike leaks at the drip chamber joint",
                "suspect_lots": [extended.lot_number],
                "lots": [
                    {
                        "lot_number": extended.lot_number,
                        "part_number": "IS-2000",
                        "status": "RELEASED",
                        "quantity": "1160.0000",
                    }
                ],
                "shipments": [
                    {
                        "shipment": "SH-2026-0007",
                        "lot_number": extended.lot_number,
                        "part_number": "IS-2000",
                        "quantity": "40.0000",
                        "consignee_code": "CUS-0001",
                        "consignee_name": "St. Aurelia Hospital",
                        "shipped_at": "2026-11-02T09:30:00Z",
                        "delivered_at": None,
                        "serials": [],
                    }
                ],
                "consignees": [
                    {
                        "code": "CUS-0001",
                        "name": "St. Aurelia Hospital",
                        "quantity": "40.0000",
                        "shipments": ["SH-2026-0007"],
                    }
                ],
                "shipped_quantity": "40",
                "serial_count": 0,
                "decided_by": "carol",
            },
            created_at=NOW - timedelta(days=120),
        )
        nc_d = Nonconformance(
            number="NC-2026-9004",
            process_id=NC_D,
            source="audit",
            severity="minor",
            title="Torque wrench calibration overdue",
            description="Internal audit IA-26-03 found a torque wrench past its calibration.",
            reported_by="carol",
            status="closed",
            created_at=NOW - timedelta(days=60),
            closed_at=NOW - timedelta(days=10),
        )
        session.add_all([nc_a, nc_b, nc_c, nc_d])
        await session.flush()
        session.add_all(
            [
                NcLot(
                    nc_id=nc_a.id,
                    lot_id=returned.id,
                    role="affected",
                    status_before="QUARANTINE",
                    held=True,
                    disposition="return_to_supplier",
                    justification="Flash is a supplier moulding defect.",
                    decided_by="bob, alice",
                    applied_at=NOW - timedelta(days=1),
                ),
                NcLot(
                    nc_id=nc_a.id,
                    lot_id=extended.id,
                    role="extended",
                    status_before="RELEASED",
                    held=False,
                    note="shipped in part before containment",
                    disposition="use_as_is",
                    justification="Chambers of this lot were 100 % inspected at assembly.",
                    decided_by="bob, alice",
                    applied_at=NOW - timedelta(days=1),
                ),
                NcLot(nc_id=nc_b.id, lot_id=held.id, status_before="RELEASED", held=True),
                Scar(
                    number="SCAR-2026-9001",
                    supplier_id=brightwater.id,
                    nc_id=nc_a.id,
                    lot_id=returned.id,
                    description="Flash on filter seats: find the cause and correct the mould.",
                    due_on=TODAY + timedelta(days=30),
                    opened_by="bob",
                ),
            ]
        )
        capa_a = Capa(
            number="CAPA-2026-9001",
            process_id=CAPA_A,
            nc_id=nc_a.id,
            title="Flash on drip chamber filter seats",
            problem_statement="Recurring flash on filter seats from SUP-0003.",
            owner="alice",
            status="actions",
            rca_method="5_why",
            rca_findings="Insert 4 worn; no preventive maintenance interval for inserts.",
            plan_round=2,
            requested_by="carol",
            created_at=NOW - timedelta(days=2),
        )
        capa_b = Capa(
            number="CAPA-2026-9002",
            process_id=CAPA_B,
            title="Calibration intervals of torque tools",
            problem_statement="Calibration overdue found in audit.",
            source="audit",
            owner="carol",
            status="closed",
            requested_by="dave",
            plan_round=1,
            created_at=NOW - timedelta(days=55),
            closed_at=NOW - timedelta(days=10),
        )
        session.add_all([capa_a, capa_b])
        await session.flush()

        def action(
            capa: Capa, plan_round: int, seq: int, kind: str = "corrective", **kw: Any
        ) -> CapaAction:
            return CapaAction(capa_id=capa.id, plan_round=plan_round, seq=seq, kind=kind, **kw)

        session.add_all(
            [
                action(
                    capa_a,
                    1,
                    1,
                    description="Polish insert 4",
                    owner="alice",
                    due_on=TODAY - timedelta(days=1),
                    status="completed",
                    evidence="Work order MX-88",
                    completed_by="alice",
                    completed_at=NOW - timedelta(days=2),
                ),
                CapaEffectivenessCheck(
                    capa_id=capa_a.id,
                    plan_round=1,
                    verifier="carol",
                    outcome="not_effective",
                    evidence="Flash again in lot 2611-07",
                    reason="polishing does not last",
                ),
                action(
                    capa_a,
                    2,
                    1,
                    description="Replace mould insert 4",
                    owner="alice",
                    due_on=TODAY - timedelta(days=1),
                    status="completed",
                    evidence="Insert replaced, FAI report FAI-311",
                    completed_by="alice",
                    completed_at=NOW - timedelta(hours=5),
                ),
                action(
                    capa_a,
                    2,
                    2,
                    description="Train operators on flash inspection",
                    owner="ivan",
                    due_on=TODAY - timedelta(days=2),
                ),
                action(
                    capa_a,
                    2,
                    3,
                    "preventive",
                    description="Add insert wear to the PM plan",
                    owner="alice",
                    due_on=TODAY + timedelta(days=10),
                ),
                action(
                    capa_a,
                    2,
                    4,
                    "preventive",
                    description="Drawing DWG-DC-0330: flash limit",
                    owner="alice",
                    due_on=TODAY + timedelta(days=20),
                    status="waiting_change",
                    change_process_id="cr-qs-0001",
                ),
                action(
                    capa_b,
                    1,
                    1,
                    description="Shorten calibration interval",
                    owner="carol",
                    due_on=TODAY - timedelta(days=40),
                    status="completed",
                    completed_by="carol",
                    completed_at=NOW - timedelta(days=40),
                ),
            ]
        )
    return QualityStory(
        returned=returned.lot_number, extended=extended.lot_number, held=held.lot_number
    )


async def key_with(stack, scopes: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    async with stack.sessions() as session, session.begin():
        return {"X-API-Key": await create_api_key(session, f"qa-{scopes}", "mes", scopes)}


def numbers(answer: dict[str, Any], story: set[str]) -> set[str]:
    """The story's records in a list answer (the demo may hold others)."""
    return {item["number"] for item in answer["items"]} & story


async def supplier_label(stack, part_number: str, status: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(our lot number, the GS1 string of its supplier's label) of a demo lot."""
    async with stack.sessions() as session:
        lot = await _lot(session, part_number, status)
    assert lot.supplier_lot
    return lot.lot_number, f"(01){SUPPLIER_GTIN}(10){lot.supplier_lot}"


# ---------------------------------------------------------------- reporting a nonconformance


REPORT = {
    "source": "incoming",
    "severity": "major",
    "title": "Tubing diameter out of tolerance",
    "description": "Outer diameter 4.3 mm in 5 of 32 samples (spec 4.1 ± 0.1 mm).",
    "quantity": "3000",
    "evidence": "Inspection record II-5120",
}


async def test_a_person_reports_an_nc_by_a_label_and_a_repeat_changes_nothing(stack):
    lot_number, label = await supplier_label(stack, "TB-0150", "RELEASED")
    heidi = await stack.token("heidi")  # qc: anyone may report a nonconformance
    headers = heidi | {"Idempotency-Key": "lims-II-5120"}
    first = await stack.http.post(
        "/api/v1/processes/nonconformance", json=REPORT | {"lots": [label]}, headers=headers
    )
    assert first.status_code == 201, first.text
    started = first.json()
    process_id = started["id"]
    assert process_id.startswith("nc-")
    assert first.headers["location"] == f"/api/v1/nonconformances/{process_id}"
    assert started["kind"] == "nonconformance" and started["initiator"] == "heidi"
    assert re.fullmatch(r"NC-\d{4}-\d{4}", started["number"] or ""), started

    again = await stack.http.post(
        "/api/v1/processes/nonconformance", json=REPORT | {"lots": [label]}, headers=headers
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == process_id and again.json()["number"] == started["number"]

    async def contained() -> dict[str, Any] | None:
        detail = await stack.http.get(first.headers["location"], headers=heidi)
        assert detail.status_code == 200, detail.text
        body = detail.json()
        return body if body["lots"] and body["lots"][0]["status"] == "ON_HOLD" else None

    detail = await eventually(contained, what="the lot held by containment")
    assert detail["number"] == started["number"]
    assert [(lot["lot_number"], lot["held"]) for lot in detail["lots"]] == [(lot_number, True)]
    # the label named the lot; part and supplier come from the lot
    assert (detail["part_number"], detail["supplier_code"]) == ("TB-0150", "SUP-0001")
    assert detail["reported_by"] == "heidi" and detail["open"] is True
    by_number = await stack.http.get(f"/api/v1/nonconformances/{started['number']}", headers=heidi)
    assert by_number.status_code == 200 and by_number.json()["id"] == process_id
    listed = await stack.http.get("/api/v1/nonconformances?status=open", headers=heidi)
    assert started["number"] in {item["number"] for item in listed.json()["items"]}
    async with stack.sessions() as session:
        count = await session.scalar(
            select(Nonconformance.id).where(Nonconformance.process_id == process_id)
        )
    assert count is not None  # one record; the repeat started nothing


async def test_an_mes_reports_with_its_key_and_refusals_name_what_is_wrong(stack):
    lot_number, label = await supplier_label(stack, "TB-0150", "RELEASED")
    mes = stack.mes  # processes:start
    started = await stack.http.post(
        "/api/v1/processes/nonconformance",
        json=REPORT | {"source": "in_process", "lots": [lot_number], "external_id": "MES-77"},
        headers=mes,
    )
    assert started.status_code == 201, started.text
    repeat = await stack.http.post(
        "/api/v1/processes/nonconformance",
        json=REPORT | {"source": "in_process", "lots": [lot_number], "external_id": "MES-77"},
        headers=mes,
    )
    assert repeat.status_code == 200 and repeat.json()["id"] == started.json()["id"]

    async def refused(changes: dict[str, Any], status: int = 422) -> str:
        answer = await stack.http.post(
            "/api/v1/processes/nonconformance", json=REPORT | changes, headers=mes
        )
        assert answer.status_code == status, answer.text
        return str(answer.json()["detail"])

    assert "ERP: lot NOPE-0001 is not known; check the lot number" in await refused(
        {"lots": ["NOPE-0001"]}
    )
    one_off = label[:-1] + ("3" if label[-1] != "3" else "4")
    bad_digit = await refused({"lots": [label.replace(SUPPLIER_GTIN, "09506000134353")]})
    assert "check digit" in bad_digit
    assert "no lot" in await refused({"lots": [one_off]})
    both = await refused({"part_number": "XX-9999", "supplier_code": "SUP-9999"})
    assert "part XX-9999 is not known" in both and "supplier SUP-9999 is not known" in both
    assert "process po-nowhere" in await refused({"origin_process_id": "po-nowhere"})
    missing = await refused({"severity": "catastrophic", "title": "x"})
    assert "severity" in missing and "title" in missing

    nobody = await stack.http.post("/api/v1/processes/nonconformance", json=REPORT)
    assert nobody.status_code == 401
    reader = await key_with(stack, "processes:read")
    forbidden = await stack.http.post(
        "/api/v1/processes/nonconformance", json=REPORT, headers=reader
    )
    assert forbidden.status_code == 403
    assert "processes:start" in forbidden.json()["detail"]


# ---------------------------------------------------------------- starting a CAPA


CAPA = {
    "title": "Tubing diameter drift at SUP-0001",
    "problem_statement": "Three lots in a quarter out of tolerance.",
    "owner": "alice",
    "source": "nonconformance",
    "effectiveness_wait_days": 90,
}


async def test_who_may_start_a_capa_and_what_it_must_name(stack):
    await write_quality_story(stack.sessions)
    alice = await stack.token("alice")  # production, engineering
    refused = await stack.http.post("/api/v1/processes/capa", json=CAPA, headers=alice)
    assert refused.status_code == 403, refused.text
    assert "qa, qa-manager, quality-director, admin" in refused.json()["detail"]

    carol = await stack.token("carol")
    started = await stack.http.post(
        "/api/v1/processes/capa",
        json=CAPA | {"nc_process_id": "NC-2026-9002"},  # the NC by its number
        headers=carol | {"Idempotency-Key": "capa-1"},
    )
    assert started.status_code == 201, started.text
    capa_id = started.json()["id"]
    assert capa_id.startswith("capa-")
    assert started.headers["location"] == f"/api/v1/capas/{capa_id}"
    assert re.fullmatch(r"CAPA-\d{4}-\d{4}", started.json()["number"] or ""), started.json()
    repeat = await stack.http.post(
        "/api/v1/processes/capa",
        json=CAPA | {"nc_process_id": "NC-2026-9002"},
        headers=carol | {"Idempotency-Key": "capa-1"},
    )
    assert repeat.status_code == 200 and repeat.json()["id"] == capa_id

    async def registered() -> dict[str, Any] | None:
        answer = await stack.http.get(f"/api/v1/capas/{capa_id}", headers=carol)
        return answer.json() if answer.status_code == 200 else None

    capa = await eventually(registered, what="the CAPA registered")
    assert (capa["nc_process_id"], capa["nc_number"]) == (NC_B, "NC-2026-9002")
    assert (capa["owner"], capa["requested_by"]) == ("alice", "carol")

    async def problems(changes: dict[str, Any]) -> str:
        answer = await stack.http.post("/api/v1/processes/capa", json=CAPA | changes, headers=carol)
        assert answer.status_code == 422, answer.text
        return str(answer.json()["detail"])

    assert "owner 'mes' is not an active user" in await problems({"owner": "mes"})
    assert "owner 'nobody' is not an active user" in await problems({"owner": "nobody"})
    assert "nonconformance NC-2099-0001 is not known" in await problems(
        {"nc_process_id": "NC-2099-0001"}
    )
    assert "effectiveness_wait_days" in await problems({"effectiveness_wait_days": 0})
    system = await stack.http.post("/api/v1/processes/capa", json=CAPA, headers=stack.mes)
    assert system.status_code == 201, system.text  # a system with processes:start


# ---------------------------------------------------------------- lists, filters, aging


async def test_nc_list_filters_and_aging(stack):
    carol = await stack.token("carol")
    before = (await stack.http.get("/api/v1/nonconformances", headers=carol)).json()["aging"]
    await write_quality_story(stack.sessions)

    async def listed(query: str = "", headers: dict[str, str] = carol) -> dict[str, Any]:
        answer = await stack.http.get(f"/api/v1/nonconformances{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    everything = await listed()
    assert numbers(everything, STORY_NCS) == STORY_NCS
    by_number = {item["number"]: item for item in everything["items"]}
    a, b, c, d = (by_number[f"NC-2026-900{n}"] for n in range(1, 5))
    assert (a["days_open"], a["aging"], a["overdue"], a["lot_count"]) == (3, "0-7", False, 2)
    assert (b["days_open"], b["aging"], b["overdue"]) == (20, "8-30", True)
    assert (c["days_open"], c["aging"], c["recall_requested"]) == (120, "over-90", True)
    assert (d["open"], d["days_open"], d["aging"], d["overdue"]) == (False, 50, None, False)
    assert a["supplier_code"] == "SUP-0003" and a["capa_process_id"] == CAPA_A
    aging = {bucket["key"]: bucket["count"] for bucket in everything["aging"]}
    grown = {key: aging[key] - old["count"] for key, old in zip(aging, before, strict=True)}
    assert grown == {"0-7": 1, "8-30": 1, "31-90": 0, "over-90": 1}
    assert [bucket["label"] for bucket in everything["aging"]] == [
        "0–7 days",
        "8–30 days",
        "31–90 days",
        "> 90 days",
    ]

    story = STORY_NCS
    assert numbers(await listed("?status=open"), story) == story - {"NC-2026-9004"}
    assert numbers(await listed("?status=closed"), story) == {"NC-2026-9004"}
    assert numbers(await listed("?overdue=true"), story) == {"NC-2026-9002"}
    assert numbers(await listed("?supplier=SUP-0003"), story) == {"NC-2026-9001"}
    assert numbers(await listed("?part_number=IS-2000"), story) == {
        "NC-2026-9002",
        "NC-2026-9003",
    }
    assert numbers(await listed("?source=complaint"), story) == {"NC-2026-9003"}
    assert numbers(await listed("?severity=minor&status=open"), story) == {"NC-2026-9002"}
    assert numbers(await listed("?age=over-90"), story) == {"NC-2026-9003"}
    assert numbers(await listed("?age=8-30&status=all"), story) == {"NC-2026-9002"}
    only_supplier = await listed("?supplier=SUP-0003&status=closed")
    assert [bucket["count"] for bucket in only_supplier["aging"]] == [1, 0, 0, 0]
    paged = await listed("?limit=1")
    assert len(paged["items"]) == 1 and paged["count"] >= 4

    for query, word in (
        ("?status=pending", "status is one of open, closed, all"),
        ("?source=rumour", "source is one of incoming"),
        ("?severity=huge", "severity is one of minor, major, critical"),
        ("?age=old", "age is one of 0-7, 8-30, 31-90, over-90"),
    ):
        answer = await stack.http.get(f"/api/v1/nonconformances{query}", headers=carol)
        assert answer.status_code == 422 and word in answer.json()["detail"], answer.text

    assert numbers(await listed(headers=stack.mes), story) == story  # processes:read
    no_read = await key_with(stack, "processes:start")
    refused = await stack.http.get("/api/v1/nonconformances", headers=no_read)
    assert refused.status_code == 403 and "processes:read" in refused.json()["detail"]
    assert (await stack.http.get("/api/v1/nonconformances")).status_code == 401


async def test_nc_detail_lots_dispositions_scar_capa_and_recall(stack):
    story = await write_quality_story(stack.sessions)
    bob = await stack.token("bob")
    by_id = await stack.http.get(f"/api/v1/nonconformances/{NC_A}", headers=bob)
    assert by_id.status_code == 200, by_id.text
    by_number = await stack.http.get("/api/v1/nonconformances/NC-2026-9001", headers=bob)
    assert by_number.json() == by_id.json()
    nc = by_id.json()
    assert (nc["source"], nc["severity"], nc["status"]) == ("incoming", "major", "capa_decision")
    assert nc["process_status"] == "running" and nc["current_step"] == "capa_decision"
    assert nc["investigation"].startswith("Mould insert 4")
    lots = {lot["lot_number"]: lot for lot in nc["lots"]}
    returned, extended = lots[story.returned], lots[story.extended]
    assert (returned["role"], returned["status"], returned["disposition"]) == (
        "affected",
        "REJECTED",
        "return_to_supplier",
    )
    assert returned["held"] and returned["status_before"] == "QUARANTINE"
    assert returned["applied_at"] is not None and returned["decided_by"] == "bob, alice"
    assert (extended["role"], extended["held"], extended["disposition"]) == (
        "extended",
        False,
        "use_as_is",
    )
    assert extended["note"] == "shipped in part before containment"
    [scar] = nc["scars"]
    assert (scar["number"], scar["supplier_code"], scar["lot_number"], scar["status"]) == (
        "SCAR-2026-9001",
        "SUP-0003",
        story.returned,
        "open",
    )
    assert nc["capa"] == {
        "id": CAPA_A,
        "number": "CAPA-2026-9001",
        "title": "Flash on drip chamber filter seats",
        "status": "actions",
    }
    assert nc["recall_requested"] is False and nc["recall_scope"] == {}
    recall = (await stack.http.get(f"/api/v1/nonconformances/{NC_C}", headers=bob)).json()
    assert recall["recall_requested"] is True
    assert [c["code"] for c in recall["recall_scope"]["consignees"]] == ["CUS-0001"]
    assert recall["recall_scope"]["suspect_lots"] == [story.extended]

    missing = await stack.http.get("/api/v1/nonconformances/NC-2099-0001", headers=bob)
    assert missing.status_code == 404 and "NC-2099-0001" in missing.json()["detail"]


async def test_capa_list_detail_and_action_board(stack):
    await write_quality_story(stack.sessions)
    dave = await stack.token("dave")

    async def get(url: str) -> dict[str, Any]:
        answer = await stack.http.get(url, headers=dave)
        assert answer.status_code == 200, answer.text
        return answer.json()

    capas = await get("/api/v1/capas")
    assert numbers(capas, STORY_CAPAS) == STORY_CAPAS
    by_number = {item["number"]: item for item in capas["items"]}
    a, b = by_number["CAPA-2026-9001"], by_number["CAPA-2026-9002"]
    # round 2 of A: one done, one overdue, one due later, one waiting for a change
    assert (a["open"], a["open_actions"], a["overdue_actions"], a["plan_round"]) == (True, 3, 1, 2)
    assert (a["nc_process_id"], a["nc_number"]) == (NC_A, "NC-2026-9001")
    assert (b["open"], b["open_actions"], b["overdue_actions"]) == (False, 0, 0)
    assert numbers(await get("/api/v1/capas?status=open"), STORY_CAPAS) == {"CAPA-2026-9001"}
    assert numbers(await get("/api/v1/capas?status=closed"), STORY_CAPAS) == {"CAPA-2026-9002"}
    assert numbers(await get("/api/v1/capas?overdue=true"), STORY_CAPAS) == {"CAPA-2026-9001"}
    assert numbers(await get("/api/v1/capas?owner=carol"), STORY_CAPAS) == {"CAPA-2026-9002"}
    wrong = await stack.http.get("/api/v1/capas?status=later", headers=dave)
    assert wrong.status_code == 422

    detail = await get("/api/v1/capas/CAPA-2026-9001")
    assert detail == await get(f"/api/v1/capas/{CAPA_A}")
    assert (detail["rca_method"], detail["status"]) == ("5_why", "actions")
    first, second = detail["rounds"]
    assert (first["plan_round"], first["current"]) == (1, False)
    assert first["effectiveness"]["outcome"] == "not_effective"
    assert first["effectiveness"]["reason"] == "polishing does not last"
    assert second["current"] and second["effectiveness"] is None
    assert [
        (x["seq"], x["kind"], x["owner"], x["status"], x["done"], x["overdue"])
        for x in second["actions"]
    ] == [
        (1, "corrective", "alice", "completed", True, False),  # done, though its date passed
        (2, "corrective", "ivan", "planned", False, True),
        (3, "preventive", "alice", "planned", False, False),
        (4, "preventive", "alice", "waiting_change", False, False),
    ]
    assert second["actions"][0]["evidence"] == "Insert replaced, FAI report FAI-311"
    assert second["actions"][3]["change_process_id"] == "cr-qs-0001"
    assert [c["plan_round"] for c in detail["effectiveness_checks"]] == [1]
    missing = await stack.http.get("/api/v1/capas/CAPA-2099-0001", headers=dave)
    assert missing.status_code == 404

    board = await get("/api/v1/capa-actions")
    mine = [x for x in board["items"] if x["capa_number"] == "CAPA-2026-9001"]
    assert [(x["owner"], x["seq"], x["overdue"]) for x in mine] == [
        ("alice", 3, False),
        ("alice", 4, False),
        ("ivan", 2, True),
    ]
    assert all(x["capa_number"] != "CAPA-2026-9002" for x in board["items"])  # closed
    late = await get("/api/v1/capa-actions?overdue=true&owner=ivan")
    assert [(x["capa_id"], x["seq"]) for x in late["items"]] == [(CAPA_A, 2)]
