"""Issue 7, bad input: each kind of bad request, on the real stack, is refused with a message
that names what was wrong, and changes nothing. "Nothing" is counted: the rows of every table a
request could write, and the audit trail, which gains only the refusal the design records
(`event.refused`, `task.decision_refused`); a refused start starts no workflow either."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from tests.api.conftest import Stack
from tests.helpers import eventually
from tests.reliability.flows import DUE, TUBING, lot_of, open_task, purchase_at_receiving, started

# every table a request could write (business rows, inbox, signatures, outbox, processes)
WRITTEN_TABLES = (
    "process",
    "task",
    "task_decision",
    "e_signature",
    "outbox",
    "delegation",
    "change_request",
    "purchase_order",
    "purchase_order_line",
    "work_order",
    "shipment",
    "customer_order",
    "lot",
    "receipt",
    "inventory_movement",
    "lot_status_change",
    "nonconformance",
    "nc_lot",
    "capa",
    "recall",
    "recall_lot",
)
PURCHASE = {"supplier_code": "SUP-0001", "lines": [TUBING], "due_on": DUE}
APPROVAL = {"title": "Approve SOP-QA-014 rev D", "approver_groups": ["qa"]}
RECEIPT = {"part_number": "TB-0150", "quantity": "100", "supplier_lot": "NK-9"}
REPORT = {
    "source": "incoming",
    "severity": "minor",
    "title": "Collar cracks",
    "description": "Collar cracked on 2 of 50 connectors",
}
BAD_CHECK_DIGIT = "(01)00614141200011(10)NK-9"
UNKNOWN_AI = "(89)123(10)NK-9"
TRUNCATED_GTIN = "(01)0061414"
TRUNCATED_DATE = "0109506000134352172601"  # raw, as a scanner sends it: (17) has 4 digits
IMPOSSIBLE_EXPIRY = "(01)09506000134352(17)290230(10)NK-9"
GS1_PROBLEMS = [
    (BAD_CHECK_DIGIT, "the check digit of GTIN 00614141200011 is 1, it should be 6"),
    (UNKNOWN_AI, "(89) is not a GS1 application identifier"),
    (TRUNCATED_GTIN, "(01) GTIN '0061414' is not 14 digits"),
    (TRUNCATED_DATE, "(17) expiry date '2601' is not a date in the form YYMMDD"),
    (IMPOSSIBLE_EXPIRY, "(17) expiry date '290230' is not a real date"),
]
NUL = "\x00"


@dataclass(frozen=True)
class Snapshot:
    """Row counts of the written tables and of the audit trail by action."""

    rows: dict[str, int]
    audit: Counter[str]


async def snapshot(stack: Stack) -> Snapshot:
    counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in WRITTEN_TABLES)
    async with stack.sessions() as session:
        rows = {name: int(n) for name, n in (await session.execute(text(counts))).tuples()}
        actions = await session.execute(
            text("SELECT action, count(*) FROM audit_entry GROUP BY action")
        )
        return Snapshot(rows, Counter({a: int(n) for a, n in actions.tuples()}))


async def settled(stack: Stack) -> Snapshot:
    """A snapshot once nothing moves any more (a process may still be writing its last step)."""
    last = await snapshot(stack)
    while True:
        await asyncio.sleep(0.3)
        now = await snapshot(stack)
        if now == last:
            return now
        last = now


async def workflows(stack: Stack) -> int:
    """Workflows ever started on the test's task queue."""
    counted = await stack.temporal.count_workflows(f'TaskQueue="{stack.task_queue}"')
    return counted.count


