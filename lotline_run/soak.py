"""`make soak`: mixed load on a LocalStack with two workers while faults are injected, then a
reconciliation that every process and record exists exactly once.

    python -m lotline_run.soak --minutes 10 --fault-every 120 --clients 4

A bounded number of clients start approval requests (one signed decision, or two of a board)
and purchases (approval, supplier confirmation, ship notice and goods receipt as MES events,
incoming inspection, signed QA release) over REST, each step as the right demo person. Every
few minutes one fault, in rotation: SIGKILL a worker (a replacement starts), restart Temporal,
restart PostgreSQL (fast, then immediate: a crash), SIGKILL the API and start it again.

Clients tolerate the faults the way an integration must: a start or an event that got no answer
(connection refused, 5xx) is sent again with the same Idempotency-Key; a decision, which has no
key, is sent again only after reading the task shows it was not recorded. At the end the clients
finish what they began, and the database is checked: every process a client started exists
exactly once and completed, and no decision, signature, lot, movement or audit row exists twice.
Exit 0 when nothing was lost or duplicated and the audit chain is intact, 1 otherwise.
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus

from erp.audit import verify_chain
from lotline_run.stack import LocalStack
from settings import AUDIT_KEY_ENV

PASSWORD = "lotline-demo"
FAULTS = (
    "kill-worker",
    "restart-temporal",
    "restart-postgres-fast",
    "kill-api",
    "restart-postgres-immediate",
)
REQUEST_PATIENCE = 180.0  # seconds one request is retried through faults before it is given up
STEP_PATIENCE = 240.0  # seconds a client waits for a task or a step to appear
RETRY_STATUSES = {500, 502, 503, 504}
T = TypeVar("T")


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 10.0
    fault_every: float = 120.0
    clients: int = 4
    workers: int = 2
    drain: float = 300.0
    seed: int | None = None
    data_dir: Path | None = None
    report: Path | None = None


@dataclass
class Tally:
    """What the clients did and were told, to reconcile against the database."""

    attempted: dict[str, str] = field(default_factory=dict)  # process id -> kind, once sent
    started: dict[str, str] = field(default_factory=dict)  # ... and answered
    completed: set[str] = field(default_factory=set)
    decisions: set[tuple[str, str, str]] = field(default_factory=set)  # process, step, person
    events: set[tuple[str, str, str]] = field(default_factory=set)  # process, event, key
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    anomalies: list[str] = field(default_factory=list)


class GaveUp(Exception):
    """A request or a wait ran out of patience; the scenario stops, the reconciliation tells."""


# --- requests that live through faults ----------------------------------------------------------


class Caller:
    """One HTTP client for all soak clients, counting every answer by status."""

    def __init__(self, base_url: str, tally: Tally) -> None:
        assert base_url.startswith("http://127.0.0.1:"), "the soak talks to this host only"
        self.http = httpx.AsyncClient(base_url=base_url, timeout=20)
        self.tally = tally
        self.tokens: dict[str, str] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def once(
        self, method: str, path: str, who: str, body: Any = None, **options: Any
    ) -> httpx.Response | None:
        """One attempt; None when no answer came (connection refused or cut, timeout)."""
        headers = await self.headers(who) | options.pop("headers", {})
        try:
            response = await self.http.request(method, path, json=body, headers=headers, **options)
        except httpx.TransportError as err:
            self.tally.requests[type(err).__name__] += 1
            return None
        self.tally.requests[str(response.status_code)] += 1
        if response.status_code == 401 and who != "mes":
            self.tokens.pop(who, None)  # e.g. a login answered as the API died: log in again
        return response

    async def headers(self, who: str) -> dict[str, str]:
        if who == "mes":
            from erp.seed import DEMO_API_KEY

            return {"X-API-Key": DEMO_API_KEY}
        if who not in self.tokens:
            self.tokens[who] = await retry(lambda: self._login(who), f"login of {who}")
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def _login(self, who: str) -> str | None:
        try:
            response = await self.http.post(
                "/api/v1/auth/token", json={"username": who, "password": PASSWORD}
            )
        except httpx.TransportError:
            return None
        self.tally.requests[str(response.status_code)] += 1
        return str(response.json()["access_token"]) if response.status_code == 200 else None


async def retry(
    attempt: Callable[[], Awaitable[T | None]], what: str, patience: float = REQUEST_PATIENCE
) -> T:
    """Call `attempt` until it returns something, with a growing pause; GaveUp after
    `patience` seconds (and at most 400 attempts)."""
    deadline, pause = time.monotonic() + patience, 0.3
    for _ in range(400):
        found = await attempt()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 3.0)
    raise GaveUp(f"gave up on {what} after {patience:.0f} s")


def workflow_id_of(prefix: str, who: str, key: str) -> str:
    """The process id the API derives from the caller and the Idempotency-Key."""
    digest = hashlib.sha256("\x00".join((who, key)).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"


# --- one soak client ----------------------------------------------------------------------------


class Client:
    """Runs scenarios one after another until the deadline; each step as the right person."""

    def __init__(self, number: int, caller: Caller, rng: random.Random) -> None:
        self.number = number
        self.caller = caller
        self.tally = caller.tally
        self.rng = rng
        self.runs = 0

    async def run(self, deadline: float) -> None:
        scenarios = (self.approval, self.approval, self.board, self.purchase)
        while time.monotonic() < deadline:
            self.runs += 1
            scenario = self.rng.choice(scenarios)
            try:
                await scenario(f"soak-{self.number}-{self.runs}")
            except GaveUp as err:
                self.tally.anomalies.append(f"client {self.number}: {err}")

    # --- scenarios

    async def approval(self, key: str) -> None:
        body = {"title": f"Approve {key}", "approver_groups": ["qa"], "sla_hours": 48}
        process = await self.start("approval", "apr", "alice", body | {"reminder_hours": None}, key)
        await self.decide(self.rng.choice(("bob", "carol")), process, "approval", "approve", True)
        await self.finished(process)

    async def board(self, key: str) -> None:
        body = {"title": f"Board {key}", "approver_groups": ["ccb"], "rule": "k_of_n", "k": 2}
        body |= {"signs": False, "sla_hours": 48, "reminder_hours": None}
        process = await self.start("approval", "apr", "alice", body, key)
        for person in self.rng.sample(["carol", "dave", "erin"], 2):
            await self.decide(person, process, "approval", "approve", False)
        await self.finished(process)

    async def purchase(self, key: str) -> None:
        due = (date.today() + timedelta(days=30)).isoformat()
        line = {"part_number": "TB-0150", "quantity": "2000", "unit_price": "0.42"}
        body = {"supplier_code": "SUP-0001", "lines": [line], "due_on": due}
        process = await self.start("purchase", "po", "mes", body, key)
        await self.decide(self.rng.choice(("judy", "frank")), process, "approval", "approve", True)
        soon = (date.today() + timedelta(days=5)).isoformat()
        await self.event(process, "supplier-confirmed", f"{key}-conf", {"promised_on": soon})
        await self.event(process, "asn", f"{key}-asn", {"asn_reference": key, "expected_on": soon})
        goods = {"part_number": "TB-0150", "quantity": "2000", "supplier_lot": key}
        await self.event(process, "goods-received", f"{key}-gr", goods)
        await self.decide("heidi", process, "inspect-1", "pass", False, defects="0")
        await self.decide(self.rng.choice(("bob", "carol")), process, "release-1", "release", True)
        await self.finished(process)

    # --- steps

    async def start(self, kind: str, prefix: str, who: str, body: Any, key: str) -> str:
        """Started once however often it is sent: the same Idempotency-Key each time."""
        expected = workflow_id_of(prefix, who, key)
        self.tally.attempted[expected] = kind

        async def attempt() -> str | None:
            path = f"/api/v1/processes/{kind}"
            response = await self.caller.once(
                "POST", path, who, body, headers={"Idempotency-Key": key}
            )
            if response is None or response.status_code in RETRY_STATUSES:
                return None
            if response.status_code not in (200, 201):
                raise GaveUp(f"start {kind} {key}: {response.status_code} {response.text}")
            return str(response.json()["id"])

        process = await retry(attempt, f"starting {kind} {key}")
        if process != expected:
            self.tally.anomalies.append(f"{key} started as {process}, expected {expected}")
        self.tally.started[process] = kind
        return process

    async def event(self, process: str, name: str, key: str, data: dict[str, str]) -> None:
        """Sent until taken: 404/409 while the process is not at that step yet."""

        async def attempt() -> bool | None:
            path = f"/api/v1/processes/{process}/events/{name}"
            response = await self.caller.once(
                "POST", path, "mes", data, headers={"Idempotency-Key": key}
            )
            if response is None or response.status_code in RETRY_STATUSES | {404, 409}:
                return None
            if response.status_code != 200:
                raise GaveUp(f"{name} for {process}: {response.status_code} {response.text}")
            return True

        await retry(attempt, f"{name} for {process}", STEP_PATIENCE)
        self.tally.events.add((process, name, key))

    async def decide(
        self, who: str, process: str, step: str, outcome: str, signs: bool, **fields: str
    ) -> None:
        """A decision has no Idempotency-Key: after an answer that may hide a success, read the
        task, and send again only when it does not hold this person's decision."""
        task = await self.task_of(who, process, step)
        body = {"outcome": outcome, "fields": fields} | ({"password": PASSWORD} if signs else {})

        async def attempt() -> bool | None:
            response = await self.caller.once("POST", f"/api/v1/tasks/{task}/decision", who, body)
            if response is not None and response.status_code == 200:
                return True
            if response is not None and response.status_code not in RETRY_STATUSES | {409}:
                raise GaveUp(f"{who} on {process}.{step}: {response.status_code} {response.text}")
            return True if await self.recorded(who, task) else None

        await retry(attempt, f"{who} deciding {process}.{step}")
        self.tally.decisions.add((process, step, who))

    async def recorded(self, who: str, task: int) -> bool:
        response = await self.caller.once("GET", f"/api/v1/tasks/{task}", who)
        if response is None or response.status_code != 200:
            return False
        return any(d["decided_by"] == who for d in response.json()["decisions"])

    async def task_of(self, who: str, process: str, step: str) -> int:
        async def attempt() -> int | None:
            params = {"process_id": process, "scope": "all"}
            response = await self.caller.once("GET", "/api/v1/tasks", who, params=params)
            if response is None or response.status_code != 200:
                return None
            found = [t["id"] for t in response.json()["items"] if t["step"] == step]
            return int(found[0]) if found else None

        return await retry(attempt, f"task {step} of {process} for {who}", STEP_PATIENCE)

    async def finished(self, process: str) -> None:
        async def attempt() -> bool | None:
            response = await self.caller.once("GET", f"/api/v1/processes/{process}", "mes")
            if response is None or response.status_code != 200:
                return None
            return True if response.json()["status"] == "completed" else None

        await retry(attempt, f"{process} to complete", STEP_PATIENCE)
        self.tally.completed.add(process)


