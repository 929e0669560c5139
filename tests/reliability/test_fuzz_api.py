"""Issue 7, bad input: schemathesis fuzzes every operation of /openapi.json on the real stack.

Each operation gets schema-valid and schema-violating requests from schemathesis, as an
administrator (bearer token) and as the MES (API key), with path parameters either generated or
naming records that exist (a purchase at receiving, an open task, an NC, a CAPA, a recall drill,
seeded lots and suppliers). Operations with a body also get a valid body with one field broken
(a tricky value, a wrong type, removed, or an unknown field added): generated bodies almost
never get past validation, and these reach the services and the workflows' validators.

For every response: no 5xx, no stack trace in the body, and a JSON body with a string `detail`
for every refusal. Failures are collected over the whole API and reported together (each with
a curl command), so one run shows every defect rather than only the first.

Hypothesis runs in a worker thread: the app, the worker and the Temporal client live on the
test's event loop, which stays free to serve the requests the thread hands it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.errors import FailureGroup
from sqlalchemy import select

from erp.master_data import Supplier
from tests.api.conftest import Stack
from tests.reliability.flows import (
    DUE,
    TUBING,
    lot_of,
    open_task,
    purchase_at_receiving,
    started,
)

EXAMPLES_PER_OPERATION = 20
EXAMPLES_PER_BODY_TEMPLATE = 20  # on top, for operations with a valid body to break
REQUEST_TIMEOUT = 60.0
STUCK_AFTER_ATTEMPTS = 3  # an activity failing this often will not succeed by retrying
RETRY_GRACE = 8.0  # seconds for a failing activity to reach that attempt (backoff 1 s, 2 s, …)
BASE_URL = "http://lotline.test"
# Logging out ends the session it is called with: each such call gets a session of its own.
SESSION_ENDING = {"POST /api/v1/auth/logout"}
AUTH_HEADERS = ("Authorization", "X-API-Key")
CALLERS = ["admin", "mes"]  # a person who may do anything, and a system with its scopes
TRACE_MARKERS = ("Traceback", 'File "')
TOMORROW = (datetime.now(UTC) + timedelta(days=1)).isoformat()

# Values that have broken parsers and databases before: numbers as text, impossible dates,
# NUL and control characters, GS1 strings that are wrong in each way, huge and tiny numbers.
TRICKY_TEXT = [
    "",
    " ",
    "0",
    "-1",
    "-0",
    "1e400",
    "1e-400",
    "NaN",
    "Infinity",
    "99999999999999999999999999",
    "0.00001",
    "2026-02-30",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "2026-13-01",
    "2026-02-30T10:00:00",
    "9999-12-31T23:59:59",
    "a\x00b",
    "\x00",
    "\u202eevil",
    "x" * 5000,
    "(01)00614141200011(10)X",
    "(01)0061414",
    "(89)123(10)X",
    "(99)1(10)",
    "(17)290230(10)A",
    "]C1",
    "]d2010",
    "0109506000134352\x1d10",
    "' OR 1=1 --",
    "%s%n",
    "../../etc/passwd",
]
TRICKY = st.one_of(
    st.sampled_from(TRICKY_TEXT),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


@dataclass(frozen=True)
class Template:
    """A request that is valid, to be broken one field at a time; `who` overrides the caller."""

    body: Any
    path: Mapping[str, Any] = field(default_factory=dict)
    who: str | None = None


@dataclass
class Targets:
    """What the fuzzer aims at: real path values per parameter, and valid bodies per operation."""

    known: dict[str, list[Any]]
    known_for: dict[str, dict[str, list[Any]]]  # per operation, instead of `known`
    templates: dict[str, list[Template]]
    identities: dict[str, dict[str, str]]  # who may be named; generated requests take CALLERS


@dataclass
class Findings:
    """What the fuzzer found, per operation, and how many requests it sent."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    requests: int = 0
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # per operation
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, operation: str, problem: str) -> None:
        problems = self.problems.setdefault(operation, [])
        if len(problems) < 3:  # a few examples of each are enough to fix it
            problems.append(problem)

    def count(self, operation: str, status: int) -> None:
        self.requests += 1
        statuses = self.statuses.setdefault(operation, {})
        statuses[status] = statuses.get(status, 0) + 1

    def report(self) -> str:
        return "\n\n".join(
            f"{operation}:\n" + "\n".join(problems)
            for operation, problems in sorted(self.problems.items())
        )