class Unchanged:
    """`async with Unchanged(stack, audited={...})`: the block changes no row, and the audit
    trail gains exactly `audited` (action: rows); no workflow starts."""

    def __init__(self, stack: Stack, audited: dict[str, int] | None = None) -> None:
        self.stack = stack
        self.audited = Counter(audited or {})

    async def __aenter__(self) -> None:
        self.before = await settled(self.stack)
        self.workflows = await workflows(self.stack)

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        after = await settled(self.stack)
        changed = {t: (n, after.rows[t]) for t, n in self.before.rows.items() if after.rows[t] != n}
        assert not changed, f"rows written: {changed}"
        assert after.audit - self.before.audit == self.audited, after.audit - self.before.audit
        assert self.before.audit - after.audit == Counter()
        await asyncio.sleep(0.5)  # a start the visibility store has not shown yet
        assert await workflows(self.stack) == self.workflows, "a workflow was started"


def refused(response: httpx.Response, status: int, *words: str) -> str:
    """The answer's detail, after checking the status, the JSON shape and that it names what
    was wrong (`words`)."""
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code == status, (where, response.status_code, response.text)
    assert "Traceback" not in response.text and 'File "' not in response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str), (where, detail)
    for word in words:
        assert word in detail, (where, word, detail)
    return detail


@pytest.fixture
async def receiving(stack: Stack) -> AsyncIterator[str]:
    """A real purchase waiting for goods receipts."""
    yield await purchase_at_receiving(stack)


# ---------------------------------------------------------------- GS1 strings


async def test_a_malformed_gs1_string_on_the_trace_says_what_is_wrong(stack: Stack) -> None:
    async with Unchanged(stack):
        for label, problem in GS1_PROBLEMS:
            for url in (f"/api/v1/lots/{quote(label, safe='')}/trace", f"/api/v1/lots/{label}"):
                refused(await stack.http.get(url, headers=stack.mes), 422, problem)


async def test_a_malformed_gs1_label_on_goods_received_makes_no_lot(
    stack: Stack, receiving: str
) -> None:
    url = f"/api/v1/processes/{receiving}/events/goods-received"
    grace = await stack.token("grace")
    async with Unchanged(stack, audited={"event.refused": len(GS1_PROBLEMS)}):
        for label, problem in GS1_PROBLEMS:
            response = await stack.http.post(url, json=RECEIPT | {"gs1": label}, headers=grace)
            refused(response, 422, "gs1:", problem)
    received = await stack.http.post(url, json=RECEIPT, headers=grace)  # the purchase still takes
    assert received.status_code == 200, received.text  # a good receipt: the refusals broke nothing


# ---------------------------------------------------------------- dates and quantities


async def test_impossible_dates_are_refused_by_field(stack: Stack, receiving: str) -> None:
    alice, admin = await stack.token("alice"), await stack.token("admin")
    now = datetime.now(UTC)
    cases: list[tuple[str, dict[str, Any], dict[str, str], tuple[str, ...]]] = [
        (
            "/api/v1/processes/purchase",
            PURCHASE | {"due_on": "2026-02-30"},
            stack.mes,
            ("due_on: Input should be a valid date", "day value is outside expected range"),
        ),
        (
            "/api/v1/processes/purchase",
            PURCHASE | {"due_on": "0000-01-01"},
            stack.mes,
            ("due_on:", "year 0 is out of range"),
        ),
        (
            "/api/v1/processes/purchase",
            PURCHASE | {"due_on": "2020-01-01"},
            stack.mes,
            ("due_on 2020-01-01 is in the past",),
        ),
        (
            "/api/v1/processes/procure-to-deliver",
            {
                "customer_code": "CUS-0001",
                "part_number": "IS-2000",
                "quantity": "10",
                "due_on": "2020-01-01",
            },
            stack.mes,
            ("due_on 2020-01-01 is in the past",),
        ),
        (
            "/api/v1/delegations",
            {"delegate": "bob", "starts_at": "2026-02-30T08:00:00Z", "ends_at": DUE},
            alice,
            ("starts_at: Input should be a valid datetime", "day value is outside"),
        ),
        (
            "/api/v1/delegations",
            {
                "delegate": "bob",
                "starts_at": (now - timedelta(days=9)).isoformat(),
                "ends_at": (now - timedelta(days=2)).isoformat(),
            },
            alice,
            ("ends_at is in the past",),
        ),
    ]
    async with Unchanged(stack):
        for url, body, who, words in cases:
            refused(await stack.http.post(url, json=body, headers=who), 422, *words)
        since = await stack.http.get("/api/v1/audit?since=2026-02-30", headers=admin)
        refused(since, 422, "query.since", "day value is outside expected range")

    url = f"/api/v1/processes/{receiving}/events/goods-received"
    grace = await stack.token("grace")
    labelled = [
        (
            RECEIPT | {"manufactured_on": "2026-02-30"},
            ("manufactured_on: Input should be a valid",),
        ),
        (RECEIPT | {"expires_on": "0000-12-31"}, ("expires_on:", "year 0 is out of range")),
        (
            RECEIPT | {"manufactured_on": "2026-05-01", "expires_on": "2026-04-30"},
            ("expires_on: Value error, the expiry date must be after the manufacture date",),
        ),
    ]
    async with Unchanged(stack, audited={"event.refused": len(labelled)}):
        for body, words in labelled:
            refused(await stack.http.post(url, json=body, headers=grace), 422, *words)


