"""Page routes. Thin: they call the same services as the REST API and render Jinja2 templates."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from api import change_service, delegation_service, process_service, task_service
from api.deps import AppSettings, DbSession, Sessions, Temporal
from api.errors import ApiError
from api.security import (
    SESSION_COOKIE,
    Principal,
    active_delegators,
    authenticate_password,
    open_session,
    revoke_session,
    revoke_token,
)
from api.task_service import audit_out
from erp.audit import verify_chain
from erp.models import AppGroup
from erp.queries import audit_query
from schemas.api import ApprovalStart, DecisionIn, DelegationIn
from schemas.human_task import DecisionRule
from ui import (
    change_views,
    dashboard_views,
    form_problems,
    i18n,
    lot_views,
    mailbox_views,
    quality_views,
    recall_views,
    report_views,
    settings_views,
    supply_views,
)
from ui.i18n import N_
from ui.pages import HERE, LoginRequired, User, check_csrf, render

router = APIRouter(include_in_schema=False)
router.include_router(supply_views.router)  # the procure-to-deliver pages
router.include_router(lot_views.router)  # lots and suppliers
router.include_router(quality_views.router)  # nonconformances and CAPAs
router.include_router(recall_views.router)  # recalls and the trace explorer
router.include_router(report_views.router)  # printed reports (PDF, CSV)
router.include_router(settings_views.router)  # the person's language
router.include_router(mailbox_views.router)  # the embedded mailbox
router.include_router(dashboard_views.router)  # the operations dashboard
LOGIN_CSRF_COOKIE = "lotline_login_csrf"


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def error_page(request: Request, status_code: int, detail: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status_code, status=status_code, detail=detail)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


# ---------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, settings: AppSettings, next: str = "/") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", next=_safe_next(next), csrf=token, user=None)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        max_age=3600,
    )
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return render(
            request,
            "login.html",
            403,
            next=_safe_next(next),
            csrf=expected or "",
            error=N_("The login form expired; please try again."),
            user=None,
        )
    try:
        user = await authenticate_password(
            session,
            username=username,
            password=password,
            max_failures=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            source="ui",
        )
    except ApiError as err:
        await session.commit()
        return render(
            request,
            "login.html",
            err.status_code,
            next=_safe_next(next),
            csrf=expected,
            error=err.detail,
            username=username,
            user=None,
        )
    held = request.cookies.get(SESSION_COOKIE)
    if held:
        await revoke_token(session, held, "ui")
    token, _ = await open_session(session, user, kind="ui", hours=settings.session_hours)
    await session.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        max_age=settings.session_hours * 3600,
    )
    response.delete_cookie(
        LOGIN_CSRF_COOKIE, httponly=True, samesite="strict", secure=settings.cookie_secure
    )
    return response


@router.post("/logout")
async def logout(
    user: User,
    session: DbSession,
    settings: AppSettings,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(user, csrf_token)
    if user.session_id is not None:
        await revoke_session(session, user.session_id)
        await session.commit()
    response = RedirectResponse("/login", status_code=303)
    # the same attributes as when it was set: a cookie is replaced only by one like it
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=settings.cookie_secure
    )
    return response


# ---------------------------------------------------------------- inbox and tasks


@router.get("/", response_class=HTMLResponse)
async def inbox(
    request: Request,
    user: User,
    session: DbSession,
    scope: str = "all",
    overdue: str = "",
    process_kind: str = "",
    q: str = "",
    status: str = "open",
) -> Response:
    scope = scope if scope in ("all", "mine", "groups", "everything") else "all"
    if scope == "everything" and not user.is_admin:
        scope = "all"
    status = status if status in ("open", "completed", "cancelled", "any") else "open"
    items, count = await task_service.list_tasks(
        session=session,
        principal=user,
        scope=scope,
        status=status,
        overdue=True if overdue == "1" else None,
        process_kind=process_kind[:40] or None,
        business_key=None,
        text=q[:100] or None,
        limit=200,
        offset=0,
    )
    delegators = [d.username for d in await active_delegators(session, user.user_id)]
    return render(
        request,
        "inbox.html",
        tasks=items,
        count=count,
        scope=scope,
        overdue=overdue,
        process_kind=process_kind,
        q=q,
        status=status,
        stands_in_for=delegators,
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    request: Request, task_id: int, user: User, session: DbSession, done: str = ""
) -> Response:
    return await _task_page(request, session, user, task_id, done=done)


async def _task_page(
    request: Request,
    session: Any,
    user: Principal,
    task_id: int,
    *,
    status_code: int = 200,
    error: str = "",
    done: str = "",
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    task = await task_service.task_detail(session=session, principal=user, task_id=task_id)
    row = await task_service.load_task(session, task_id)
    allowed = await task_service.eligibility(session, row, user)
    signs = [o["name"] for o in task.outcomes if o.get("signature_meaning")]
    notices = {
        "claimed": N_("You claimed this task."),
        "released": N_("You released this task."),
        "decided": N_("Your decision was recorded."),
    }
    return render(
        request,
        "task.html",
        status_code,
        task=task,
        may_decide=allowed.why_not is None,
        why_not=allowed.why_not,
        on_behalf_of=allowed.on_behalf_of,
        signing_outcomes=signs,
        outcome_labels={o["name"]: o.get("label") or o["name"] for o in task.outcomes},
        task_outcomes=i18n.outcome_labels(task),  # a refusal's %(outcome)s as this task's label
        error=error,
        notice=notices.get(done, ""),
        form=form or {},
    )


@router.post("/tasks/{task_id}/claim")
async def claim(
    task_id: int,
    request: Request,
    user: User,
    sessions: Sessions,
    session: DbSession,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(user, csrf_token)
    try:
        await task_service.claim_task(
            sessions=sessions, principal=user, task_id=task_id, source="ui"
        )
    except ApiError as err:
        return await _task_page(
            request, session, user, task_id, status_code=err.status_code, error=err.detail
        )
    return RedirectResponse(f"/tasks/{task_id}?done=claimed", status_code=303)


@router.post("/tasks/{task_id}/release")
async def release(
    task_id: int,
    request: Request,
    user: User,
    sessions: Sessions,
    session: DbSession,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(user, csrf_token)
    try:
        await task_service.release_task(
            sessions=sessions, principal=user, task_id=task_id, source="ui"
        )
    except ApiError as err:
        return await _task_page(
            request, session, user, task_id, status_code=err.status_code, error=err.detail
        )
    return RedirectResponse(f"/tasks/{task_id}?done=released", status_code=303)


@router.post("/tasks/{task_id}/decision")
async def decide(
    task_id: int,
    request: Request,
    user: User,
    sessions: Sessions,
    session: DbSession,
    client: Temporal,
    settings: AppSettings,
) -> Response:
    form = await request.form()
    check_csrf(user, str(form.get("csrf_token", "")))
    fields = {str(k)[6:]: str(v)[:5000] for k, v in form.items() if str(k).startswith("field_")}
    outcome = str(form.get("outcome", ""))[:40]
    comment = str(form.get("comment", ""))[:5000]
    kept: dict[str, Any] = {"outcome": outcome, "fields": fields, "comment": comment}
    if not outcome:
        return await _task_page(
            request,
            session,
            user,
            task_id,
            status_code=422,
            error=N_("Choose an outcome."),
            form=kept,
        )
    decision = DecisionIn(
        outcome=outcome,
        fields=fields,
        comment=comment,
        password=str(form.get("password", ""))[:200] or None,
    )
    try:
        await task_service.decide_task(
            sessions=sessions,
            client=client,
            principal=user,
            task_id=task_id,
            decision=decision,
            signature_max_failures=settings.signature_max_failures,
            source="ui",
        )
    except ApiError as err:
        return await _task_page(
            request,
            session,
            user,
            task_id,
            status_code=err.status_code,
            error=err.detail,
            form=kept,
        )
    return RedirectResponse(f"/tasks/{task_id}?done=decided", status_code=303)


# ---------------------------------------------------------------- processes


@router.get("/processes", response_class=HTMLResponse)
async def processes(request: Request, user: User, session: DbSession, status: str = "") -> Response:
    items, count = await process_service.list_processes(
        session=session,
        principal=user,
        kind=None,
        status=status[:20] or None,
        initiator=None,
        limit=200,
        offset=0,
    )
    return render(request, "processes.html", processes=items, count=count, status=status)


@router.get("/processes/new", response_class=HTMLResponse)
async def new_process(request: Request, user: User, session: DbSession) -> Response:
    return render(
        request,
        "process_new.html",
        groups=await _groups(session),
        form={},
        rules=list(DecisionRule),
    )


async def _groups(session: Any) -> list[str]:
    return list(await session.scalars(select(AppGroup.name).order_by(AppGroup.name)))


@router.post("/processes/new")
async def start_process(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    form = await request.form()
    check_csrf(user, str(form.get("csrf_token", "")))
    kept = {k: str(v)[:5000] for k, v in form.items() if k != "csrf_token"}
    kept_groups = [str(g) for g in form.getlist("approver_groups")]
    try:
        body = ApprovalStart(
            title=kept.get("title", ""),
            description=kept.get("description", ""),
            approver_groups=kept_groups,
            escalation_chain=[
                g for g in (kept.get("escalate_1", ""), kept.get("escalate_2", "")) if g
            ],
            rule=DecisionRule(kept.get("rule", "any"))
            if kept.get("rule", "any") in {r.value for r in DecisionRule}
            else DecisionRule.ANY,
            k=int(kept.get("k") or 1) if (kept.get("k") or "1").isdigit() else 1,
            sla_hours=float(kept.get("sla_hours") or 48) if _number(kept.get("sla_hours")) else 48,
            signs=kept.get("signs") == "on",
        )
        process_id, _ = await process_service.start_approval(
            session=session,
            client=client,
            principal=user,
            body=body,
            idempotency_key=None,
            task_queue=settings.task_queue,
        )
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        return render(
            request,
            "process_new.html",
            422,
            groups=await _groups(session),
            form=kept | {"approver_groups": kept_groups},
            rules=list(DecisionRule),
            error=_readable(err),
        )
    except ApiError as err:
        return render(
            request,
            "process_new.html",
            err.status_code,
            groups=await _groups(session),
            form=kept | {"approver_groups": kept_groups},
            rules=list(DecisionRule),
            error=err.detail,
        )
    return RedirectResponse(f"/processes/{process_id}", status_code=303)


def _number(value: str | None) -> bool:
    try:
        float(value or "x")
        return True
    except ValueError:
        return False


# what the forms call the fields that validation names
_FIELD_LABELS = {
    "title": "What needs approval",
    "description": "Details",
    "approver_groups": "Approver groups",
    "escalation_chain": "Escalation",
    "sla_hours": "Due within (hours)",
    "k": "k",
    "delegate": "Delegate",
    "starts_at": "From",
    "ends_at": "Until",
    "reason": "Reason",
}


def _readable(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        parts = []
        for e in errors():
            where = ".".join(str(p) for p in e["loc"])
            label = _FIELD_LABELS.get(str(e["loc"][0]), where) if e["loc"] else N_("form")
            parts.append(form_problems.labelled(label, form_problems.said(e)))
        return form_problems.joined(parts)
    return str(err)


@router.get("/processes/{process_id}", response_class=HTMLResponse)
async def process_page(
    process_id: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    detail = await process_service.process_detail(
        session=session, client=client, principal=user, process_id=process_id[:200]
    )
    return render(request, "process.html", process=detail)


@router.post("/processes/{process_id}/cancel")
async def cancel_process(
    process_id: str, request: Request, user: User, sessions: Sessions, client: Temporal
) -> Response:
    form = await request.form()
    check_csrf(user, str(form.get("csrf_token", "")))
    reason = str(form.get("reason", "")).strip()[:1000]
    if len(reason) < 3:
        raise ApiError(422, "give a reason (at least 3 characters) to withdraw the process")
    await process_service.cancel_process(
        sessions=sessions,
        client=client,
        principal=user,
        process_id=process_id[:200],
        reason=reason,
        source="ui",
    )
    return RedirectResponse(f"/processes/{process_id}", status_code=303)


# ---------------------------------------------------------------- change control


@router.get("/changes", response_class=HTMLResponse)
async def changes(
    request: Request,
    user: User,
    session: DbSession,
    status: str = "open",
    change_type: str = "",
    q: str = "",
) -> Response:
    status = status if status in ("open", "any", *change_views.STATUSES) else "open"
    change_type = change_type if change_type in change_views.CHANGE_TYPES else ""
    items, count = await change_service.list_changes(
        session=session,
        principal=user,
        status=None if status == "any" else status,
        change_type=change_type or None,
        requester=None,
        text=q.strip()[:100] or None,
        limit=200,
        offset=0,
    )
    return render(
        request,
        "changes.html",
        changes=items,
        count=count,
        status=status,
        change_type=change_type,
        q=q,
        statuses=change_views.STATUSES,
        types=change_views.CHANGE_TYPES,
    )


async def _change_form(
    request: Request,
    session: Any,
    *,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    error: str = "",
) -> HTMLResponse:
    return render(
        request,
        "change_new.html",
        status_code,
        form=form or {},
        error=error,
        types=change_views.CHANGE_TYPES,
        risks=change_views.RISKS,
        kinds=change_views.ACTION_KINDS,
        new_statuses=change_views.NEW_STATUSES,
        action_rows=range(1, change_views.ACTION_ROWS + 1),
        choices=await change_views.form_choices(session),
        today=datetime.now(UTC).date().isoformat(),
    )


@router.get("/changes/new", response_class=HTMLResponse)
async def new_change(request: Request, user: User, session: DbSession) -> Response:
    user.require("processes:start")
    return await _change_form(request, session)


@router.post("/changes/new")
async def start_change(
    request: Request, user: User, session: DbSession, client: Temporal, settings: AppSettings
) -> Response:
    form = await request.form()
    check_csrf(user, str(form.get("csrf_token", "")))
    kept = {str(k): str(v)[:5000] for k, v in form.items() if k != "csrf_token"}
    start = change_views.read_start_form(kept)
    problem = change_views.form_problem(start)
    if problem:
        return await _change_form(request, session, status_code=422, form=kept, error=problem)
    try:
        change_id, _ = await change_service.start_change(
            session=session,
            client=client,
            principal=user,
            body=start.body,
            idempotency_key=None,
            task_queue=settings.task_queue,
        )
    except ApiError as err:
        await session.rollback()
        return await _change_form(
            request, session, status_code=err.status_code, form=kept, error=err.detail
        )
    return RedirectResponse(f"/changes/{quote(change_id, safe='')}", status_code=303)


@router.get("/changes/{key}", response_class=HTMLResponse)
async def change_page(
    key: str, request: Request, user: User, session: DbSession, client: Temporal
) -> Response:
    try:
        change = await change_service.change_detail(session=session, principal=user, key=key)
    except ApiError as err:
        if err.status_code != 404 or not await _starting(session, client, user, key):
            raise
        return render(request, "change_starting.html", key=key)
    return render(request, "change.html", change=change, view=change_views.change_view(change))


async def _starting(session: Any, client: Any, user: Principal, key: str) -> bool:
    """Started a moment ago: the workflow runs but has not registered the change yet."""
    try:
        process = await process_service.process_detail(
            session=session, client=client, principal=user, process_id=key[:200]
        )
    except ApiError:
        return False
    return process.status == "starting"


# ---------------------------------------------------------------- delegations and audit


@router.get("/delegations", response_class=HTMLResponse)
async def delegations(request: Request, user: User, session: DbSession) -> Response:
    rows = await delegation_service.list_delegations(session=session, principal=user)
    return render(request, "delegations.html", delegations=rows, form={})


@router.post("/delegations")
async def create_delegation(request: Request, user: User, session: DbSession) -> Response:
    form = await request.form()
    check_csrf(user, str(form.get("csrf_token", "")))
    kept = {k: str(v)[:300] for k, v in form.items() if k != "csrf_token"}
    try:
        body = DelegationIn(
            delegate=kept.get("delegate", ""),
            starts_at=_local_datetime(kept.get("starts_at", "")),
            ends_at=_local_datetime(kept.get("ends_at", "")),
            reason=kept.get("reason", ""),
        )
        await delegation_service.create_delegation(
            session=session, principal=user, body=body, source="ui"
        )
        await session.commit()
    except (ValueError, ApiError) as err:
        await session.rollback()
        message = err.detail if isinstance(err, ApiError) else _readable(err)
        rows = await delegation_service.list_delegations(session=session, principal=user)
        return render(request, "delegations.html", 422, delegations=rows, form=kept, error=message)
    return RedirectResponse("/delegations", status_code=303)


def _local_datetime(value: str) -> datetime:
    """Form dates come as 'YYYY-MM-DDTHH:MM' in UTC (the form says so)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"'{value or '(empty)'}' is not a date and time like 2026-12-01T08:00"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post("/delegations/{delegation_id}/revoke")
async def revoke_delegation(
    delegation_id: int,
    user: User,
    session: DbSession,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(user, csrf_token)
    await delegation_service.revoke_delegation(
        session=session, principal=user, delegation_id=delegation_id, source="ui"
    )
    await session.commit()
    return RedirectResponse("/delegations", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    user: User,
    session: DbSession,
    entity_type: str = "",
    entity_id: str = "",
    actor: str = "",
    verify: str = "",
    before_id: int | None = None,
) -> Response:
    user.require("audit:read")
    query = audit_query(
        entity_type=entity_type[:40] or None,
        entity_id=entity_id[:300] or None,
        actor=actor[:64] or None,
        before_id=before_id,
    )
    rows = [audit_out(r) for r in (await session.scalars(query.limit(101))).all()]
    result = await verify_chain(session) if verify == "1" else None
    return render(
        request,
        "audit.html",
        entries=rows[:100],
        next_before_id=rows[99].id if len(rows) > 100 else None,
        verify=result,
        entity_type=entity_type,
        entity_id=entity_id,
        actor=actor,
    )