class LoopBridge:
    """Sends a generated request through the stack's in-process client on the stack's loop."""

    def __init__(self, stack: Stack, loop: asyncio.AbstractEventLoop) -> None:
        self.stack = stack
        self.loop = loop

    def send(self, kwargs: Mapping[str, Any]) -> httpx.Response:
        return self._wait(self._request(kwargs))

    def fresh_token(self) -> dict[str, str]:
        return self._wait(self.stack.token("admin"))

    def _wait(self, coroutine: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=REQUEST_TIMEOUT)

    async def _request(self, kwargs: Mapping[str, Any]) -> httpx.Response:
        headers = {
            name: value.encode("latin-1") if isinstance(value, str) else value
            for name, value in kwargs["headers"].items()
        }
        body: dict[str, Any] = {}
        if "json" in kwargs:  # NaN and Infinity as Python writes them: a real client can too
            body["content"] = json.dumps(kwargs["json"], allow_nan=True).encode()
        elif isinstance(kwargs.get("data"), (bytes, str)):
            body["content"] = kwargs["data"]
        elif kwargs.get("data") is not None:
            body["data"] = kwargs["data"]
        return await self.stack.http.request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers=headers,
            cookies=kwargs.get("cookies") or None,
            **body,
        )


def problems_in(response: httpx.Response) -> list[str]:
    """What is wrong with one answer, whatever the request was."""
    found: list[str] = []
    if response.status_code >= 500:
        found.append(f"status {response.status_code}")
    if any(marker in response.text for marker in TRACE_MARKERS):
        found.append("a stack trace in the body")
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            detail = None
        if not isinstance(detail, str) or not detail:
            found.append("no JSON body with a string 'detail'")
    return found


def leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value sits, the containers included."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += leaf_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += leaf_paths(item, (*prefix, index))
    return paths


@st.composite
def broken(draw: st.DrawFn, body: Any) -> Any:
    """The valid body with one field replaced by a tricky value, removed, or one added."""
    body = copy.deepcopy(body)
    path = draw(st.sampled_from(leaf_paths(body)))
    *parents, last = path
    container = body
    for step in parents:
        container = container[step]
    action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
    if action == "replace":
        container[last] = draw(TRICKY)
    elif action == "remove":
        del container[last]
    elif isinstance(container, dict):
        container[draw(st.text(min_size=1, max_size=10))] = draw(TRICKY)
    else:
        container.append(draw(TRICKY))
    return body


def case_strategies(operation: APIOperation, known: Mapping[str, Sequence[Any]]) -> Any:
    """Generated and schema-violating requests; with real path values when there are any."""
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    names = [parameter.name for parameter in operation.path_parameters]
    if names and all(name in known for name in names):
        real = st.fixed_dictionaries({name: st.sampled_from(known[name]) for name in names})
        for mode in modes:
            strategies.append(real.flatmap(_with_path(operation, mode)))
    return st.tuples(st.one_of(strategies), st.none())


def _with_path(operation: APIOperation, mode: GenerationMode) -> Any:
    def strategy(values: dict[str, Any]) -> Any:
        return operation.as_strategy(mode, path_parameters=values)

    return strategy


def template_strategy(operation: APIOperation, templates: Sequence[Template]) -> Any:
    """Valid requests of an operation, each with one field of its body broken."""

    def from_template(template: Template) -> Any:
        return broken(template.body).flatmap(
            lambda body: operation.as_strategy(
                GenerationMode.POSITIVE,
                path_parameters=dict(template.path) or None,
                body=body,
                media_type="application/json",
            )
        )

    return st.sampled_from(templates).flatmap(
        lambda template: st.tuples(from_template(template), st.just(template.who))
    )


def send_and_judge(
    label: str, case: Case, who: str, targets: Targets, bridge: LoopBridge, findings: Findings
) -> None:
    """One request; whatever it was, the answer must be a clean one."""
    identity = targets.identities[who]
    if label in SESSION_ENDING and who == "admin":
        identity = bridge.fresh_token()
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    for name in AUTH_HEADERS:  # the fuzzer's own credentials would stop it at the door
        kwargs["headers"].pop(name, None)
    kwargs["headers"].update(identity)
    response = bridge.send(kwargs)
    findings.count(label, response.status_code)
    found = problems_in(response)
    try:
        case.validate_response(response, checks=[not_a_server_error])
    except FailureGroup as group:
        found += [failure.title for failure in group.exceptions]
    if found:
        body = response.text[:300].replace("\n", " ")
        findings.add(
            label, f"  as {who}: {', '.join(found)} -> {body}\n    {case.as_curl_command()}"
        )