async def test_zero_negative_and_not_finite_quantities_are_refused(
    stack: Stack, receiving: str
) -> None:
    def purchase_of(quantity: object, price: object = "1") -> dict[str, Any]:
        return PURCHASE | {"lines": [TUBING | {"quantity": quantity, "unit_price": price}]}

    cases: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        ("purchase", purchase_of("0"), ("lines.0.quantity: Input should be greater than 0",)),
        ("purchase", purchase_of("-5"), ("lines.0.quantity: Input should be greater than 0",)),
        ("purchase", purchase_of("-0"), ("lines.0.quantity: Input should be greater than 0",)),
        ("purchase", purchase_of("NaN"), ("lines.0.quantity: Input should be a finite number",)),
        ("purchase", purchase_of("Infinity"), ("lines.0.quantity: Input should be a finite",)),
        (
            "purchase",
            purchase_of("1e400"),
            ("lines.0.quantity: Decimal input should have no more than 14 digits",),
        ),
        (
            "purchase",
            purchase_of("10", "-0.01"),
            ("lines.0.unit_price: Input should be greater than or equal to 0",),
        ),
        (
            "work-order",
            {"part_number": "IS-2000", "quantity": 0, "due_on": DUE},
            ("quantity: Input should be greater than 0",),
        ),
        (
            "shipment",
            {"customer_code": "CUS-0003", "lines": [{"part_number": "IS-2000", "quantity": -1}]},
            ("lines.0.quantity: Input should be greater than 0",),
        ),
        (
            "procure-to-deliver",
            {"customer_code": "CUS-0001", "part_number": "IS-2000", "quantity": "0", "due_on": DUE},
            ("quantity: Input should be greater than 0",),
        ),
        ("nonconformance", REPORT | {"quantity": "-3"}, ("quantity: Input should be greater",)),
    ]
    async with Unchanged(stack):
        for kind, body, words in cases:
            response = await stack.http.post(
                f"/api/v1/processes/{kind}", json=body, headers=stack.mes
            )
            refused(response, 422, *words)

    url = f"/api/v1/processes/{receiving}/events/goods-received"
    grace = await stack.token("grace")
    quantities = ["0", "-1", "-0", "NaN"]
    async with Unchanged(stack, audited={"event.refused": len(quantities)}):
        for quantity in quantities:
            response = await stack.http.post(
                url, json=RECEIPT | {"quantity": quantity}, headers=grace
            )
            refused(response, 422, "quantity: Input should be")


