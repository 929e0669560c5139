"""Misuse (issue 7, item 6), on the real stack: who may call what over every route of the API and
the pages, CSRF on every form, session fixation and brute force, security headers, no secret in
any answer or log line, and SQL injection in every filter.

The authorization table (RULES) names, for every route the app serves (enumerated from
app.routes, so a new route without a rule fails `test_every_route_has_a_rule`), who may call it:
each demo person (erp/seed.py), the MES key, and nobody at all. Nothing real is started: an
allowed caller is stopped after the authorization check by data the ERP does not know (422/404),
a record that has ended (409), or does what a claim or release does and is put back. Starting
processes and sending events is the table of tests/api/test_authorization_matrix.py, which
this one reuses for the pages and names as the API's rule (COVERED_BY_THE_START_MATRIX)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.security import open_session
from erp.audit import verify_chain
from erp.master_data import Lot, PurchaseOrder, Supplier
from erp.models import AppUser, Delegation, Process, Task
from erp.passwords import token_digest
from erp.recall import Recall
from erp.seed import DEMO_API_KEY, DEMO_PASSWORD, USERS, seed_demo
from erp.supply import Customer, Shipment
from schemas.human_task import Candidates, OutcomeSpec, TaskKind, TaskSpec
from settings import Settings
from tests.api.conftest import Stack
from tests.api.test_authorization_matrix import CASES as START_CASES
from tests.ui.conftest import Page, Site
from worker import build_worker

PEOPLE = tuple(user[0] for user in USERS)
EVERYONE = frozenset(PEOPLE)
MES = "mes"
ANONYMOUS = "anonymous"


def members(*groups: str) -> frozenset[str]:
    """The demo people in any of `groups` (memberships as erp/seed.py loads them)."""
    return frozenset(name for name, _, _, of in USERS if set(of) & set(groups))


AUDIT_READERS = members("admin", "qa", "qa-manager", "quality-director", "ra")
RECALL_STARTERS = members("qa-manager", "quality-director", "ra", "admin")
DRILL_STARTERS = RECALL_STARTERS | members("qa")
CAPA_STARTERS = members("qa", "qa-manager", "quality-director", "admin")
# the approval task of the world below: candidates qa, initiated by alice
TASK_CANDIDATES = members("qa")
TASK_VIEWERS = TASK_CANDIDATES | {"alice", "admin"} | AUDIT_READERS
START_ALLOWED = {case.name: case.allowed for case in START_CASES}
COVERED_BY_THE_START_MATRIX = {
    ("POST", "/api/v1/processes/approval"),
    ("POST", "/api/v1/processes/change-control"),
    ("POST", "/api/v1/processes/purchase"),
    ("POST", "/api/v1/processes/work-order"),
    ("POST", "/api/v1/processes/shipment"),
    ("POST", "/api/v1/processes/procure-to-deliver"),
    ("POST", "/api/v1/processes/nonconformance"),
    ("POST", "/api/v1/processes/capa"),
    ("POST", "/api/v1/processes/recall"),
    ("POST", "/api/v1/processes/{process_id}/events/{event}"),
    ("POST", "/api/v1/recalls/{key}/widen-scope"),
}
STATIC_MOUNTS = {"/static", "/docs-assets"}
DUE = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
NO_SUCH_ID = 2_147_483_647  # the largest id a path accepts: no row has it


# ---------------------------------------------------------------- the routes the app serves


def served_routes() -> set[tuple[str, str]]:
    """(method, path) of every route, API and pages, as the app has them."""
    app = create_app(Settings(database_url="postgresql+psycopg://unused/unused"))
    routes: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            routes.add((method, str(route.path)))
        if not route.methods:
            routes.add(("MOUNT", str(route.path)))
    return routes


# ---------------------------------------------------------------- the world the table runs in


@dataclass
class World:
    """The records the table names, and every caller's credentials."""

    values: dict[str, str]
    bearer: dict[str, dict[str, str]]
    ui: dict[str, tuple[str, str]]  # person → (session token, csrf token)


def approval_spec(step: str) -> dict[str, Any]:
    return TaskSpec(
        step=step,
        kind=TaskKind.APPROVE,
        title="Authorization table",
        process_kind="approval",
        process_id="ap-authz",
        business_key="ap-authz",
        initiator="alice",
        candidates=Candidates(groups=["qa"]),
        outcomes=[OutcomeSpec(name="approve", label="Approve")],
    ).model_dump(mode="json")


def task_row(step: str, *, claimed_by: str | None = None) -> Task:
    return Task(
        workflow_id=f"ap-authz.{step}",
        run_id="authz",
        process_id="ap-authz",
        process_kind="approval",
        step=step,
        kind="approve",
        title="Authorization table",
        business_key="ap-authz",
        initiator="alice",
        excluded_users=[],
        candidate_groups=["qa"],
        candidate_users=[],
        rule="any",
        spec=approval_spec(step),
        claimed_by=claimed_by,
    )


async def make_world(site: Site) -> World:
    """Ended processes with their business records, two open tasks (one claimed by bob), a
    revoked delegation of alice's, and a bearer token and a page session for everyone."""
    async with site.sessions() as session, session.begin():
        users = {u.username: u for u in await session.scalars(select(AppUser))}
        for pid, kind, status in (
            ("ap-authz", "approval", "completed"),
            ("po-authz-ended", "purchase", "completed"),
            ("sh-authz-ended", "shipment", "completed"),
            ("rcl-authz-ended", "recall", "closed"),
        ):
            session.add(
                Process(
                    id=pid,
                    run_id="authz",
                    kind=kind,
                    title="ended before the table",
                    business_key=pid,
                    initiator="alice",
                    status=status,
                )
            )
        open_task, claimed = task_row("approve"), task_row("second", claimed_by="bob")
        session.add_all([open_task, claimed])
        po = await session.scalar(select(PurchaseOrder).order_by(PurchaseOrder.id).limit(1))
        assert po is not None
        po.process_id = "po-authz-ended"
        customer = await session.scalar(select(Customer).order_by(Customer.id).limit(1))
        assert customer is not None
        session.add(
            Shipment(number="SH-AUTHZ-1", process_id="sh-authz-ended", customer_id=customer.id)
        )
        session.add(
            Recall(
                number="RCL-AUTHZ-1",
                process_id="rcl-authz-ended",
                reason="authorization table",
                source="ui",
                requested_by="carol",
                status="closed",
            )
        )
        now = datetime.now(UTC)
        delegation = Delegation(
            delegator_id=users["alice"].id,
            delegate_id=users["ivan"].id,
            starts_at=now - timedelta(days=2),
            ends_at=now + timedelta(days=2),
            created_by_id=users["alice"].id,
            revoked_at=now - timedelta(days=1),
        )
        session.add(delegation)
        await session.flush()
        lot = await session.scalar(select(Lot.lot_number).order_by(Lot.id).limit(1))
        supplier = await session.scalar(select(Supplier.code).order_by(Supplier.id).limit(1))
        values = {
            "task": str(open_task.id),
            "claimed": str(claimed.id),
            "delegation": str(delegation.id),
            "lot": quote(str(lot), safe=""),
            "supplier": str(supplier),
        }
        bearer = {MES: {"X-API-Key": DEMO_API_KEY}, ANONYMOUS: {}}
        ui: dict[str, tuple[str, str]] = {}
        for person in PEOPLE:
            token, _ = await open_session(session, users[person], kind="bearer", hours=1)
            bearer[person] = {"Authorization": f"Bearer {token}"}
            cookie, row = await open_session(session, users[person], kind="ui", hours=1)
            ui[person] = (cookie, row.csrf_token)
    return World(values=values, bearer=bearer, ui=ui)