def fuzz_operation(
    operation: APIOperation, targets: Targets, bridge: LoopBridge, findings: Findings
) -> None:
    """Run one operation's examples; record every bad answer instead of stopping at it."""
    label = f"{operation.method.upper()} {operation.path}"
    templates = targets.templates.get(label, [])
    known = targets.known | targets.known_for.get(label, {})
    runs = [(case_strategies(operation, known), EXAMPLES_PER_OPERATION)]
    if templates:
        runs.append((template_strategy(operation, templates), EXAMPLES_PER_BODY_TEMPLATE))
    began = time.monotonic()
    for strategy, examples in runs:

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(generated=strategy, caller=st.sampled_from(CALLERS))
        def run(generated: tuple[Case, str | None], caller: str) -> None:
            case, who = generated
            send_and_judge(label, case, who or caller, targets, bridge, findings)

        run()
    findings.seconds[label] = time.monotonic() - began


async def fuzz_targets(stack: Stack) -> Targets:
    """Real records to aim at, and a valid request of each operation that takes a body."""
    tubing = await lot_of(stack, "TB-0150", "RELEASED")
    connectors = await lot_of(stack, "LC-0110", "RELEASED")
    finished = await lot_of(stack, "IS-2000", "RELEASED")
    alice, carol = await stack.token("alice"), await stack.token("carol")
    purchase = await purchase_at_receiving(stack)
    approval = await started(
        stack, "approval", {"title": "Fuzz target", "approver_groups": ["qa"]}, alice
    )
    report = {
        "source": "incoming",
        "severity": "minor",
        "title": "Fuzz target nonconformance",
        "description": "Collar cracked on 2 of 50 connectors",
        "lots": [connectors],
    }
    nc = await started(stack, "nonconformance", report, stack.mes)
    capa = {"title": "Fuzz target CAPA", "problem_statement": "Collars crack", "owner": "alice"}
    capa_id = await started(stack, "capa", capa, carol)
    drill = {"suspect_lots": [finished], "reason": "Fuzz target drill", "drill": True}
    recall = await started(stack, "recall", drill, carol)
    task = await open_task(stack, f"{approval}.approval")
    async with stack.sessions() as session:
        suppliers = list(await session.scalars(select(Supplier.code).order_by(Supplier.id)))
    receipt = {"part_number": "TB-0150", "quantity": "100", "supplier_lot": "NK-9"}
    return Targets(
        known={
            "process_id": [purchase, approval, recall],
            "event": ["supplier-confirmed", "asn", "goods-received", "delivered"],
            "task_id": [task],
            "lot": [tubing, finished, "(01)09506000134352(10)NK-1"],
            "code": suppliers[:2],
            "username": ["bob"],
            "key": [nc, capa_id, recall, approval],
        },
        # withdrawing the purchase or the recall would leave nothing running to send events to
        known_for={"POST /api/v1/processes/{process_id}/cancel": {"process_id": [approval]}},
        templates={
            "POST /api/v1/auth/token": [Template({"username": "nobody", "password": "x"})],
            "POST /api/v1/tasks/{task_id}/decision": [
                Template(
                    {"outcome": "approve", "fields": {}, "comment": "ok", "password": "wrong"},
                    {"task_id": task},
                    who="bob",
                )
            ],
            "POST /api/v1/processes/approval": [
                Template({"title": "Approve it", "approver_groups": ["qa"], "sla_hours": 4})
            ],
            "POST /api/v1/processes/purchase": [
                Template({"supplier_code": "SUP-0001", "lines": [TUBING], "due_on": DUE})
            ],
            "POST /api/v1/processes/work-order": [
                Template({"part_number": "IS-2000", "quantity": "500", "due_on": DUE})
            ],
            "POST /api/v1/processes/shipment": [
                Template(
                    {
                        "customer_code": "CUS-0003",
                        "lines": [{"part_number": "IS-2000", "quantity": "100"}],
                    }
                )
            ],
            "POST /api/v1/processes/procure-to-deliver": [
                Template(
                    {
                        "customer_code": "CUS-0001",
                        "part_number": "IS-2000",
                        "quantity": "200",
                        "due_on": DUE,
                    }
                )
            ],
            "POST /api/v1/processes/change-control": [
                Template(
                    {
                        "change_type": "design",
                        "title": "Luer lock connector rev D",
                        "reason": "Collar cracks; rev D has a thicker collar.",
                        "risk": "medium",
                        "affected_items": ["IS-2000"],
                        "actions": [
                            {"kind": "item_revision", "target": "LC-0110", "new_revision": "D"}
                        ],
                        "requested_effective_on": date.today().isoformat(),
                    }
                )
            ],
            "POST /api/v1/processes/nonconformance": [Template(report | {"quantity": "2"})],
            "POST /api/v1/processes/capa": [Template(capa | {"nc_process_id": nc})],
            "POST /api/v1/processes/recall": [Template(drill)],
            "POST /api/v1/processes/{process_id}/cancel": [
                Template({"reason": "no longer needed"}, {"process_id": approval})
            ],
            "POST /api/v1/processes/{process_id}/events/{event}": [
                Template(
                    {"promised_on": DUE, "supplier_reference": "SO-1"},
                    {"process_id": purchase, "event": "supplier-confirmed"},
                    who="mes",
                ),
                Template(
                    {"asn_reference": "ASN-1", "expected_on": DUE, "carrier": "DHL"},
                    {"process_id": purchase, "event": "asn"},
                    who="mes",
                ),
                Template(receipt, {"process_id": purchase, "event": "goods-received"}, who="mes"),
                Template(
                    receipt | {"gs1": "(01)09506000134352(11)260101(17)301231(10)NK-9"},
                    {"process_id": purchase, "event": "goods-received"},
                    who="mes",
                ),
                Template(
                    {"consignee_code": "CUS-0001", "acknowledged": True},
                    {"process_id": recall, "event": "consignee-response"},
                    who="mes",
                ),
            ],
            "POST /api/v1/delegations": [
                Template(
                    {
                        "delegate": "bob",
                        "starts_at": datetime.now(UTC).isoformat(),
                        "ends_at": TOMORROW,
                        "reason": "away",
                    }
                )
            ],
            "POST /api/v1/recalls/{key}/widen-scope": [
                Template(
                    {"lots": [tubing], "reason": "widen the fuzz drill"}, {"key": recall}, "carol"
                )
            ],
        },
        identities={
            "admin": await stack.token("admin"),
            "mes": dict(stack.mes),
            "bob": await stack.token("bob"),
            "carol": carol,
        },
    )