async def test_unknown_lots_are_named(stack: Stack) -> None:
    carol = await stack.token("carol")
    async with Unchanged(stack):
        for url in ("/api/v1/lots/NOPE-0001", "/api/v1/lots/NOPE-0001/trace"):
            response = await stack.http.get(url, headers=stack.mes)
            refused(response, 404, "lot NOPE-0001 is not known")
        nc = await stack.http.post(
            "/api/v1/processes/nonconformance",
            json=REPORT | {"lots": [await lot_of(stack, "LC-0110", "RELEASED"), "NOPE-0001"]},
            headers=stack.mes,
        )
        refused(nc, 422, "lot NOPE-0001 is not known")
        recall = await stack.http.post(
            "/api/v1/processes/recall",
            json={"suspect_lots": ["NOPE-0001"], "reason": "Tubing kinks", "drill": True},
            headers=carol,
        )
        refused(recall, 422, "lot NOPE-0001 is not known")
        widen = await stack.http.post(
            "/api/v1/recalls/rcl-nowhere/widen-scope",
            json={"lots": ["NOPE-0001"], "reason": "more lots"},
            headers=carol,
        )
        refused(widen, 404, "rcl-nowhere")


# ---------------------------------------------------------------- the body itself


@pytest.mark.parametrize("chunked", [False, True], ids=["with-content-length", "chunked"])
async def test_a_body_over_one_megabyte_is_refused_with_or_without_its_length(
    stack: Stack, chunked: bool
) -> None:
    alice = await stack.token("alice")
    big = '{"title": "Approve it", "approver_groups": ["qa"], "description": "' + "x" * 1_100_000
    payload = (big + '"}').encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    headers = alice | {"Content-Type": "application/json"}
    async with Unchanged(stack):
        response = await stack.http.post(
            "/api/v1/processes/approval", content=pieces() if chunked else payload, headers=headers
        )
        refused(response, 413, "the request body is larger than 1000000 bytes")
    sent = response.request.headers
    assert ("content-length" in sent) is not chunked
    assert (sent.get("transfer-encoding") == "chunked") is chunked