# --- faults -------------------------------------------------------------------------------------


async def inject(stack: LocalStack, kind: str) -> None:
    """One fault; returns when the stack is whole again (the clients see the outage)."""
    if kind == "kill-worker":
        await stack.kill_worker(stack.workers[0])
        await stack.start_worker()
    elif kind == "restart-temporal":
        await stack.restart_temporal(down_for=2.0)
    elif kind.startswith("restart-postgres"):
        await asyncio.to_thread(stack.stop_postgres, kind.removeprefix("restart-postgres-"))
        await asyncio.sleep(2.0)
        await asyncio.to_thread(stack.start_postgres)
    elif kind == "kill-api":
        await stack.kill_api()
        await asyncio.sleep(1.0)
        await stack.start_api()
    else:
        raise ValueError(f"unknown fault {kind}")


async def faults(stack: LocalStack, every: float, deadline: float, tally: Tally) -> None:
    """A fault every `every` seconds (on a fixed schedule) until the deadline, in the rotation
    of FAULTS."""
    began = time.monotonic()
    for number in range(10_000):
        due = began + (number + 1) * every
        await asyncio.sleep(max(0.0, min(due, deadline) - time.monotonic()))
        if time.monotonic() >= deadline:
            return
        kind = FAULTS[number % len(FAULTS)]
        at = time.monotonic()
        try:
            await inject(stack, kind)
        except Exception as err:  # the stack did not come back: no point injecting more
            tally.anomalies.append(f"fault {kind}: the stack did not recover ({err!r})")
            return
        tally.faults[kind] += 1
        print(
            f"soak: {at - began:4.0f} s  fault {kind} ({time.monotonic() - at:.1f} s to recover)",
            flush=True,
        )