# ---------------------------------------------------------------- the table


Reset = Callable[[Site, World], Awaitable[None]]


async def unclaim(site: Site, world: World) -> None:
    async with site.sessions() as session, session.begin():
        await session.execute(
            update(Task).where(Task.id == int(world.values["task"])).values(claimed_by=None)
        )


async def reclaim(site: Site, world: World) -> None:
    async with site.sessions() as session, session.begin():
        await session.execute(
            update(Task).where(Task.id == int(world.values["claimed"])).values(claimed_by="bob")
        )


@dataclass(frozen=True)
class Rule:
    """Who may call one route, and how to call it so that nothing real happens."""

    method: str
    path: str  # as the app declares it
    url: str  # with the world's values: {task}, {claimed}, {delegation}, {lot}, {supplier}
    allowed: frozenset[str]  # people and "mes"; "public" routes use PUBLIC
    ok: frozenset[int]  # what an allowed caller gets
    body: Mapping[str, Any] | None = None  # JSON for the API, the form for the pages
    reset: Reset | None = None  # after an allowed call that changed something
    fresh_session: bool = False  # the call ends the session (logout): one of its own

    @property
    def page(self) -> bool:
        return not (self.path.startswith("/api/") or self.path == "/metrics")


PUBLIC = frozenset({"public"})


def api(
    method: str,
    path: str,
    allowed: frozenset[str],
    ok: int | set[int] = 200,
    *,
    url: str | None = None,
    body: Mapping[str, Any] | None = None,
    reset: Reset | None = None,
    fresh_session: bool = False,
) -> Rule:
    statuses = frozenset({ok} if isinstance(ok, int) else ok)
    return Rule(method, path, url or path, allowed, statuses, body, reset, fresh_session)


page = api  # the same shape; Rule.page tells them apart by path
ALL = EVERYONE | {MES}
DELEGATION = {"delegate": "no-such-person", "starts_at": "2030-01-01T08:00:00Z"} | {
    "ends_at": "2030-01-08T08:00:00Z"
}
SUPPLY_FORMS = {
    "purchase": {
        "supplier_code": "NO-SUCH-SUPPLIER",
        "line_1_part": "NO-SUCH-PART",
        "line_1_quantity": "1",
        "line_1_unit_price": "1",
        "due_on": DUE,
    },
    "work-order": {"part_number": "NO-SUCH-PART", "quantity": "1", "due_on": DUE},
    "shipment": {
        "customer_code": "NO-SUCH-CUSTOMER",
        "line_1_part": "NO-SUCH-PART",
        "line_1_quantity": "1",
    },
    "procure-to-deliver": {
        "customer_code": "NO-SUCH-CUSTOMER",
        "part_number": "NO-SUCH-PART",
        "quantity": "1",
        "due_on": DUE,
    },
}
SUPPLY_PATHS = {
    "purchase": "/purchases",
    "work-order": "/work-orders",
    "shipment": "/shipments",
    "procure-to-deliver": "/orders",
}
ENDED_PROCESS = {
    "purchase": "po-authz-ended",
    "work-order": "wo-no-such",
    "shipment": "sh-authz-ended",
    "procure-to-deliver": "co-no-such",
}


def starters(kind: str) -> frozenset[str]:
    """Who may start `kind`: the start matrix's rule, people only on the pages."""
    return START_ALLOWED[kind] - {MES}


API_RULES = [
    api("POST", "/api/v1/auth/logout", ALL, 204, fresh_session=True),
    api("GET", "/api/v1/me", ALL),
    api("GET", "/metrics", frozenset({"admin"})),
    api("GET", "/api/v1/tasks", ALL),
    api(
        "GET",
        "/api/v1/tasks",
        frozenset({"admin", MES}),
        url="/api/v1/tasks?scope=everything",
    ),
    api("GET", "/api/v1/tasks/{task_id}", TASK_VIEWERS | {MES}, url="/api/v1/tasks/{task}"),
    api(
        "POST",
        "/api/v1/tasks/{task_id}/claim",
        TASK_CANDIDATES,
        url="/api/v1/tasks/{task}/claim",
        reset=unclaim,
    ),
    api(
        "POST",
        "/api/v1/tasks/{task_id}/release",
        frozenset({"bob", "admin"}),
        url="/api/v1/tasks/{claimed}/release",
        reset=reclaim,
    ),
    api(
        "POST",
        "/api/v1/tasks/{task_id}/decision",
        TASK_CANDIDATES,
        422,
        url="/api/v1/tasks/{task}/decision",
        body={"outcome": "no_such_outcome"},
    ),
    api("POST", "/api/v1/processes/{kind}", ALL, 404, url="/api/v1/processes/no-such-kind"),
    api("GET", "/api/v1/processes", ALL),
    api("GET", "/api/v1/processes/{process_id}", ALL, url="/api/v1/processes/ap-authz"),
    api(
        "POST",
        "/api/v1/processes/{process_id}/cancel",
        frozenset({"alice", "admin"}),
        409,
        url="/api/v1/processes/ap-authz/cancel",
        body={"reason": "authorization table"},
    ),
    api("GET", "/api/v1/changes", ALL),
    api("GET", "/api/v1/changes/{key}", ALL, 404, url="/api/v1/changes/CR-NO-SUCH"),
    api("GET", "/api/v1/audit", AUDIT_READERS),
    api("GET", "/api/v1/audit/verify", AUDIT_READERS),
    api("GET", "/api/v1/delegations", ALL),
    api("POST", "/api/v1/delegations", EVERYONE, 422, body=DELEGATION),
    api(
        "POST",
        "/api/v1/delegations",
        frozenset({"alice", "admin"}),
        422,
        body=DELEGATION | {"delegator": "alice"},
    ),
    api(
        "DELETE",
        "/api/v1/delegations/{delegation_id}",
        frozenset({"alice", "admin"}),
        409,
        url="/api/v1/delegations/{delegation}",
    ),
    api("GET", "/api/v1/users", frozenset({"admin"})),
    api(
        "POST",
        "/api/v1/users/{username}/unlock",
        frozenset({"admin"}),
        404,
        url="/api/v1/users/no-such-person/unlock",
    ),
    api("GET", "/api/v1/lots", ALL),
    api("GET", "/api/v1/lots/{lot}", ALL, url="/api/v1/lots/{lot}"),
    api("GET", "/api/v1/lots/{lot}/trace", ALL, url="/api/v1/lots/{lot}/trace"),
    api("GET", "/api/v1/suppliers", ALL),
    api("GET", "/api/v1/suppliers/{code}", ALL, url="/api/v1/suppliers/{supplier}"),
    api("GET", "/api/v1/customers", ALL),
    api("GET", "/api/v1/nonconformances", ALL),
    api("GET", "/api/v1/nonconformances/{key}", ALL, 404, url="/api/v1/nonconformances/NC-X"),
    api("GET", "/api/v1/capas", ALL),
    api("GET", "/api/v1/capa-actions", ALL),
    api("GET", "/api/v1/capas/{key}", ALL, 404, url="/api/v1/capas/CAPA-NO-SUCH"),
    api("GET", "/api/v1/recalls", ALL),
    api("GET", "/api/v1/recalls/{key}", ALL, url="/api/v1/recalls/rcl-authz-ended"),
    api(
        "GET",
        "/api/v1/recalls/{key}/scope-versions",
        ALL,
        url="/api/v1/recalls/rcl-authz-ended/scope-versions",
    ),
    api(
        "GET", "/api/v1/recalls/{key}/report.pdf", ALL, url="/api/v1/recalls/RCL-AUTHZ-1/report.pdf"
    ),
    # reports: whoever may read the record; producing one is audited (report.produced)
    api(
        "GET",
        "/api/v1/reports/audit-trail",
        AUDIT_READERS,
        url="/api/v1/reports/audit-trail?process_id=ap-authz&format=csv",
    ),
    api(
        "GET",
        "/api/v1/reports/signatures/{key}",
        ALL,
        404,
        url="/api/v1/reports/signatures/ap-authz",
    ),
    api(
        "GET",
        "/api/v1/reports/device-history/{lot}",
        ALL,
        {200, 422},  # 422: the first lot was received, not made here
        url="/api/v1/reports/device-history/{lot}?format=csv",
    ),
    api("GET", "/api/v1/reports/genealogy/{lot}", ALL, url="/api/v1/reports/genealogy/{lot}"),
    api("GET", "/api/v1/reports/capa/{key}", ALL, 404, url="/api/v1/reports/capa/CAPA-NO-SUCH"),
    api("GET", "/api/v1/reports/recall/{key}", ALL, url="/api/v1/reports/recall/RCL-AUTHZ-1"),
    api(
        "POST",
        "/api/v1/nonconformances/{key}/recall",
        RECALL_STARTERS | {MES},
        404,
        url="/api/v1/nonconformances/NC-NO-SUCH/recall",
    ),
    # webhooks: administrators (people), or keys with webhooks:manage (the MES key has not)
    api("GET", "/api/v1/webhooks", frozenset({"admin"})),
    api(
        "POST",
        "/api/v1/webhooks",
        frozenset({"admin"}),
        422,  # a valid body whose URL is not http(s): refused after the authorization check
        body={"url": "ftp://hooks.invalid/authz", "event_types": ["*"]},
    ),
    api(
        "DELETE",
        "/api/v1/webhooks/{subscription_id}",
        frozenset({"admin"}),
        404,
        url=f"/api/v1/webhooks/{NO_SUCH_ID}",
    ),
    api(
        "GET",
        "/api/v1/webhooks/{subscription_id}/deliveries",
        frozenset({"admin"}),
        404,
        url=f"/api/v1/webhooks/{NO_SUCH_ID}/deliveries",
    ),
    # retrying a failed delivery: the same callers; an unknown id is refused after the check
    api(
        "POST",
        "/api/v1/outbox/{outbox_id}/retry",
        frozenset({"admin"}),
        404,
        url=f"/api/v1/outbox/{NO_SUCH_ID}/retry",
    ),
    api(
        "POST",
        "/api/v1/webhooks/deliveries/{delivery_id}/retry",
        frozenset({"admin"}),
        404,
        url=f"/api/v1/webhooks/deliveries/{NO_SUCH_ID}/retry",
    ),
    api("GET", "/api/v1/dashboard", EVERYONE),  # a key needs dashboard:read (the MES key has not)
    api("GET", "/api/v1/users/me", ALL),
    # a person's own language, set to the one already stored (the seed's "en"): nothing changes
    api("PUT", "/api/v1/users/me/locale", EVERYONE, body={"locale": "en"}),
]

