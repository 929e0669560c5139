"""What every page module shares: the templates with their filters and helpers, rendering, the
logged-in user, the CSRF check, and where a process or a lot has its page.

ui/routes.py, ui/supply_views.py and ui/lot_views.py import this module; it imports none of them."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NamedTuple
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from api.deps import DbSession
from api.errors import ApiError
from api.recall_service import may_start_recall
from api.security import SESSION_COOKIE, Principal, principal_from_token
from ui import change_views, i18n, label_text, reason_text, values
from ui.audit_actions import AUDIT_ACTION_LABELS

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


class LoginRequired(Exception):
    """No valid session: the app answers with the login page (see ui.routes.mount_static)."""


async def ui_principal(request: Request, session: DbSession) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    principal = await principal_from_token(session, token, "ui") if token else None
    if principal is None:
        raise LoginRequired()
    request.state.principal = principal
    return principal


User = Annotated[Principal, Depends(ui_principal)]


def check_csrf(principal: Principal, token: object) -> None:
    """A form posts the session's CSRF token; anything else did not come from our pages."""
    given = str(token or "")
    if not given or not hmac.compare_digest(given, principal.csrf_token):
        raise ApiError(
            403,
            "the form has expired or did not come from this site; reload the page and try again",
        )


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", getattr(request.state, "principal", None))
    context.setdefault("now", datetime.now(UTC))
    # a logged-in person's own choice; before login, what the browser asks for
    chosen = getattr(context["user"], "locale", None)
    locale = i18n.supported(chosen or i18n.preferred(request.headers.get("accept-language")))
    context.setdefault("locale", locale)
    context.setdefault("_", i18n.gettext_for(locale))
    context.setdefault("pgettext", i18n.pgettext_for(locale))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def fresh_form_key() -> dict[str, str]:
    """A key per form shown: posting the same form twice starts one process, not two."""
    return {"form_key": secrets.token_urlsafe(18)}


def form_values(form: Mapping[str, str] | None) -> dict[str, str]:
    """What a start form shows: what was typed with its key kept, or a fresh key on a new form."""
    return dict(form or {}) | ({} if form and form.get("form_key") else fresh_form_key())


# ---------------------------------------------------------------- where things have their page


class ProcessPage(NamedTuple):
    path: str  # <path>/<process id>
    label: str  # "the purchase page"


# the kinds of process with a page of their own; the others have the generic /processes/<id>
PROCESS_PAGES = {
    "purchase": ProcessPage("/purchases", i18n.N_("purchase")),
    "work-order": ProcessPage("/work-orders", i18n.N_("work order")),
    "shipment": ProcessPage("/shipments", i18n.N_("shipment")),
    "procure-to-deliver": ProcessPage("/orders", i18n.N_("customer order")),
    "change-control": ProcessPage("/changes", i18n.N_("change request")),
    "nonconformance": ProcessPage("/nonconformances", i18n.N_("nonconformance")),
    "capa": ProcessPage("/capas", i18n.N_("CAPA")),
    "recall": ProcessPage("/recalls", i18n.N_("recall")),
}


def process_url(kind: str | None, process_id: str) -> str:
    """The page of a process: its own page when its kind has one, else the generic one. A
    recall's notice (`<recall id>.notice-<code>`) is shown on its recall's page."""
    if kind == "recall-notice" and ".notice-" in process_id:
        return _own_url("recall", process_id.rsplit(".notice-", 1)[0])
    return _own_url(kind, process_id)


def _own_url(kind: str | None, process_id: str) -> str:

    own = PROCESS_PAGES.get(kind or "")
    return f"{own.path if own else '/processes'}/{quote(process_id, safe='')}"


def lot_url(lot_number: str) -> str:
    return f"/lots/{quote(lot_number, safe='')}"


# ---------------------------------------------------------------- how values read


def qty(value: Decimal | int | None, locale: str | None = None) -> str:
    """12000.0000 → '12,000'; 1.5500 → '1.55', grouped as the locale groups."""
    return i18n.format_quantity(value, locale)


def money(value: Decimal | None, currency: str = "EUR", locale: str | None = None) -> str:
    return i18n.format_money(value, currency, locale)


def percent(part: int, whole: int, locale: str | None = None) -> str:
    return i18n.format_share(part, whole, locale)


def show_date(value: date | datetime | None, locale: str | None = None) -> str:
    return i18n.format_day(value, locale)


def lot_tone(status: str) -> str:
    """The pill colour of a lot status: usable is green, waiting is amber, blocked is red."""
    if status == "RELEASED":
        return "done"
    if status == "QUARANTINE":
        return "warn"
    if status in ("ON_HOLD", "REJECTED", "RECALLED", "EXPIRED"):
        return "bad"
    return ""


def process_tone(status: str) -> str:
    return {"completed": "done", "cancelled": "bad", "failed": "bad"}.get(status, "")


# ---------------------------------------------------------------- template filters


def when(value: datetime | None, locale: str | None = None) -> str:
    return i18n.format_moment(value, locale)


def relative(value: datetime | None, locale: str | None = None) -> str:
    """'in 5 h', 'overdue by 2 d' — how a due time reads at a glance."""
    return i18n.format_due(value, locale)