async def test_a_chunked_body_within_the_limit_still_arrives_whole(stack: Stack) -> None:
    """The size guard reads the body as it arrives; the route must still get all of it."""
    alice = await stack.token("alice") | {"Content-Type": "application/json"}

    def in_pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(body), size):
                yield body[start : start + size]

        return pieces()

    small = b'{"title": "Approve SOP-QA-014 rev D", "approver_groups": ["qa"]}'
    response = await stack.http.post(
        "/api/v1/processes/approval", content=in_pieces(small, 7), headers=alice
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Approve SOP-QA-014 rev D"
    long = small[:-1] + b', "description": "' + b"y" * 200_000 + b'"}'
    response = await stack.http.post(
        "/api/v1/processes/approval", content=in_pieces(long, 4096), headers=alice
    )  # read whole: the JSON parses, and its one field too long is what is refused
    refused(response, 422, "description: String should have at most 5000 characters")


async def test_a_body_that_is_not_json_says_so(stack: Stack) -> None:
    alice = await stack.token("alice")
    valid = b'{"title": "Approve it", "approver_groups": ["qa"]}'
    cases = [
        ("application/json", b'{"title": "Approve it", ', "body: not valid JSON"),
        ("application/json", b"\xff\xfe", "body: not valid JSON"),
        ("application/json", b"", "body: Field required"),
        ("application/json", b'["a list"]', "body: Input should be a valid dictionary"),
        (
            "text/plain",
            valid,
            "body: send a JSON object with Content-Type: application/json, not text/plain",
        ),
        (
            "application/x-www-form-urlencoded",
            b"title=Approve+it&approver_groups=qa",
            "not application/x-www-form-urlencoded",
        ),
        ("application/xml", b"<approval/>", "not application/xml"),
    ]
    async with Unchanged(stack):
        for content_type, body, words in cases:
            response = await stack.http.post(
                "/api/v1/processes/approval",
                content=body,
                headers=alice | {"Content-Type": content_type},
            )
            refused(response, 422, words)
        unreadable = await stack.http.post(  # bytes that are no text in any JSON encoding
            "/api/v1/processes/approval",
            content=b"\xff\xfe\x00",
            headers=alice | {"Content-Type": "application/json"},
        )
        refused(unreadable, 400, "the request body cannot be read: send a JSON object")
        event = await stack.http.post(
            "/api/v1/processes/po-nowhere/events/asn",
            content=b"asn_reference=A1",
            headers=stack.mes | {"Content-Type": "text/plain"},
        )
        refused(event, 422, "send a JSON object with Content-Type: application/json")


async def test_a_nul_character_is_refused_by_field_and_starts_nothing(stack: Stack) -> None:
    """PostgreSQL text cannot hold a NUL: accepted, a start was answered 201 while its
    workflow's first activity then failed for ever."""
    alice, carol = await stack.token("alice"), await stack.token("carol")
    lot = await lot_of(stack, "LC-0110", "RELEASED")
    starts: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
        ("approval", APPROVAL | {"description": f"rev D{NUL}"}, alice, "description:"),
        (
            "approval",
            APPROVAL | {"approver_groups": ["qa", f"q{NUL}a"]},
            alice,
            "approver_groups.1:",
        ),
        ("nonconformance", REPORT | {"title": f"Collar{NUL}"}, stack.mes, "title:"),
        ("nonconformance", REPORT | {"lots": [lot], "evidence": NUL}, stack.mes, "evidence:"),
        ("purchase", PURCHASE | {"buyer_note": f"{NUL}"}, stack.mes, "buyer_note:"),
        (
            "recall",
            {"suspect_lots": [lot], "reason": f"Collar cracks{NUL}", "drill": True},
            carol,
            "reason:",
        ),
    ]
    async with Unchanged(stack):
        for kind, body, who, where in starts:
            response = await stack.http.post(f"/api/v1/processes/{kind}", json=body, headers=who)
            refused(response, 422, f"not valid: {where}", "NUL character")
        refused(
            await stack.http.get("/api/v1/suppliers/SUP%000001", headers=stack.mes),
            422,
            "the address: contains the NUL character",
        )
        refused(
            await stack.http.get("/api/v1/tasks?q=abc%00", headers=alice),
            422,
            "query.q: contains the NUL character",
        )
        refused(
            await stack.http.post(
                "/api/v1/auth/token", json={"username": f"alice{NUL}", "password": "x"}
            ),
            422,
            "username: contains the NUL character",
        )
    escaped = await stack.http.post(  # a backslash and "u0000" is text, not a NUL
        "/api/v1/processes/approval",
        content=b'{"title": "Approve C:\\\\u0000 path", "approver_groups": ["qa"]}',
        headers=alice | {"Content-Type": "application/json"},
    )
    assert escaped.status_code == 201, escaped.text


# ---------------------------------------------------------------- processes and tasks


async def test_an_event_for_a_finished_process_is_refused(stack: Stack) -> None:
    purchase = await started(stack, "purchase", PURCHASE, stack.mes)
    withdrawn = await stack.http.post(
        f"/api/v1/processes/{purchase}/cancel",
        json={"reason": "ordered twice"},
        headers=await stack.token("admin"),
    )
    assert withdrawn.status_code == 202, withdrawn.text

    async def ended() -> str | None:
        answer = await stack.http.get(f"/api/v1/processes/{purchase}", headers=stack.mes)
        return None if answer.json()["status"] == "running" else answer.json()["status"]

    status = await eventually(ended, what="the purchase withdrawn")
    async with Unchanged(stack, audited={"event.refused": 2}):
        for event, body in (("goods-received", RECEIPT), ("asn", {"asn_reference": "A1"})):
            response = await stack.http.post(
                f"/api/v1/processes/{purchase}/events/{event}", json=body, headers=stack.mes
            )
            refused(response, 409, f"process {purchase} is {status}; it accepts no more events")