PAGE_RULES = [
    page("POST", "/logout", EVERYONE, 303, fresh_session=True),
    page("GET", "/", EVERYONE),
    page("GET", "/tasks/{task_id}", TASK_VIEWERS, url="/tasks/{task}"),
    page(
        "POST",
        "/tasks/{task_id}/claim",
        TASK_CANDIDATES,
        303,
        url="/tasks/{task}/claim",
        reset=unclaim,
    ),
    page(
        "POST",
        "/tasks/{task_id}/release",
        frozenset({"bob", "admin"}),
        303,
        url="/tasks/{claimed}/release",
        reset=reclaim,
    ),
    page(
        "POST",
        "/tasks/{task_id}/decision",
        TASK_CANDIDATES,
        422,
        url="/tasks/{task}/decision",
        body={"outcome": "no_such_outcome"},
    ),
    page("GET", "/processes", EVERYONE),
    page("GET", "/processes/new", EVERYONE),
    page(
        "POST",
        "/processes/new",
        EVERYONE,
        422,
        body={"title": "Authorization table", "approver_groups": "no-such-group"},
    ),
    page("GET", "/processes/{process_id}", EVERYONE, url="/processes/ap-authz"),
    page(
        "POST",
        "/processes/{process_id}/cancel",
        frozenset({"alice", "admin"}),
        409,
        url="/processes/ap-authz/cancel",
        body={"reason": "authorization table"},
    ),
    page("GET", "/changes", EVERYONE),
    page("GET", "/changes/new", EVERYONE),
    page("POST", "/changes/new", EVERYONE, 422, body={"title": "Authorization table"}),
    page("GET", "/changes/{key}", EVERYONE, 404, url="/changes/CR-NO-SUCH"),
    page("GET", "/delegations", EVERYONE),
    page(
        "POST",
        "/delegations",
        EVERYONE,
        422,
        body={"delegate": "no-such-person", "starts_at": "2030-01-01T08:00"}
        | {"ends_at": "2030-01-08T08:00"},
    ),
    page(
        "POST",
        "/delegations/{delegation_id}/revoke",
        frozenset({"alice", "admin"}),
        409,
        url="/delegations/{delegation}/revoke",
    ),
    page("GET", "/audit", AUDIT_READERS),
    page("GET", "/audit", AUDIT_READERS, url="/audit?verify=1"),
    page("GET", "/supply", EVERYONE),
    *(page("GET", f"{path}/new", starters(kind)) for kind, path in SUPPLY_PATHS.items()),
    *(
        page("POST", f"{path}/new", starters(kind), 422, body=SUPPLY_FORMS[kind])
        for kind, path in SUPPLY_PATHS.items()
    ),
    *(
        page(
            "GET",
            f"{path}/{{process_id}}/progress",
            EVERYONE,
            200 if ENDED_PROCESS[kind].endswith("ended") else 404,
            url=f"{path}/{ENDED_PROCESS[kind]}/progress",
        )
        for kind, path in SUPPLY_PATHS.items()
    ),
    *(
        page(
            "GET",
            f"{path}/{{process_id}}",
            EVERYONE,
            200 if ENDED_PROCESS[kind].endswith("ended") else 404,
            url=f"{path}/{ENDED_PROCESS[kind]}",
        )
        for kind, path in SUPPLY_PATHS.items()
    ),
    *(
        page(
            "POST",
            "/purchases/{process_id}/events/{event}",
            starters_of_event,
            409,
            url=f"/purchases/po-authz-ended/events/{event}",
        )
        for event, starters_of_event in (
            ("supplier-confirmed", START_ALLOWED["purchase-supplier-confirmed"] - {MES}),
            ("asn", START_ALLOWED["purchase-asn"] - {MES}),
            ("goods-received", START_ALLOWED["purchase-goods-received"] - {MES}),
        )
    ),
    page(
        "POST",
        "/shipments/{process_id}/events/{event}",
        START_ALLOWED["shipment-delivered"] - {MES},
        409,
        url="/shipments/sh-authz-ended/events/delivered",
    ),
    page("GET", "/lots", EVERYONE),
    page("GET", "/lots/{lot_number}", EVERYONE, url="/lots/{lot}"),
    page("GET", "/suppliers", EVERYONE),
    page("GET", "/suppliers/{code}", EVERYONE, url="/suppliers/{supplier}"),
    page("GET", "/nonconformances", EVERYONE),
    page("GET", "/nonconformances/new", EVERYONE),
    page(
        "POST",
        "/nonconformances/new",
        EVERYONE,
        422,
        body={
            "source": "in_process",
            "severity": "minor",
            "title": "Authorization table",
            "description": "authorization table",
            "lots": "NO-SUCH-LOT",
        },
    ),
    page("GET", "/nonconformances/{key}", EVERYONE, 404, url="/nonconformances/nc-no-such"),
    page(
        "GET",
        "/nonconformances/{key}/progress",
        EVERYONE,
        404,
        url="/nonconformances/nc-no-such/progress",
    ),
    page(
        "POST",
        "/nonconformances/{key}/recall",
        RECALL_STARTERS,
        404,
        url="/nonconformances/NC-NO-SUCH/recall",
    ),
    page("GET", "/capas", EVERYONE),
    page("GET", "/capas/new", CAPA_STARTERS),
    page(
        "POST",
        "/capas/new",
        CAPA_STARTERS,
        422,
        body={
            "title": "Authorization table",
            "problem_statement": "authorization table",
            "owner": "no-such-person",
        },
    ),
    page("GET", "/capas/{key}", EVERYONE, 404, url="/capas/capa-no-such"),
    page("GET", "/capas/{key}/progress", EVERYONE, 404, url="/capas/capa-no-such/progress"),
    page("GET", "/trace", EVERYONE),
    page("GET", "/recalls", EVERYONE),
    page("GET", "/recalls/new", DRILL_STARTERS),
    page(
        "POST",
        "/recalls/new",
        RECALL_STARTERS,
        422,
        body={"suspect_lots": "NO-SUCH-LOT", "reason": "authorization table"},
    ),
    page(
        "POST",
        "/recalls/new",
        DRILL_STARTERS,
        422,
        body={"suspect_lots": "NO-SUCH-LOT", "reason": "authorization table", "drill": "on"},
    ),
    page("GET", "/recalls/{key}", EVERYONE, url="/recalls/rcl-authz-ended"),
    page("GET", "/recalls/{key}/progress", EVERYONE, url="/recalls/rcl-authz-ended/progress"),
    page(
        "POST",
        "/recalls/{key}/widen-scope",
        members("qa-manager", "ra"),
        422,
        url="/recalls/rcl-authz-ended/widen-scope",
        body={"lots": "NO-SUCH-LOT", "reason": "authorization table"},
    ),
    page("GET", "/recalls/{key}/report.pdf", EVERYONE, url="/recalls/RCL-AUTHZ-1/report.pdf"),
    page("GET", "/reports", EVERYONE),
    page(
        "GET",
        "/reports/audit-trail",
        AUDIT_READERS,
        url="/reports/audit-trail?process_id=ap-authz&format=csv",
    ),
    page("GET", "/reports/signatures/{key}", EVERYONE, 404, url="/reports/signatures/ap-authz"),
    page(
        "GET",
        "/reports/device-history/{lot:path}",
        EVERYONE,
        {200, 422},
        url="/reports/device-history/{lot}?format=csv",
    ),
    page("GET", "/reports/genealogy/{lot:path}", EVERYONE, url="/reports/genealogy/{lot}"),
    page("GET", "/reports/capa/{key}", EVERYONE, 404, url="/reports/capa/CAPA-NO-SUCH"),
    page("GET", "/reports/recall/{key}", EVERYONE, url="/reports/recall/RCL-AUTHZ-1"),
    page("GET", "/reports/lot", EVERYONE, 422, url="/reports/lot?kind=genealogy"),
    page("GET", "/dashboard", EVERYONE),
    page("GET", "/mailbox", EVERYONE),
    page(
        "POST",
        "/mailbox/outbox/{outbox_id}/retry",
        frozenset({"admin"}),
        404,
        url=f"/mailbox/outbox/{NO_SUCH_ID}/retry",
    ),
    page("GET", "/settings", EVERYONE),
    # the language already stored (the seed's "en"): saved, nothing changes
    page("POST", "/settings", EVERYONE, 303, body={"locale": "en"}),
    page("POST", "/settings", EVERYONE, 422, body={"locale": "no-such-language"}),
]
PUBLIC_ROUTES = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/login"),
    ("POST", "/login"),  # test_login_* below
    ("POST", "/api/v1/auth/token"),  # tests/api/test_auth_and_ops.py and test_login_* below
    *(("MOUNT", mount) for mount in STATIC_MOUNTS),
}
RULES = API_RULES + PAGE_RULES


