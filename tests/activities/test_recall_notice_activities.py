"""Recall notice content and activities on real PostgreSQL with the demo catalogue: the notice
says what 21 CFR 7.49 asks (product, GTIN, lots and serials, reason, hazard, class, what to do,
how to answer, the recall number) as text and JSON; e-mail and webhook through the outbox, none
in a drill; when a consignee counts as reconciled; retries write nothing twice; impossible answers
refused by the ERP too.

The helper here (a recall with its consignees, written as the recall's scope would) serves the
workflow tests too."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.recall_notice import RecallNoticeActivities
from erp.master_data import Item
from erp.models import AuditEntry, Outbox
from erp.recall import Recall, RecallConsignee, RecallResponse, RecallReturn
from erp.recall_notice import compose_notice, compose_reminder, notice_facts
from erp.seed import seed_demo
from erp.supply import Customer
from schemas.recall import ConsigneeResponse, RecallReturnReceived
from schemas.recall_notice import (
    ConsigneePosition,
    RecordConsigneeResponseInput,
    RecordRecallReturnInput,
    SendRecallNoticeInput,
    SendReminderInput,
)
from tests.activities.test_nonconformance_activities import demo_lot

RECALL_PID = "rcl-notice-test"
REASON = "Drip chamber may crack under pressure: free-flow of the infusion possible"
HAZARD = "Over-infusion; serious injury possible for high-alert drugs"

# ---------------------------------------------------------------- helpers (also for workflows)


async def add_recall(
    sessions: async_sessionmaker[AsyncSession],
    *,
    process_id: str = RECALL_PID,
    number: str = "RCL-2026-0042",
    drill: bool = False,
    webhook: str | None = None,
) -> dict[str, str]:
    """A classified recall with two consignees, as the recall's scope writes them: CUS-0001
    received 10 of the demo IS-2000 lot (in two shipments) and the 5 serialised IP-3000 pumps;
    CUS-0002 received 4 of the IS-2000 lot. CUS-0001 gets `webhook`. Returns the lot numbers."""
    infusion = await demo_lot(sessions, 10)
    pumps = await demo_lot(sessions, 16)
    serials = [f"IP3-{n:06d}" for n in range(1, 6)]
    async with sessions() as session, session.begin():
        recall = Recall(
            number=number,
            process_id=process_id,
            drill=drill,
            reason=REASON,
            source="nc",
            source_reference="NC-2026-0007",
            requested_by="carol",
            status="notifying",
            health_hazard=HAZARD,
            classification="II",
            depth="retail",
            public_warning=False,
            effectiveness_level="B",
            scope_version=1,
        )
        session.add(recall)
        await session.flush()
        customers = {
            c.code: c
            for c in await session.scalars(
                select(Customer).where(Customer.code.in_(["CUS-0001", "CUS-0002"]))
            )
        }
        if webhook is not None:
            customers["CUS-0001"].webhook_url = webhook
        session.add_all(
            [
                RecallConsignee(
                    recall_id=recall.id,
                    customer_id=customers["CUS-0001"].id,
                    scope_version=1,
                    shipped_quantity=Decimal(15),
                    shipped=[
                        {
                            "lot_number": infusion.lot_number,
                            "part_number": "IS-2000",
                            "quantity": "10",
                            "shipments": ["SH-2026-0001", "SH-2026-0004"],
                            "serials": [],
                        },
                        {
                            "lot_number": pumps.lot_number,
                            "part_number": "IP-3000",
                            "quantity": "5",
                            "shipments": ["SH-2026-0002"],
                            "serials": serials,
                        },
                    ],
                ),
                RecallConsignee(
                    recall_id=recall.id,
                    customer_id=customers["CUS-0002"].id,
                    scope_version=1,
                    shipped_quantity=Decimal(4),
                    shipped=[
                        {
                            "lot_number": infusion.lot_number,
                            "part_number": "IS-2000",
                            "quantity": "4",
                            "shipments": ["SH-2026-0003"],
                            "serials": [],
                        }
                    ],
                ),
            ]
        )
    return {"infusion": infusion.lot_number, "pumps": pumps.lot_number}


async def consignee_row(
    sessions: async_sessionmaker[AsyncSession], code: str, process_id: str = RECALL_PID
) -> RecallConsignee:
    async with sessions() as session:
        row = await session.scalar(
            select(RecallConsignee)
            .join(Recall, Recall.id == RecallConsignee.recall_id)
            .join(Customer, Customer.id == RecallConsignee.customer_id)
            .where(Recall.process_id == process_id, Customer.code == code)
        )
    assert row is not None
    return row


async def outbox_to(sessions: async_sessionmaker[AsyncSession], *recipients: str) -> list[Outbox]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Outbox).where(Outbox.recipient.in_(recipients)).order_by(Outbox.id)
            )
        )


# ---------------------------------------------------------------- content


async def _facts(sessions: async_sessionmaker[AsyncSession], code: str):  # type: ignore[no-untyped-def]
    async with sessions() as session:
        recall = await session.scalar(select(Recall).where(Recall.process_id == RECALL_PID))
        customer = await session.scalar(select(Customer).where(Customer.code == code))
        assert recall is not None and customer is not None
        row = await session.scalar(
            select(RecallConsignee).where(
                RecallConsignee.recall_id == recall.id, RecallConsignee.customer_id == customer.id
            )
        )
        assert row is not None
        return await notice_facts(session, recall, row, customer)


async def test_the_notice_says_what_21_cfr_7_49_asks_as_text_and_json(sessions):
    await seed_demo(sessions)
    lots = await add_recall(sessions)
    async with sessions() as session:
        infusion_set = await session.scalar(
            select(Item).where(Item.part_number == "IS-2000", Item.status == "effective")
        )
        pump = await session.scalar(
            select(Item).where(Item.part_number == "IP-3000", Item.status == "effective")
        )
    assert infusion_set is not None and pump is not None and infusion_set.gtin and pump.gtin

    notice = compose_notice(await _facts(sessions, "CUS-0001"))

    assert notice.subject.startswith("URGENT: MEDICAL DEVICE RECALL RCL-2026-0042")
    text = notice.text
    for said in (
        "St. Aurelia Hospital, Central Pharmacy (CUS-0001)",
        "Recall number: RCL-2026-0042",
        "Classification: Class II; recall depth: the retail level",
        f"IS-2000 rev. {infusion_set.revision} {infusion_set.description}, GTIN {infusion_set.gtin}",
        f"lot {lots['infusion']}: 10 ea",
        "shipment SH-2026-0001, SH-2026-0004",
        f"IP-3000 rev. {pump.revision} {pump.description}, GTIN {pump.gtin}",
        "serials IP3-000001, IP3-000002, IP3-000003, IP3-000004, IP3-000005",
        "Total shipped to you: 15",
        f"Reason for the recall: {REASON}",
        f"Health hazard: {HAZARD}",
        "Stop using and stop distributing",
        "Quarantine every unit",
        "Return the quarantined units to us, or correct them",
        "quantity you have on hand, returned and corrected",
        "notify your own customers",
        f"/api/v1/processes/{RECALL_PID}/events/consignee-response",
    ):
        assert said in text, said

    document = notice.document
    assert document["recall_number"] == "RCL-2026-0042"
    assert document["classification"] == "II" and document["depth"] == "retail"
    assert document["reason"] == REASON and document["health_hazard"] == HAZARD
    assert document["consignee"] == {
        "code": "CUS-0001",
        "name": "St. Aurelia Hospital, Central Pharmacy",
    }
    products = {p["part_number"]: p for p in document["products"]}
    assert products["IS-2000"]["gtin"] == infusion_set.gtin
    assert products["IS-2000"]["lots"][0]["lot_number"] == lots["infusion"]
    assert products["IS-2000"]["lots"][0]["quantity"] == "10"
    assert products["IP-3000"]["lots"][0]["serials"][0] == "IP3-000001"
    assert len(document["instructions"]) == 5
    assert document["respond"]["event"] == "consignee-response"
    assert document["respond"]["data"]["consignee_code"] == "CUS-0001"

    reminder = compose_reminder(notice, 2, 14)
    assert reminder.subject.startswith("REMINDER 2: URGENT: MEDICAL DEVICE RECALL")
    assert "14 days ago" in reminder.text and text in reminder.text
    assert reminder.document["type"] == "recall.reminder"


# ---------------------------------------------------------------- when a consignee is reconciled


def _position(**kw: str | None) -> ConsigneePosition:
    values = {k: (Decimal(v) if v is not None else None) for k, v in kw.items()}
    return ConsigneePosition(status="notified", shipped_quantity=Decimal(10), **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("position", "reconciled"),
    [
        (_position(), False),
        (_position(quantity_received_back="10"), True),  # all back at our dock
        (_position(quantity_received_back="6", quantity_corrected="4"), True),
        (_position(quantity_returned="6", quantity_received_back="6", quantity_on_hand="4"), False),
        (_position(quantity_returned="6", quantity_received_back="6", quantity_on_hand="0"), True),
        (_position(quantity_returned="6", quantity_received_back="2", quantity_on_hand="0"), False),
        (_position(quantity_on_hand="0"), True),  # none left, none sent back: all used
        (_position(quantity_on_hand=None, quantity_corrected="9"), False),
    ],
)
def test_when_a_consignee_counts_as_reconciled(position: ConsigneePosition, reconciled: bool):
    assert position.reconciled is reconciled


def test_an_answer_saying_more_than_was_shipped_is_impossible():
    position = _position()
    too_much = ConsigneeResponse(
        consignee_code="CUS-0001",
        quantity_on_hand=Decimal(5),
        quantity_returned=Decimal(4),
        quantity_corrected=Decimal(2),
    )
    assert position.response_problem(too_much) == (
        "returned 4 + corrected 2 + on hand 5 = 11 is more than the 10 shipped to this consignee"
    )
    assert position.response_problem(too_much.model_copy(update={"quantity_on_hand": 4})) == ""
    assert "more than the 10 shipped" in position.with_return(Decimal(7)).return_problem(Decimal(4))


# ---------------------------------------------------------------- activities


async def test_the_notice_goes_out_once_by_email_and_webhook_and_a_drill_sends_nothing(sessions):
    await seed_demo(sessions)
    await add_recall(sessions, webhook="https://erp.st-aurelia.example/recalls")
    await add_recall(sessions, process_id="rcl-drill", number="DRL-2026-0001", drill=True)
    env = ActivityEnvironment()
    acts = RecallNoticeActivities(sessions)
    send = SendRecallNoticeInput(
        process_id=f"{RECALL_PID}.notice-CUS-0001",
        recall_process_id=RECALL_PID,
        consignee_code="CUS-0001",
    )

    sent = await env.run(acts.send_recall_notice, send)
    again = await env.run(acts.send_recall_notice, send)  # a retry

    assert again == sent
    assert sent.channels == ["email", "webhook"] and sent.position.status == "notified"
    assert sent.position.shipped_quantity == 15 and len(sent.lot_numbers) == 2
    email, webhook = await outbox_to(
        sessions, "pharmacy@st-aurelia.example", "https://erp.st-aurelia.example/recalls"
    )
    assert email.channel == "email" and email.subject.startswith("URGENT: MEDICAL DEVICE RECALL")
    assert "Reason for the recall" in email.body
    assert webhook.channel == "webhook" and webhook.payload["recall_number"] == "RCL-2026-0042"
    row = await consignee_row(sessions, "CUS-0001")
    assert row.status == "notified" and row.notified_at == sent.notified_at
    assert row.notice_process_id == send.process_id

    drill = await env.run(
        acts.send_recall_notice,
        SendRecallNoticeInput(
            process_id="rcl-drill.notice-CUS-0002",
            recall_process_id="rcl-drill",
            consignee_code="CUS-0002",
            drill=True,
        ),
    )
    assert drill.channels == []
    assert await outbox_to(sessions, "orders@meridian-med.example") == []
    assert (await consignee_row(sessions, "CUS-0002", "rcl-drill")).notified_at is not None
    async with sessions() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.entity_id == "DRL-2026-0001/CUS-0002")
        )
    assert entry is not None and entry.action == "recall.notice_sent"
    assert entry.outcome == "suppressed (drill)"
    assert entry.after is not None and entry.after["notice"]["recall_number"] == "DRL-2026-0001"

    reminder = SendReminderInput(
        process_id=send.process_id,
        recall_process_id=RECALL_PID,
        consignee_code="CUS-0001",
        reminder=1,
    )
    await env.run(acts.send_recall_reminder, reminder)
    await env.run(acts.send_recall_reminder, reminder)
    assert (await consignee_row(sessions, "CUS-0001")).reminders == 1
    assert len(await outbox_to(sessions, "pharmacy@st-aurelia.example")) == 2


async def test_answers_and_returns_are_recorded_once_and_reconcile(sessions):
    await seed_demo(sessions)
    lots = await add_recall(sessions)
    env = ActivityEnvironment()
    acts = RecallNoticeActivities(sessions)
    pid = f"{RECALL_PID}.notice-CUS-0002"
    await env.run(
        acts.send_recall_notice,
        SendRecallNoticeInput(
            process_id=pid, recall_process_id=RECALL_PID, consignee_code="CUS-0002"
        ),
    )
    answer = RecordConsigneeResponseInput(
        process_id=pid,
        recall_process_id=RECALL_PID,
        event_id="ev-1",
        response=ConsigneeResponse(
            consignee_code="CUS-0002", quantity_on_hand=Decimal(0), quantity_returned=Decimal(3)
        ),
        recorded_by="meridian-erp",
    )
    position = await env.run(acts.record_consignee_response, answer)
    assert await env.run(acts.record_consignee_response, answer) == position
    assert position.status == "responded" and not position.reconciled

    too_much = answer.model_copy(
        update={
            "event_id": "ev-2",
            "response": answer.response.model_copy(update={"quantity_corrected": Decimal(2)}),
        }
    )
    with pytest.raises(ApplicationError, match="more than the 4 shipped"):
        await env.run(acts.record_consignee_response, too_much)

    returned = RecordRecallReturnInput(
        process_id=pid,
        recall_process_id=RECALL_PID,
        event_id="rt-1",
        received=RecallReturnReceived(
            consignee_code="CUS-0002", lot_number=lots["infusion"], quantity=Decimal(3)
        ),
        received_by="grace",
    )
    position = await env.run(acts.record_recall_return, returned)
    assert await env.run(acts.record_recall_return, returned) == position
    assert position.reconciled and position.status == "reconciled"
    row = await consignee_row(sessions, "CUS-0002")
    assert row.reconciled_at is not None and row.quantity_received_back == 3
    assert row.acknowledged_at is not None and row.quantity_returned == 3
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RecallResponse)) == 1
        assert await session.scalar(select(func.count()).select_from(RecallReturn)) == 1
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id == "RCL-2026-0042/CUS-0002")
                .order_by(AuditEntry.id)
            )
        )
    assert actions == [
        "recall.notice_sent",
        "recall.response_recorded",
        "recall.return_received",
        "recall.consignee_reconciled",
    ]
    # a stale row cannot make the ERP accept more back than was shipped
    async with sessions() as session, session.begin():
        await session.execute(
            update(RecallConsignee)
            .where(RecallConsignee.id == row.id)
            .values(quantity_received_back=Decimal(4))
        )
    with pytest.raises(ApplicationError, match="more than the 4 shipped"):
        await env.run(acts.record_recall_return, returned.model_copy(update={"event_id": "rt-2"}))