async def test_a_decision_missing_a_field_or_with_an_unknown_outcome_is_refused(
    stack: Stack,
) -> None:
    approval = await started(stack, "approval", APPROVAL, await stack.token("alice"))
    task = await open_task(stack, f"{approval}.approval")
    bob = await stack.token("bob")
    url = f"/api/v1/tasks/{task}/decision"
    async with Unchanged(stack):  # refused before the task is looked at
        for body, words in [
            ({"comment": "fine"}, ("outcome: Field required",)),
            ({"outcome": ""}, ("outcome: String should have at least 1 character",)),
            ({"outcome": "reject", "fields": {"reason": 5}}, ("fields.reason:", "valid string")),
            ({"outcome": "reject", "fields": ["reason"]}, ("fields: Input should be a valid",)),
        ]:
            refused(await stack.http.post(url, json=body, headers=bob), 422, *words)
    async with Unchanged(stack, audited={"task.decision_refused": 2}):
        missing = await stack.http.post(url, json={"outcome": "reject"}, headers=bob)
        refused(missing, 422, "reason")
        unknown = await stack.http.post(url, json={"outcome": "maybe"}, headers=bob)
        refused(unknown, 422, "maybe", "approve", "reject")
    decided = await stack.http.post(  # the task is still open and takes a proper decision
        url,
        json={"outcome": "reject", "fields": {"reason": "wrong SOP"}, "password": "lotline-demo"},
        headers=bob,
    )
    assert decided.status_code == 200, decided.text


async def test_query_parameters_of_the_wrong_type_name_the_parameter(stack: Stack) -> None:
    admin = await stack.token("admin")
    cases = [
        ("/api/v1/tasks?limit=abc", "query.limit: Input should be a valid integer"),
        ("/api/v1/tasks?limit=0", "query.limit: Input should be greater than or equal to 1"),
        ("/api/v1/tasks?overdue=maybe", "query.overdue: Input should be a valid boolean"),
        ("/api/v1/tasks?scope=nobody", "query.scope: Input should be 'all', 'mine'"),
        ("/api/v1/tasks?status=closed", "query.status: Input should be 'open'"),
        ("/api/v1/processes?offset=x", "query.offset: Input should be a valid integer"),
        ("/api/v1/processes?limit=501", "query.limit: Input should be less than or equal to 500"),
        ("/api/v1/lots?limit=-1", "query.limit: Input should be greater than or equal to 1"),
        ("/api/v1/lots?status=LOST", "status is one of"),
        ("/api/v1/audit?since=yesterday", "query.since: Input should be a valid datetime"),
        ("/api/v1/audit?before_id=abc", "query.before_id: Input should be a valid integer"),
        ("/api/v1/changes?offset=1.5", "query.offset: Input should be a valid integer"),
        ("/api/v1/nonconformances?overdue=2", "query.overdue: Input should be a valid boolean"),
        ("/api/v1/capas?limit=1e3", "query.limit: Input should be a valid integer"),
        ("/api/v1/capa-actions?overdue=perhaps", "query.overdue: Input should be a valid boolean"),
        ("/api/v1/recalls?offset=-3", "query.offset: Input should be greater than or equal to 0"),
        ("/api/v1/lots/NOPE-1/trace?direction=sideways", "direction is forward or backward"),
        ("/api/v1/tasks/abc", "path.task_id: Input should be a valid integer"),
        ("/api/v1/tasks/99999999999", "path.task_id: Input should be less than or equal to"),
    ]
    async with Unchanged(stack):
        for url, words in cases:
            refused(await stack.http.get(url, headers=admin), 422, words)
        revoke = await stack.http.delete("/api/v1/delegations/99999999999", headers=admin)
        refused(revoke, 422, "path.delegation_id: Input should be less than or equal to")