def test_every_route_has_a_rule() -> None:
    """A route added without a rule here (or in the start matrix) fails this test."""
    served = served_routes()
    ruled = {(r.method, r.path) for r in RULES} | COVERED_BY_THE_START_MATRIX | PUBLIC_ROUTES
    assert served - ruled == set(), f"routes without an authorization rule: {served - ruled}"
    assert ruled - served == set(), f"rules for routes the app does not serve: {ruled - served}"
    assert {(r.method, r.path) for r in RULES}.isdisjoint(PUBLIC_ROUTES)


# ---------------------------------------------------------------- running the table


SNAPSHOT_TABLES = (
    "process",
    "task",
    "task_decision",
    "e_signature",
    "delegation",
    "app_user",
    "api_key",
    "user_session",
    "outbox",
    "purchase_order",
    "shipment",
    "recall",
    "nonconformance",
    "capa",
    "change_request",
    "lot",
    "webhook_subscription",
)


async def snapshot(site: Site) -> dict[str, str]:
    """A digest of every row of the tables a write could touch; audit rows except refusals
    (a refused attempt is audited by design, with outcome 'refused') and produced reports
    (reading a report is audited by design, `report.produced`)."""
    digests: dict[str, str] = {}
    async with site.sessions() as session:
        for table in SNAPSHOT_TABLES:
            digests[table] = str(
                await session.scalar(
                    text(
                        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                        f" FROM {table} t"
                    )
                )
            )
        digests["audit_entry"] = str(
            await session.scalar(
                text(
                    "SELECT count(*) FROM audit_entry"
                    " WHERE outcome <> 'refused' AND action <> 'report.produced'"
                )
            )
        )
    return digests


@dataclass
class Caller:
    """One caller's way in: API credentials, or a page session with its CSRF token."""

    name: str
    headers: dict[str, str] = field(default_factory=dict)
    csrf: str = ""


async def fresh_caller(site: Site, name: str, rule: Rule) -> Caller:
    async with site.sessions() as session, session.begin():
        user = await session.scalar(select(AppUser).where(AppUser.username == name))
        assert user is not None
        token, row = await open_session(
            session, user, kind="ui" if rule.page else "bearer", hours=1
        )
    if rule.page:
        return Caller(name, {"Cookie": f"lotline_session={token}"}, row.csrf_token)
    return Caller(name, {"Authorization": f"Bearer {token}"})


async def caller(site: Site, world: World, name: str, rule: Rule) -> Caller:
    if name == ANONYMOUS:
        return Caller(name)
    if rule.fresh_session and name != MES:
        return await fresh_caller(site, name, rule)
    if rule.page:
        token, csrf = world.ui[name]
        return Caller(name, {"Cookie": f"lotline_session={token}"}, csrf)
    return Caller(name, world.bearer[name])