def humanize(action: str) -> str:
    return (
        action.replace("task.", "")
        .replace("process.", "process ")
        .replace("change.", "change ")
        .replace("master_data.", "master data: ")
        .replace("_", " ")
    )


def sentence(
    message: str | None, locale: str | None = None, outcomes: Mapping[str, str] | None = None
) -> str:
    """Service messages are written lower-case to be embedded; on a page they stand alone, in the
    reader's language (an ApiError's message carries its English template and values).
    `outcomes`: the task's outcome labels (`i18n.outcome_labels`), for a `%(outcome)s` in it."""
    text = i18n.translate_message(locale, message, outcomes=outcomes).strip()
    if not text:
        return ""
    if i18n.supported(locale) == "zh_Hans":
        return text if text[-1] in "。！？）.!?)" else text + "。"
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?)" else text + "."


IDENTIFIER = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def choice_label(value: object) -> str:
    """A choice a workflow names by identifier, as a person reads it: 'return_to_supplier' →
    'Return to supplier', 'scrap' → 'Scrap'. Anything else (IS-2000, free text) stays as is."""
    text = str(value)
    if not IDENTIFIER.match(text):
        return text
    text = text.replace("_", " ")
    return text[:1].upper() + text[1:]


def context_label(key: object) -> str:
    """A task's context key: a field's name ('lot_1', mapped to its lot) reads 'Lot 1'."""
    return choice_label(key)


def audit_reason_of(row: object, locale: str | None = None) -> str:
    """The reason of an audit row (`AuditOut`, `AuditEntry`) or of a timeline `Event` (its
    `detail`, with `detail_wording` when the detail is the row's reason) in the locale."""
    if hasattr(row, "detail"):
        wording = getattr(row, "detail_wording", None)
        after = {"reason_wording": wording} if wording else None
        return i18n.audit_reason(locale, str(getattr(row, "detail", "") or ""), after)
    after = getattr(row, "after", None)
    return i18n.audit_reason(locale, getattr(row, "reason", None), after)


def in_locale(function: Callable[..., str]) -> Callable[..., str]:
    """A filter or helper that formats in the page's locale (the `locale` of its context)."""

    @pass_context
    def localised(context: Context, *args: Any, **kwargs: Any) -> str:
        return function(*args, locale=context.get("locale"), **kwargs)

    return localised


def translated(function: Callable[..., str]) -> Callable[..., str]:
    """A label filter whose English label is looked up in the page's language."""

    @pass_context
    def localised(context: Context, *args: Any, **kwargs: Any) -> str:
        return i18n.translate(context.get("locale"), function(*args, **kwargs))

    return localised


templates.env.filters.update(
    choice_label=translated(choice_label),
    context_label=translated(context_label),
    when=in_locale(when),
    sentence=in_locale(sentence),
    relative=in_locale(relative),
    humanize=translated(humanize),
    # a recorded audit action in the page's language (ui/audit_actions.py); English as humanize
    audit_action=in_locale(
        lambda action, locale=None: (
            values.stored("audit action", action, locale)
            if action in AUDIT_ACTION_LABELS
            else i18n.translate(locale, humanize(action))
        )
    ),
    message=in_locale(lambda text, locale=None: i18n.translate_message(locale, text)),
    task_title=in_locale(lambda task, locale=None: i18n.task_text(locale, task, "title")),
    # a task's context value, a quoted refusal in the page's language: {{ task|context_text(k) }}
    context_text=in_locale(lambda task, key, locale=None: i18n.context_text(locale, task, key)),
    # a field label or context key a workflow composed with values (ui/label_text.py):
    # {{ task|field_label(f.name) }}, {{ task|context_key(k) }}
    field_label=in_locale(
        lambda task, name, locale=None: label_text.field_label(locale, task, name)
    ),
    context_key=in_locale(
        lambda task, key, locale=None: label_text.context_key(locale, task, key, context_label(key))
    ),
    # a process's title and an answer's message in the page's language (docs/i18n.md)
    process_title=in_locale(lambda process, locale=None: i18n.process_title(locale, process)),
    answer_message=i18n.answer_message,
    # an audit row's reason in the page's language (after["reason_wording"]): {{ h|audit_reason }}
    audit_reason=in_locale(lambda row, locale=None: audit_reason_of(row, locale)),
    # a lot's status or hold reason (ui/reason_text.py): {{ h.reason|lot_reason(lot_reasons) }}
    lot_reason=in_locale(reason_text.lot_reason),
    task_description=in_locale(
        lambda task, locale=None: i18n.task_text(locale, task, "description")
    ),
    status_label=translated(change_views.status_label),
    status_tone=change_views.status_tone,
    function_label=translated(change_views.function_label),
    # a stored status, kind or step in the page's language: {{ nc.status|stored("nc status") }}
    stored=in_locale(lambda value, context, locale=None: values.stored(context, value, locale)),
)
templates.env.globals.update(
    languages=i18n.LOCALES,
    country_name=in_locale(i18n.country_name),
    process_pages=PROCESS_PAGES,
    process_url=process_url,
    lot_url=lot_url,
    qty=in_locale(qty),
    money=in_locale(money),
    percent=in_locale(percent),
    show_date=in_locale(show_date),
    lot_tone=lot_tone,
    process_tone=process_tone,
    may_start_recall=may_start_recall,
)