# --- reconciliation -----------------------------------------------------------------------------

DUPLICATES: dict[str, str] = {
    "decision per task and person": "SELECT t.workflow_id || ' by ' || d.decided_by, count(*) "
    "FROM task_decision d JOIN task t ON t.id = d.task_id GROUP BY 1 HAVING count(*) > 1",
    "signature per task, signer and meaning": "SELECT workflow_id || ' ' || signer || ' ' || "
    "meaning, count(*) FROM e_signature GROUP BY 1 HAVING count(*) > 1",
    "signature without its decision": "SELECT 'signature ' || s.id, 1 FROM e_signature s WHERE "
    "NOT EXISTS (SELECT 1 FROM task_decision d WHERE d.signature_id = s.id)",
    "receipt per purchase": "SELECT process_id, count(*) FROM receipt GROUP BY 1 "
    "HAVING count(*) > 1",
    "lot per purchase order line": "SELECT 'line ' || purchase_order_line_id, count(*) FROM lot "
    "WHERE origin = 'receipt' GROUP BY 1 HAVING count(*) > 1",
    "movement per lot and kind": "SELECT 'lot ' || lot_id || ' ' || kind, count(*) FROM "
    "inventory_movement GROUP BY 1 HAVING count(*) > 1",
    "inspection per lot": "SELECT 'lot ' || lot_id, count(*) FROM inspection GROUP BY 1 "
    "HAVING count(*) > 1",
    "audit row per idempotency key": "SELECT idempotency_key, count(*) FROM audit_entry WHERE "
    "idempotency_key IS NOT NULL GROUP BY 1 HAVING count(*) > 1",
    "audit of a decision": "SELECT entity_id || ' by ' || actor, count(*) FROM audit_entry WHERE "
    "action = 'task.decided' GROUP BY 1 HAVING count(*) > 1",
    "audit of a process start": "SELECT entity_id, count(*) FROM audit_entry WHERE action = "
    "'process.started' GROUP BY 1 HAVING count(*) > 1",
}