async def call(http: httpx.AsyncClient, world: World, rule: Rule, who: Caller) -> httpx.Response:
    url = rule.url.format(**world.values)
    http.cookies.clear()
    if not rule.page:
        body = dict(rule.body) if rule.body is not None else ({} if rule.method == "POST" else None)
        return await http.request(rule.method, url, json=body, headers=who.headers)
    if rule.method == "GET":
        return await http.get(url, headers=who.headers)
    form = dict(rule.body or {}) | ({"csrf_token": who.csrf} if who.csrf else {})
    return await http.request(rule.method, url, data=form, headers=who.headers)


def message_of(response: httpx.Response, page_: bool) -> str:
    """The refusal's words: the JSON detail, or the page's alert."""
    if not page_:
        try:
            body = response.json()
        except ValueError:
            return ""
        return str(body.get("detail") or "") if isinstance(body, dict) else ""
    found = re.search(r'role="alert"[^>]*>\s*([^<]+)', response.text)
    return found.group(1).strip() if found else ""


def judge(rule: Rule, who: str, response: httpx.Response) -> str:
    """'' when the answer is what the table says, else what was wrong."""
    status, message = response.status_code, message_of(response, rule.page)
    where = f"{rule.method} {rule.url} as {who}"
    if who == ANONYMOUS:
        if rule.page and status == 303 and response.headers["location"].startswith("/login"):
            return ""
        if not rule.page and status == 401 and message:
            return ""
        return f"{where}: {status} without credentials"
    if who in rule.allowed:
        return "" if status in rule.ok else f"{where}: allowed, but {status} {message[:120]}"
    if status == 403 and message:
        return ""
    return f"{where}: forbidden, but {status} {message[:120]!r}"


async def run_rules(site: Site, rules: list[Rule], callers: tuple[str, ...]) -> list[str]:
    """Each rule: the forbidden callers first (nothing may change), then the allowed ones."""
    world = await make_world(site)
    http = site.api.http
    wrong: list[str] = []
    for rule in rules:
        forbidden = [c for c in callers if c not in rule.allowed]
        before = await snapshot(site)
        for name in forbidden:
            who = await caller(site, world, name, rule)
            wrong.append(judge(rule, name, await call(http, world, rule, who)))
        after = await snapshot(site)
        changed = sorted(t for t in before if before[t] != after[t] and t != "user_session")
        if changed:
            wrong.append(f"{rule.method} {rule.url}: a refused call changed {changed}")
        for name in (c for c in callers if c in rule.allowed):
            who = await caller(site, world, name, rule)
            wrong.append(judge(rule, name, await call(http, world, rule, who)))
            if rule.reset is not None:
                await rule.reset(site, world)
    return [w for w in wrong if w]


async def test_every_api_route_answers_each_role_as_the_table_says(site: Site) -> None:
    wrong = await run_rules(site, API_RULES, (*PEOPLE, MES, ANONYMOUS))
    assert not wrong, "\n".join(wrong)
    started = await site.api.temporal.count_workflows(f"TaskQueue = '{site.api.task_queue}'")
    assert started.count == 0


async def test_every_page_answers_each_role_as_the_table_says(site: Site) -> None:
    wrong = await run_rules(site, PAGE_RULES, (*PEOPLE, ANONYMOUS))
    assert not wrong, "\n".join(wrong)
    started = await site.api.temporal.count_workflows(f"TaskQueue = '{site.api.task_queue}'")
    assert started.count == 0


# ---------------------------------------------------------------- B. CSRF on every form


def page_posts() -> list[tuple[str, str]]:
    """Every POST route of the pages, as the app serves them (the login form is apart)."""
    return sorted(
        (m, p)
        for m, p in served_routes()
        if m == "POST" and not p.startswith("/api/") and p != "/login"
    )


async def test_every_form_refuses_a_post_without_its_csrf_token(site: Site) -> None:
    """Logged in through the login form (a real cookie), each form posted with no token, a
    wrong one and another person's: 403 with the page's message, nothing changed, nothing
    audited. The same post with the right token then gets past the check (the table above)."""
    world = await make_world(site)
    browsers: dict[str, Any] = {}
    rules = {(r.method, r.path): r for r in reversed(PAGE_RULES) if r.method == "POST"}
    assert set(page_posts()) == set(rules), "a form without a rule in PAGE_RULES"
    other = await site.as_user("heidi")
    wrong: list[str] = []
    for method, path in page_posts():
        rule = rules[(method, path)]
        person = sorted(rule.allowed)[0]
        if person not in browsers:
            browsers[person] = await site.as_user(person)
        browser = browsers[person]
        url = rule.url.format(**world.values)
        before = await snapshot(site)
        audit_before = await audit_count(site)
        for token in ("", "not-the-token", other.csrf):
            answer = await browser.post(url, dict(rule.body or {}), csrf=token)
            shown = message_of(answer, True)
            if answer.status_code != 403 or "did not come from this site" not in shown:
                wrong.append(f"{path} with token {token[:8]!r}: {answer.status_code} {shown!r}")
        if await snapshot(site) != before or await audit_count(site) != audit_before:
            wrong.append(f"{path}: a post without the right token changed something")
        if rule.fresh_session:
            continue  # logging out with the right token ends this browser's session
        passed = await browser.post(url, dict(rule.body or {}))
        if passed.status_code not in rule.ok:
            wrong.append(f"{path} with the right token: {passed.status_code}")
        if rule.reset is not None:
            await rule.reset(site, world)
    assert not wrong, "\n".join(wrong)
    assert (await browsers["admin"].get("/")).status_code == 200  # still logged in


async def audit_count(site: Site) -> int:
    async with site.sessions() as session:
        return int(await session.scalar(text("SELECT count(*) FROM audit_entry")) or 0)


async def test_the_login_form_needs_its_double_submit_cookie(site: Site) -> None:
    browser = await site.browser()
    form = await browser.get("/login")
    cookie = browser.http.cookies["lotline_login_csrf"]
    assert f'name="csrf_token" value="{cookie}"' in form.text
    set_cookie = form.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    credentials = {"username": "bob", "password": "lotline-demo"}
    audit_before = await audit_count(site)

    stranger = await site.browser()  # a form token from another browser's login page
    theirs = await stranger.get("/login")
    attempts = {
        "no cookie, no token": ({}, ""),
        "no cookie": ({}, cookie),
        "cookie, no token": ({"lotline_login_csrf": cookie}, ""),
        "cookie and a wrong token": ({"lotline_login_csrf": cookie}, "forged"),
        "another browser's token": (
            {"lotline_login_csrf": cookie},
            stranger.http.cookies["lotline_login_csrf"],
        ),
    }
    assert theirs.status_code == 200
    for what, (cookies, token) in attempts.items():
        attacker = await site.browser()
        for name, value in cookies.items():
            attacker.http.cookies.set(name, value)
        answer = await attacker.http.post("/login", data=credentials | {"csrf_token": token})
        assert answer.status_code == 403, what
        assert "login form expired" in message_of(answer, True), what
        assert "lotline_session" not in attacker.http.cookies, what
    assert await audit_count(site) == audit_before  # refused before the password is looked at

    answer = await browser.http.post("/login", data=credentials | {"csrf_token": cookie})
    assert answer.status_code == 303 and "lotline_session" in browser.http.cookies
    assert "lotline_login_csrf" not in browser.http.cookies  # used once, then dropped


# ---------------------------------------------------------------- a stack set up from the env


class HttpsSite(Site):
    """The pages over https: a browser sends a Secure cookie only there."""

    async def browser(self) -> Page:
        http = await self._exit.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
                base_url="https://lotline.test",
            )
        )
        page_ = Page(http)
        self.pages.append(page_)
        return page_


