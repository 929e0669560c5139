"""Mail in the recipient's language: an outbox row may carry, in `payload["wording"]`, the English
templates and values of its subject and body; the dispatcher renders them per person
(`AppUser.locale`) when it expands the recipients. A row without wording is sent as written.

    payload["wording"] = {"subject": {"template": "New task: %(title)s", "values": {...}},
                          "body": {...}}

A value is a number, a text (translated when the catalog has it: a status, an action), a nested
`{"template", "values"}` (a task's own title template), or `{"moment": "<ISO time>"}` (written in
the locale, UTC). Webhooks never see the wording (`without_wording`). docs/notifications.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ui.i18n import catalog, format_moment, supported

WORDING = "wording"


def phrase(template: str, /, **values: Any) -> dict[str, Any]:
    """One translatable text: `phrase("Escalated (level %(level)s): %(title)s", level=2, ...)`."""
    return {"template": template, "values": values}


def moment(value: datetime) -> dict[str, str]:
    """A time value, written in the reader's locale."""
    return {"moment": value.isoformat()}


def task_title(spec: dict[str, Any], english: str) -> dict[str, Any] | str:
    """A task's title as a value: its spec's template and values, or the English text."""
    template = spec.get("title_template")
    if not template:
        return english
    return phrase(template, **(spec.get("title_values") or {}))


def render(locale: str | None, text: Any) -> str:
    """One text (a phrase, a moment, a plain value) in the locale; English when untranslated or
    when the template and values do not fit."""
    table = catalog(supported(locale))
    if isinstance(text, dict) and "moment" in text:
        return format_moment(datetime.fromisoformat(str(text["moment"])), locale)
    if isinstance(text, dict) and "template" in text:
        template = str(text["template"])
        values = {name: _value(locale, v) for name, v in (text.get("values") or {}).items()}
        try:
            return (
                table.get(template, template) % values if values else table.get(template, template)
            )
        except (KeyError, TypeError, ValueError):
            return template % values if values else template
    if isinstance(text, str):
        return table.get(text, text)
    return str(text)


def _value(locale: str | None, value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return render(locale, value)


def worded(payload: dict[str, Any], locale: str | None, subject: str, body: str) -> tuple[str, str]:
    """The subject and body of a row for a reader of `locale`: rendered from the wording, or the
    row's own texts when it has none (old rows, other writers)."""
    wording = payload.get(WORDING)
    if not isinstance(wording, dict):
        return subject, body
    try:
        return (
            render(locale, wording["subject"]) if "subject" in wording else subject,
            render(locale, wording["body"]) if "body" in wording else body,
        )
    except (KeyError, TypeError, ValueError):  # a malformed wording: send what was written
        return subject, body


def has_wording(payload: dict[str, Any]) -> bool:
    return isinstance(payload.get(WORDING), dict)


def without_wording(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as webhooks and event ids see it: ids and English, no templates."""
    return {k: v for k, v in payload.items() if k != WORDING}