@dataclass
class Reconciliation:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    audit: str = ""
    audit_ok: bool = False


async def reconcile(stack: LocalStack, tally: Tally) -> Reconciliation:
    found = Reconciliation()
    assert stack.sessions is not None
    async with stack.sessions() as session:
        await _processes(session, tally, found)
        await _records(session, tally, found)
        for what, query in DUPLICATES.items():
            for name, count in (await session.execute(text(query))).all():
                found.duplicated.append(f"{what}: {name} x{count}")
        chain = await verify_chain(session)
    found.audit_ok = chain.ok
    found.audit = (
        f"intact, {chain.rows_checked} rows" if chain.ok else f"BROKEN at {chain.first_broken_id}"
    )
    await _workflows(stack, tally, found)
    return found


async def _processes(session: Any, tally: Tally, found: Reconciliation) -> None:
    rows = dict((await session.execute(text("SELECT id, status FROM process"))).all())
    for process in sorted(tally.started):
        if process not in rows:
            found.lost.append(f"process {process}: started (answered) but not in the database")
        elif rows[process] != "completed":
            found.unfinished.append(f"process {process}: {rows[process]}")
    for process in sorted(set(rows) - set(tally.started)):
        if process in tally.attempted:
            found.unfinished.append(f"process {process}: its start was never answered")
        else:
            found.duplicated.append(f"process {process}: in the database, no client started it")


async def _records(session: Any, tally: Tally, found: Reconciliation) -> None:
    query = "SELECT t.process_id, t.step, d.decided_by FROM task_decision d JOIN task t ON t.id = d.task_id"
    decided = {tuple(row) for row in (await session.execute(text(query))).all()}
    for process, step, who in sorted(tally.decisions - decided):
        found.lost.append(f"decision of {who} on {process}.{step}: answered, not recorded")
    received = {row[0] for row in (await session.execute(text("SELECT process_id FROM receipt")))}
    for process, name, key in sorted(tally.events):
        if name == "goods-received" and process not in received:
            found.lost.append(f"goods receipt {key} of {process}: answered, no receipt row")


async def _workflows(stack: LocalStack, tally: Tally, found: Reconciliation) -> None:
    """Temporal agrees: every started process's workflow completed, no stray one exists."""
    client = await stack.client()
    query = "WorkflowType = 'ApprovalRequest' OR WorkflowType = 'Purchase'"
    seen: Counter[str] = Counter()
    async for listed in client.list_workflows(query):
        seen[listed.id] += 1
        if listed.id not in tally.started:
            if listed.id not in tally.attempted:
                found.duplicated.append(f"workflow {listed.id}: no client started it")
        elif listed.status != WorkflowExecutionStatus.COMPLETED and listed.status is not None:
            found.unfinished.append(f"workflow {listed.id}: {listed.status.name}")
    for process in sorted(tally.started):
        if seen[process] != 1:
            found.lost.append(f"workflow {process}: {seen[process]} runs in Temporal, not 1")


# --- the run ------------------------------------------------------------------------------------