@dataclass
class EnvStack:
    site: Site
    settings: Settings


@pytest.fixture
async def env_stack(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    dev_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[EnvStack]:
    """The whole stack with its settings read by Settings.from_env, as `make run` does."""
    for name, value in {
        "DATABASE_URL": database_url,
        "LOTLINE_TASK_QUEUE": task_queue,
        "LOTLINE_LOGIN_MAX_FAILURES": "3",
        "LOTLINE_SIGNATURE_MAX_FAILURES": "4",
        "LOTLINE_COOKIE_SECURE": "1",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.cookie_secure and settings.signature_max_failures == 4
    await seed_demo(sessions)
    app = create_app(settings, temporal_client=dev_env.client)
    async with (
        build_worker(dev_env.client, task_queue, sessions),
        app.router.lifespan_context(app),
        AsyncExitStack() as exit_stack,
    ):
        api_http = await exit_stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="https://lotline.test",
            )
        )
        api = Stack(
            http=api_http, sessions=sessions, temporal=dev_env.client, task_queue=task_queue
        )
        yield EnvStack(HttpsSite(app=app, api=api, sessions=sessions, _exit=exit_stack), settings)


# ---------------------------------------------------------------- C. sessions and brute force


async def session_works(site: Site, token: str) -> bool:
    probe = await site.browser()
    probe.http.cookies.set("lotline_session", token)
    return (await probe.get("/")).status_code == 200


async def test_a_session_cookie_from_before_the_login_is_never_the_one_after(site: Site) -> None:
    """Session fixation: a cookie planted before the login (made up, or the attacker's own
    valid session) is replaced by a new one at login, and the planted one stops working."""
    victim = await site.browser()
    victim.http.cookies.set("lotline_session", "chosen-by-the-attacker")
    assert (await victim.get("/")).status_code == 303
    login = await victim.login("bob")
    after = login.cookies["lotline_session"]
    assert after != "chosen-by-the-attacker" and await session_works(site, after)
    assert not await session_works(site, "chosen-by-the-attacker")

    attacker = await site.as_user("frank")
    planted = attacker.http.cookies["lotline_session"]
    assert await session_works(site, planted)
    shared = await site.browser()  # a shared terminal: frank's cookie still in the browser
    shared.http.cookies.set("lotline_session", planted)
    carol = (await shared.login("carol")).cookies["lotline_session"]
    assert carol != planted and await session_works(site, carol)
    assert not await session_works(site, planted), "the session the browser held survived"

    again = await site.browser()  # carol logs in again in that browser: a new one, the old ends
    again.http.cookies.set("lotline_session", carol)
    renewed = (await again.login("carol")).cookies["lotline_session"]
    assert renewed not in (carol, planted) and await session_works(site, renewed)
    assert not await session_works(site, carol)


async def test_logout_ends_the_session_everywhere(site: Site) -> None:
    bob = await site.as_user("bob")
    cookie = bob.http.cookies["lotline_session"]
    out = await bob.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert not await session_works(site, cookie)
    async with site.sessions() as session:
        revoked = await session.scalar(
            text("SELECT count(*) FROM user_session WHERE kind = 'ui' AND revoked_at IS NOT NULL")
        )
    assert revoked == 1


async def login_audit(site: Site, username: str) -> list[tuple[str, str]]:
    async with site.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT action, reason FROM audit_entry WHERE entity_type = 'user' "
                "AND entity_id = :who ORDER BY id"
            ),
            {"who": username},
        )
        return [(a, r) for a, r in rows.all()]