async def stuck_workflows(stack: Stack) -> list[str]:
    """Running workflows whose activity keeps failing: a request the API accepted that its
    process cannot carry out (half done, and retried forever)."""
    stuck: list[str] = []
    query = f'TaskQueue="{stack.task_queue}" AND ExecutionStatus="Running"'
    async for execution in stack.temporal.list_workflows(query):
        handle = stack.temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        description = await handle.describe()
        for activity in description.raw_description.pending_activities:
            if activity.attempt >= STUCK_AFTER_ATTEMPTS:
                failure = activity.last_failure.message[:300]
                stuck.append(f"{execution.id}: {activity.activity_type.name} failed: {failure}")
    return stuck


async def test_no_input_breaks_any_operation(stack: Stack) -> None:
    """Every operation, generated and broken requests: never a 500, a trace or a bare error."""
    began = time.monotonic()
    document = (await stack.http.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    loaded = list(schema.get_all_operations())
    assert not [result.err() for result in loaded if isinstance(result, Err)]
    operations = [result.ok() for result in loaded if isinstance(result, Ok)]
    assert len(operations) == sum(len(methods) for methods in document["paths"].values())
    targets = await fuzz_targets(stack)
    bridge = LoopBridge(stack, asyncio.get_running_loop())
    findings = Findings()

    def fuzz_all() -> None:
        for operation in operations:
            fuzz_operation(operation, targets, bridge, findings)

    await asyncio.to_thread(fuzz_all)
    print(
        f"fuzzed {len(operations)} operations, {findings.requests} requests, {time.monotonic() - began:.0f} s"
    )
    for label, statuses in findings.statuses.items():  # what each operation answered (pytest -s)
        print(f"  {label} ({findings.seconds[label]:.1f} s): {dict(sorted(statuses.items()))}")
    assert findings.requests >= len(operations) * EXAMPLES_PER_OPERATION // 2
    assert not findings.problems, "bad answers:\n" + findings.report()
    await asyncio.sleep(RETRY_GRACE)
    stuck = await stuck_workflows(stack)
    assert not stuck, "accepted, then stuck:\n" + "\n".join(stuck)