async def soak(config: SoakConfig) -> int:
    seed = config.seed if config.seed is not None else random.randrange(1 << 30)
    own = config.data_dir is None
    data_dir = config.data_dir or Path(tempfile.mkdtemp(prefix="lotline-soak-"))
    tally = Tally()
    began = time.monotonic()
    # one secret audit key for this process and the stack's, whatever the caller's shell holds
    key = secrets.token_hex(32)
    callers_key = os.environ.get(AUDIT_KEY_ENV)
    os.environ[AUDIT_KEY_ENV] = key
    try:
        async with LocalStack(data_dir, env={AUDIT_KEY_ENV: key}) as stack:
            await stack.start(workers=config.workers)
            print(f"soak: stack up in {time.monotonic() - began:.0f} s; seed {seed}", flush=True)
            await drive(stack, config, seed, tally)
            found = await reconcile(stack, tally)
    finally:
        # the key was this soak's alone: leave the process as it was (tests run in one process)
        if callers_key is None:
            os.environ.pop(AUDIT_KEY_ENV, None)
        else:
            os.environ[AUDIT_KEY_ENV] = callers_key
        if own:
            shutil.rmtree(data_dir, ignore_errors=True)
    return report(config, seed, tally, found, time.monotonic() - began)


async def drive(stack: LocalStack, config: SoakConfig, seed: int, tally: Tally) -> None:
    """Load and faults until the deadline, then the clients finish what they began."""
    deadline = time.monotonic() + config.minutes * 60
    caller = Caller(stack.api_url, tally)
    rng = random.Random(seed)
    clients = [Client(n, caller, random.Random(rng.random())) for n in range(config.clients)]
    work = [asyncio.create_task(c.run(deadline)) for c in clients]
    injector = asyncio.create_task(faults(stack, config.fault_every, deadline, tally))
    try:
        await injector
        print("soak: load over, the clients finish what they began", flush=True)
        ended = time.monotonic()
        _, late = await asyncio.wait(work, timeout=config.drain)
        print(f"soak: drained in {time.monotonic() - ended:.0f} s", flush=True)
        for task in late:
            task.cancel()
            tally.anomalies.append(f"a client was still busy {config.drain:.0f} s after the end")
        for task in work:
            if not task.cancelled() and task.exception() is not None:
                tally.anomalies.append(f"a client failed: {task.exception()!r}")
    finally:
        for task in [*work, injector]:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*work, injector, return_exceptions=True)
        await caller.close()


def report(
    config: SoakConfig, seed: int, tally: Tally, found: Reconciliation, seconds: float
) -> int:
    failed = bool(found.lost or found.duplicated or found.unfinished or tally.anomalies)
    failed = failed or not found.audit_ok
    summary = {
        "seed": seed,
        "minutes": config.minutes,
        "seconds": round(seconds),
        "processes_started": len(tally.started),
        "processes_completed": len(tally.completed),
        "started_by_kind": dict(Counter(tally.started.values())),
        "decisions": len(tally.decisions),
        "events": len(tally.events),
        "faults": dict(tally.faults),
        "requests": dict(sorted(tally.requests.items())),
        "lost": found.lost,
        "duplicated": found.duplicated,
        "unfinished": found.unfinished,
        "anomalies": tally.anomalies,
        "audit": found.audit,
        "ok": not failed,
    }
    if config.report is not None:
        config.report.write_text(json.dumps(summary, indent=2))
    _print(summary)
    return 1 if failed else 0


def _print(summary: dict[str, Any]) -> None:
    print("\nsoak result")
    print(
        f"  processes   {summary['processes_started']} started, {summary['processes_completed']} completed {summary['started_by_kind']}"
    )
    print(f"  steps       {summary['decisions']} decisions, {summary['events']} events")
    print(f"  faults      {summary['faults'] or 'none'}")
    print(f"  requests    {summary['requests']}")
    print(f"  audit chain {summary['audit']}")
    for name in ("lost", "duplicated", "unfinished", "anomalies"):
        print(f"  {name:<11} {len(summary[name])}")
        for line in summary[name]:
            print(f"    - {line}")
    print("OK: nothing lost, nothing duplicated" if summary["ok"] else "FAILED (see above)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lotline_run.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument(
        "--fault-every", type=float, default=120.0, help="seconds between faults (default 120)"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--drain",
        type=float,
        default=300.0,
        help="seconds the clients get to finish after the load (default 300)",
    )
    parser.add_argument("--seed", type=int, help="random seed (printed; repeat a run with it)")
    parser.add_argument(
        "--data-dir", type=Path, help="keep the stack here (default: a temporary dir, removed)"
    )
    parser.add_argument("--report", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    config = SoakConfig(
        minutes=args.minutes,
        fault_every=args.fault_every,
        clients=args.clients,
        workers=args.workers,
        drain=args.drain,
        seed=args.seed,
        data_dir=args.data_dir,
        report=args.report,
    )
    return asyncio.run(soak(config))


if __name__ == "__main__":
    sys.exit(main())
