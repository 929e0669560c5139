"""Report pages: /reports (the index: an audit trail by record or period, a lot's device history
record or genealogy, a CAPA, a recall, a process's signatures) and the report files themselves
under /reports/..., linked from the record pages. Thin: the same builders as the REST API
(api/routes/reports.py), with the session's user as the one who produced the report."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from api.deps import AppSettings, DbSession
from api.errors import ApiError
from api.routes import reports
from ui.pages import User, render

router = APIRouter(include_in_schema=False)


def _moment(value: str, what: str, *, end_of_day: bool = False) -> datetime | None:
    """A date (the form's date field: the whole day) or an ISO 8601 time, in UTC."""
    value = value.strip()[:40]
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end_of_day else 0)
            return datetime.combine(day, time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise ApiError(
            422, "%(field)s: '%(value)s' is not a date (YYYY-MM-DD)", field=what, value=value
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(request: Request, user: User) -> Response:
    return render(request, "reports.html", may_read_audit=user.may("audit:read"))


@router.get("/reports/audit-trail")
async def audit_trail(
    user: User,
    session: DbSession,
    entity_type: str = "",
    entity_id: str = "",
    process_id: str = "",
    since: str = "",
    until: str = "",
    format: str = "pdf",
) -> Response:
    fmt = reports.check_format(format)
    selection = reports.audit_selection(
        entity_type=entity_type[:40],
        entity_id=entity_id[:300],
        process_id=process_id[:200],
        since=_moment(since, "since"),
        until=_moment(until, "until", end_of_day=True),
    )
    report = await reports.build_audit_trail(session, user, selection)
    return await reports.deliver(session, user, report, fmt)


@router.get("/reports/signatures/{key}")
async def signatures(key: str, user: User, session: DbSession, format: str = "pdf") -> Response:
    fmt = reports.check_format(format)
    report = await reports.build_signatures(session, user, key.strip()[:200])
    return await reports.deliver(session, user, report, fmt)


@router.get("/reports/device-history/{lot:path}")
async def device_history(lot: str, user: User, session: DbSession, format: str = "pdf") -> Response:
    fmt = reports.check_format(format)
    report = await reports.build_device_history(session, user, lot.strip()[:200])
    return await reports.deliver(session, user, report, fmt)


@router.get("/reports/genealogy/{lot:path}")
async def genealogy(lot: str, user: User, session: DbSession, format: str = "pdf") -> Response:
    fmt = reports.check_format(format)
    report = await reports.build_genealogy(session, user, lot.strip()[:200])
    return await reports.deliver(session, user, report, fmt)


@router.get("/reports/capa/{key}")
async def capa(key: str, user: User, session: DbSession, format: str = "pdf") -> Response:
    fmt = reports.check_format(format)
    report = await reports.build_capa(session, user, key.strip()[:200])
    return await reports.deliver(session, user, report, fmt)


@router.get("/reports/recall/{key}")
async def recall(
    key: str, user: User, session: DbSession, settings: AppSettings, format: str = "pdf"
) -> Response:
    fmt = reports.check_format(format)
    report = await reports.build_recall(session, user, key.strip()[:200], settings.holidays_country)
    return await reports.deliver(session, user, report, fmt)


@router.get("/reports/lot")
async def lot_report(
    user: User, session: DbSession, lot: str = "", kind: str = "genealogy", format: str = "pdf"
) -> Response:
    """The index page's lot form: one lot number, the DHR or the genealogy."""
    fmt = reports.check_format(format)
    if not lot.strip():
        raise ApiError(422, "enter a lot number or scan its label")
    if kind not in ("genealogy", "device-history"):
        raise ApiError(
            422, "the lot report is genealogy or device-history, not '%(kind)s'", kind=kind[:40]
        )
    build = reports.build_genealogy if kind == "genealogy" else reports.build_device_history
    report = await build(session, user, lot.strip()[:200])
    return await reports.deliver(session, user, report, fmt)