async def test_login_locks_after_the_failures_allowed_and_unlocks(
    env_stack: EnvStack,
) -> None:
    """LOTLINE_LOGIN_MAX_FAILURES=3 (from the environment): three wrong passwords lock the
    account; while locked the right password is refused with the same words as a wrong one;
    every attempt is audited; the lock lifts when its time is over, or when an admin lifts it."""
    site = env_stack.site
    browser = await site.browser()
    for _ in range(3):
        wrong = await browser.login("ivan", "not-his-password")
        assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    locked = await browser.login("ivan")
    assert locked.status_code == 403
    shown = message_of(locked, True)
    assert "locked after repeated failed logins" in shown and "UTC" in shown
    wrong_while_locked = await browser.login("ivan", "not-his-password")
    assert message_of(wrong_while_locked, True) == shown  # the lock tells nothing of the password
    assert "lotline_session" not in browser.http.cookies
    trail = await login_audit(site, "ivan")
    assert [a for a, _ in trail] == ["login.failed"] * 3 + ["login.refused"] * 2
    assert "account locked for 15 minutes" in trail[2][1]

    async with site.sessions() as session, session.begin():  # the 15 minutes have passed
        await session.execute(
            update(AppUser)
            .where(AppUser.username == "ivan")
            .values(login_locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await browser.login("ivan")).status_code == 303
    assert (await login_audit(site, "ivan"))[-1][0] == "login.succeeded"

    other = await site.browser()
    for _ in range(3):
        await other.login("ken", "guess")
    assert (await other.login("ken")).status_code == 403
    admin = await site.api.token("admin")
    assert (await site.api.http.post("/api/v1/users/ken/unlock", headers=admin)).status_code == 204
    assert (await other.login("ken")).status_code == 303
    assert "user.unlocked" in [a for a, _ in await login_audit(site, "ken")]


async def signing_task(env_stack: EnvStack) -> int:
    api = env_stack.site.api
    started = await api.http.post(
        "/api/v1/processes/approval",
        json={"title": "Sign-off SOP-PR-007", "approver_groups": ["qa"], "signs": True},
        headers=await api.token("alice"),
    )
    assert started.status_code == 201, started.text
    process_id = started.json()["id"]
    task = await env_stack.site.open_task(process_id)
    return task.id


async def test_signing_locks_after_the_wrong_passwords_allowed(env_stack: EnvStack) -> None:
    """LOTLINE_SIGNATURE_MAX_FAILURES=4: four wrong signing passwords on a real signing
    decision lock signing (audited `signature.locked`, the admins notified in the outbox); time
    does not lift it, the right password does not get past it; an administrator does."""
    api = env_stack.site.api
    task_id = await signing_task(env_stack)
    bob = await api.token("bob")
    url = f"/api/v1/tasks/{task_id}/decision"
    for left in (3, 2, 1):
        wrong = await api.http.post(url, json={"outcome": "approve", "password": "x"}, headers=bob)
        assert wrong.status_code == 403 and f"{left} attempt(s) left" in wrong.json()["detail"]
    locked = await api.http.post(url, json={"outcome": "approve", "password": "x"}, headers=bob)
    assert locked.status_code == 403 and "signing is now locked" in locked.json()["detail"]
    async with api.sessions() as session:
        actions = list(
            await session.scalars(
                text("SELECT action FROM audit_entry WHERE action LIKE 'signature.%' ORDER BY id")
            )
        )
        notices = (
            await session.execute(
                text("SELECT recipient, payload FROM outbox WHERE subject LIKE 'Signing locked%'")
            )
        ).all()
    assert actions == ["signature.refused"] * 3 + ["signature.locked"]
    assert [(r, p["event"], p["user"]) for r, p in notices] == [
        ("group:admin", "signature.locked", "bob")
    ]

    async with api.sessions() as session, session.begin():  # a day later: still locked
        await session.execute(
            update(AppUser)
            .where(AppUser.username == "bob")
            .values(signature_locked_at=datetime.now(UTC) - timedelta(days=1))
        )
    right = await api.http.post(
        url, json={"outcome": "approve", "password": "lotline-demo"}, headers=bob
    )
    assert right.status_code == 403 and "must unlock it" in right.json()["detail"]
    async with api.sessions() as session:
        assert (await session.get_one(Task, task_id)).status == "open"

    admin = await api.token("admin")
    assert (await api.http.post("/api/v1/users/bob/unlock", headers=admin)).status_code == 204
    signed = await api.http.post(
        url, json={"outcome": "approve", "password": "lotline-demo"}, headers=bob
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["signature"]["signer"] == "bob"


# ---------------------------------------------------------------- D. security headers

HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def header_problems(what: str, response: httpx.Response, *, static: bool) -> list[str]:
    problems = [
        f"{what}: {name} is {response.headers.get(name)!r}"
        for name, value in HEADERS.items()
        if response.headers.get(name) != value
    ]
    csp = response.headers.get("content-security-policy", "")
    if "default-src 'self'" not in csp or "frame-ancestors 'none'" not in csp:
        problems.append(f"{what}: CSP {csp!r}")
    cache = response.headers.get("cache-control", "")
    if static == ("no-store" in cache):
        problems.append(f"{what}: Cache-Control {cache!r}")
    return problems


def cookie_problems(response: httpx.Response, *, secure: bool) -> list[str]:
    problems = []
    for cookie in response.headers.get_list("set-cookie"):
        flags = cookie.lower()
        name = cookie.split("=", 1)[0]
        if "httponly" not in flags or "samesite=" not in flags:
            problems.append(f"{name}: {cookie}")
        if ("; secure" in flags) != secure:
            problems.append(f"{name} Secure should be {secure}: {cookie}")
    return problems


async def headers_everywhere(site: Site, *, secure: bool) -> list[str]:
    """API answers (ok, refused, not found, too large), pages (login, logged in, redirect,
    error), docs and static files; and every cookie the login and logout set."""
    api = site.api
    bob = await api.token("bob")
    problems: list[str] = []
    answers = {
        "api ok": await api.http.get("/api/v1/me", headers=bob),
        "api 401": await api.http.get("/api/v1/tasks"),
        "api 404": await api.http.get("/api/v1/nothing", headers=bob),
        "api 413": await api.http.post(
            "/api/v1/processes/approval",
            content=b"{" + b" " * 1_100_000 + b"}",
            headers=bob | {"Content-Type": "application/json"},
        ),
        "api 422": await api.http.get("/api/v1/tasks/abc", headers=bob),
        "metrics 403": await api.http.get("/metrics", headers=bob),
        "healthz": await api.http.get("/healthz"),
        "openapi": await api.http.get("/openapi.json"),
        "docs": await api.http.get("/docs"),
        "redirect to login": await api.http.get("/tasks/1"),
    }
    browser = await site.browser()
    answers["login page"] = await browser.get("/login")
    problems += cookie_problems(answers["login page"], secure=secure)
    logged_in = await browser.login("bob")
    problems += cookie_problems(logged_in, secure=secure)
    answers["logged in"] = await browser.get("/")
    answers["page 404"] = await browser.get("/changes/CR-NO-SUCH")
    answers["page 403"] = await browser.get("/purchases/new")  # bob (qa) does not buy
    for what, response in answers.items():
        problems += header_problems(what, response, static=False)
    for asset in ("/static/app.css", "/static/app.js", "/docs-assets/swagger-ui.css"):
        response = await browser.get(asset)
        assert response.status_code == 200, asset
        problems += header_problems(asset, response, static=True)
    out = await browser.post("/logout")
    problems += cookie_problems(out, secure=secure)
    assert out.headers.get_list("set-cookie"), "logout clears the session cookie"
    return problems


async def test_security_headers_on_every_kind_of_answer(site: Site) -> None:
    problems = await headers_everywhere(site, secure=False)
    assert not problems, "\n".join(problems)


async def test_cookies_are_secure_when_the_environment_says_so(env_stack: EnvStack) -> None:
    """LOTLINE_COOKIE_SECURE=1 (from the environment): every cookie carries Secure."""
    problems = await headers_everywhere(env_stack.site, secure=True)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- E. no secret leaves


@dataclass
class Seen:
    """Every answer the flow got, with the session (if any) that asked."""

    responses: list[tuple[str, httpx.Response]] = field(default_factory=list)

    def hook(self, http: httpx.AsyncClient) -> None:
        async def keep(response: httpx.Response) -> None:
            await response.aread()
            cookie = response.request.headers.get("cookie", "")
            found = re.search(r"lotline_session=([^;]+)", cookie)
            self.responses.append((found.group(1) if found else "", response))

        http.event_hooks = {"response": [keep]}


async def realistic_flow(site: Site, seen: Seen) -> dict[str, str]:
    """Logins (right and wrong), a signed decision (a wrong signing password first), reading
    the task, the process, the audit trail, the users and the metrics, over the API, the pages
    and the MES key; logout. Answers the secrets the flow handled."""
    api = site.api
    seen.hook(api.http)
    tokens = {}
    for person in ("alice", "bob", "carol", "admin"):
        issued = await api.http.post(
            "/api/v1/auth/token", json={"username": person, "password": DEMO_PASSWORD}
        )
        tokens[person] = issued.json()["access_token"]
    bearer = {p: {"Authorization": f"Bearer {t}"} for p, t in tokens.items()}
    failed = await api.http.post(
        "/api/v1/auth/token", json={"username": "bob", "password": "wrong-Pa55word!"}
    )
    assert failed.status_code == 401
    task_id = await signing_task_on(site, bearer["alice"])
    url = f"/api/v1/tasks/{task_id}/decision"
    await api.http.post(
        url, json={"outcome": "approve", "password": "wrong-Pa55word!"}, headers=bearer["bob"]
    )
    signed = await api.http.post(
        url, json={"outcome": "approve", "password": DEMO_PASSWORD}, headers=bearer["bob"]
    )
    assert signed.status_code == 200, signed.text
    for path, who in (
        (f"/api/v1/tasks/{task_id}", "bob"),
        ("/api/v1/processes", "alice"),
        ("/api/v1/audit?limit=1000", "carol"),
        ("/api/v1/audit/verify", "carol"),
        ("/api/v1/users", "admin"),
        ("/api/v1/me", "admin"),
        ("/metrics", "admin"),
        ("/api/v1/delegations", "admin"),
    ):
        assert (await api.http.get(path, headers=bearer[who])).status_code == 200, path
    assert (
        await api.http.get("/api/v1/processes", headers={"X-API-Key": DEMO_API_KEY})
    ).status_code == 200
    pages: dict[str, Page] = {}
    for person in ("bob", "carol"):
        pages[person] = await site.browser()
        seen.hook(pages[person].http)
        assert (await pages[person].login(person)).status_code == 303
    await pages["bob"].login("bob", "wrong-Pa55word!")  # a wrong one too, on the page
    assert (await pages["bob"].login("bob")).status_code == 303
    for path in (f"/tasks/{task_id}", "/", "/delegations", "/processes"):
        assert (await pages["bob"].get(path)).status_code == 200, path
    assert (await pages["carol"].get("/audit?verify=1")).status_code == 200
    await pages["carol"].post("/logout")
    assert (await api.http.post("/api/v1/auth/logout", headers=bearer["alice"])).status_code == 204
    return tokens


async def signing_task_on(site: Site, alice: dict[str, str]) -> int:
    started = await site.api.http.post(
        "/api/v1/processes/approval",
        json={"title": "Sign-off SOP-PR-009", "approver_groups": ["qa"], "signs": True},
        headers=alice,
    )
    assert started.status_code == 201, started.text
    return (await site.open_task(started.json()["id"])).id


async def test_no_secret_in_any_answer_or_log_line(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, as verbose as an operator can make it
    seen = Seen()
    tokens = await realistic_flow(site, seen)
    async with site.sessions() as session:
        hashes = set(
            await session.scalars(
                select(AppUser.password_hash).where(AppUser.password_hash.is_not(None))
            )
        )
        rows = (
            await session.execute(text("SELECT token_hash, csrf_token FROM user_session"))
        ).all()
    csrf_of = {digest: csrf for digest, csrf in rows}
    cookies = {
        value
        for _, response in seen.responses
        for value in re.findall(
            r"lotline_session=([^;\"]+)", ";".join(response.headers.get_list("set-cookie"))
        )
        if value
    }
    always = {DEMO_PASSWORD, "wrong-Pa55word!", DEMO_API_KEY, "$argon2", *hashes}
    problems: list[str] = []
    for asked_by, response in seen.responses:
        where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
        body = response.text
        others = {csrf for digest, csrf in csrf_of.items() if digest != token_digest(asked_by)}
        issued_here = response.request.url.path == "/api/v1/auth/token"
        secrets_here = always | others | cookies | (set() if issued_here else set(tokens.values()))
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items() if k != "set-cookie")
        for secret in secrets_here:
            if secret and (secret in body or secret in headers):
                problems.append(f"{where} shows {secret[:12]}…")
    every_secret = always | set(csrf_of.values()) | cookies | set(tokens.values())
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        for secret in every_secret:
            if secret and secret in line:
                problems.append(
                    f"log {record.name} {record.levelname}: {secret[:12]}… in {line[:160]!r}"
                )
    assert len(seen.responses) > 30 and caplog.records, "the flow was not observed"
    # the scan finds what is there: each token in the answer that issued it, each page
    # session's CSRF token on its own pages
    issued = " ".join(r.text for _, r in seen.responses if r.url.path == "/api/v1/auth/token")
    assert all(token in issued for token in tokens.values())
    own = [
        csrf_of[token_digest(asked_by)] in r.text
        for asked_by, r in seen.responses
        if asked_by and r.status_code == 200 and r.url.path in ("/", "/processes")
    ]
    assert len(own) >= 2 and all(own), own
    assert not problems, "\n".join(sorted(set(problems)))


# ---------------------------------------------------------------- F. SQL injection in filters

PAYLOADS = (
    "' OR '1'='1",
    "' OR 1=1--",
    "1; DROP TABLE task--",
    "x'; DROP TABLE audit_entry; --",
    "%' UNION SELECT password_hash FROM app_user--",
    "%",
    "_",
    "\\",
    "admin'--",
    "') OR ('a'='a",
    "1) OR (1=1",
    "\x00",
    "99999999999999999999999",
    "-1",
)
BENIGN = "zz-no-such-value"


def rows_in(response: httpx.Response) -> int:
    """How many rows a JSON answer carries (0 for a refusal; a report's PDF or CSV file is not
    counted: for those only "never a 500" and "every table as it was" apply)."""
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return 0
    body = response.json()
    if isinstance(body, list):
        return len(body)
    return max(len(body.get("items", [])), int(body.get("count") or 0))


async def public_tables(site: Site) -> set[str]:
    async with site.sessions() as session:
        return set(
            await session.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        )


async def test_sql_injection_in_every_filter_changes_nothing(site: Site) -> None:
    """Every query parameter of every GET of /openapi.json (and every path parameter, and the
    pages' query parameters): never a 500, never more rows than a filter matching nothing
    gives, and every table as it was."""
    world = await make_world(site)
    admin = world.bearer["admin"]
    document = (await site.api.http.get("/openapi.json")).json()
    tables, before = await public_tables(site), await snapshot(site)
    wrong: list[str] = []
    tried = 0
    for path, operations in document["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        parameters = operation.get("parameters", [])
        base = fill_path(path, parameters, world)
        for parameter in parameters:
            name = parameter["name"]
            if parameter["in"] == "query":
                # a text filter matching nothing is the bound; a number or a date is a filter
                # whatever its value, so the bound is then everything unfiltered
                bound = {name: BENIGN} if is_text(parameter) else {}
                baseline = rows_in(await site.api.http.get(base, params=bound, headers=admin))
                for payload in PAYLOADS:
                    answer = await site.api.http.get(base, params={name: payload}, headers=admin)
                    tried += 1
                    got = rows_in(answer)
                    if answer.status_code >= 500 or got > baseline:
                        problem = f"{answer.status_code}, {got} rows (at most {baseline})"
                        wrong.append(f"GET {base}?{name}={payload!r}: {problem}")
            elif parameter["in"] == "path":
                for payload in PAYLOADS:
                    url = fill_path(path, parameters, world, **{name: payload})
                    answer = await site.api.http.get(url, headers=admin)
                    tried += 1
                    if answer.status_code >= 500:
                        wrong.append(f"GET {url}: {answer.status_code}")
    tried += await inject_pages(site, world, wrong)
    assert tried > 500, tried
    assert not wrong, "\n".join(wrong)
    assert await public_tables(site) == tables
    assert await snapshot(site) == before
    async with site.sessions() as session:
        assert (await verify_chain(session)).ok


def is_text(parameter: dict[str, Any]) -> bool:
    """A free-text parameter (no date, number or boolean format)."""
    schema = parameter.get("schema", {})
    kinds = schema.get("anyOf", [schema])
    return any(k.get("type") == "string" and "format" not in k for k in kinds)


def fill_path(path: str, parameters: list[dict[str, Any]], world: World, **given: str) -> str:
    """The path with real values (a lot, a supplier, the recall of the world) or `given` ones."""
    real = {
        "lot": unquote(world.values["lot"]),
        "code": world.values["supplier"],
        "key": "rcl-authz-ended",
    } | {
        "task_id": world.values["task"],
        "process_id": "ap-authz",
    }
    for parameter in parameters:
        if parameter["in"] == "path":
            name = parameter["name"]
            path = path.replace(f"{{{name}}}", quote(given.get(name, real.get(name, "x")), safe=""))
    return path


def page_queries() -> list[tuple[str, list[str]]]:
    """The pages' GET routes and their query parameters, as FastAPI reads them."""
    app = create_app(Settings(database_url="postgresql+psycopg://unused/unused"))
    found = []
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if not isinstance(original, APIRoute) or "GET" not in (original.methods or set()):
            continue
        if original.path.startswith("/api/") or original.include_in_schema:
            continue
        names = [p.name for p in original.dependant.query_params]
        if names:
            found.append((original.path, names))
    return found


async def inject_pages(site: Site, world: World, wrong: list[str]) -> int:
    """The pages' filters as the admin's browser sends them: never a 500."""
    token, _ = world.ui["admin"]
    cookie = {"Cookie": f"lotline_session={token}"}
    tried = 0
    for path, names in page_queries():
        url = fill_path(
            path, [{"in": "path", "name": n} for n in re.findall(r"{(\w+)}", path)], world
        )
        for name in names:
            for payload in PAYLOADS:
                site.api.http.cookies.clear()
                answer = await site.api.http.get(url, params={name: payload}, headers=cookie)
                tried += 1
                if answer.status_code >= 500:
                    wrong.append(f"page GET {url}?{name}={payload!r}: {answer.status_code}")
    assert tried > 100, tried
    return tried
