"""What a workflow says to people, kept translatable: an English template and its values.

A refusal is `raise refuse("Conflict", "shipment %(number)s is %(status)s", number=n, status=s)`:
an `ApplicationError` whose message is the English text (what histories, logs and old callers
read) and whose first detail is `{"template": …, "values": {…}}`, from which the API builds an
`api.errors.Message` so a page or an `Accept-Language: zh` caller reads the translation
(`ui/locales/zh_Hans/workflows.po`). A text passed around before it is raised (a `Refusal`, a
problem) is a `Said`: a `str` that remembers its template. A task's title is `**titled(…)`: the
English `title` plus `title_template`/`title_values` on the `TaskSpec`, which the inbox and the
task page translate. Deterministic, no I/O: safe in workflow code and in the validators.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from schemas.wording import Said, Value, _plain, said

__all__ = [
    "Said",
    "Value",
    "answered",
    "described",
    "reason_wording",
    "refuse",
    "said",
    "said_again",
    "spoken",
    "titled",
    "wording",
]


def wording(text: str) -> dict[str, Any]:
    """The details that let the reader's language be chosen later: the template and values (a
    value that is a `Said` is its English text there, and its own wording under "inner")."""
    if isinstance(text, Said):
        details: dict[str, Any] = {"template": text.template, "values": dict(text.values)}
        inner = {n: wording(v) for n, v in text.values.items() if isinstance(v, Said)}
        if inner:
            details["inner"] = inner
        return details
    return {"template": text, "values": {}}


def reason_wording(reason: str) -> dict[str, Any] | None:
    """The wording of a process step's reason (`UpdateProcessInput.reason_wording`, stored in
    the audit row's after["reason_wording"]): a `Said`'s template and values, None for a plain
    text (a person's own words, an older refusal), which the pages show as recorded."""
    return wording(reason) if isinstance(reason, Said) else None


def spoken(refusal: ApplicationError) -> str:
    """The English text of a refusal raised with `refuse`, as a `Said` again (its template and
    values from its first detail, a problem inside it under "inner" a `Said` too), so a task
    that quotes it is translated with it; an older or foreign refusal is its message as it is."""
    details = refusal.details[0] if refusal.details else None
    if isinstance(details, dict):
        try:
            return _said_of(details, refusal.message)
        except (KeyError, TypeError, ValueError):  # a template and values that do not fit
            pass
    return refusal.message


def said_again(details: object, english: str) -> str:
    """A text that travelled as its English and its wording (`wording(…)`: a result's
    `refusal_wording`, `problem_wording`) as a `Said` again; without a wording, or with one that
    does not give back the English, the English as it is."""
    if isinstance(details, dict):
        try:
            return _said_of(details, english)
        except (KeyError, TypeError, ValueError):  # a template and values that do not fit
            pass
    return english


def _said_of(details: dict[str, Any], english: str) -> str:
    template = details.get("template")
    if not isinstance(template, str):
        return english
    values: dict[str, object] = dict(details.get("values") or {})
    for name, inner in (details.get("inner") or {}).items():
        if isinstance(inner, dict):
            values[name] = _said_of(inner, str(values.get(name, "")))
    text = Said(template, **values) if values else Said(template)
    return text if str(text) == english else english


def _quoted(values: dict[str, Value]) -> dict[str, Any]:
    """Values as a task spec keeps them: a `Said` (a quoted refusal) as its wording, so the
    page translates it inside the title (`ui.i18n.task_text`)."""
    return {n: wording(v) if isinstance(v, Said) else v for n, v in values.items()}


def refuse(
    kind: str | None, text: str, /, *, non_retryable: bool = False, **values: object
) -> ApplicationError:
    """A workflow's refusal of type `kind` (Conflict, Invalid, Forbidden, NotReady, …) carrying
    its template: `refuse("Invalid", "lot %(lot)s is unknown", lot=n)` or a `Said` as it is.
    `non_retryable` as `ApplicationError` has it (False unless said)."""
    message = Said(text, **values) if values else text
    return ApplicationError(str(message), wording(message), type=kind, non_retryable=non_retryable)


def titled(template: str, /, *, limit: int | None = 200, **given: object) -> dict[str, Any]:
    """The title fields of a `TaskSpec`: `TaskSpec(**titled("Close %(nc)s", nc=number), …)`.
    The English title is cut to `limit` for the inbox (the page translates from the template)."""
    values = _plain(given)
    text = template % values if values else template
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return {"title": text, "title_template": template, "title_values": _quoted(values)}


def described(template: str, /, **given: object) -> dict[str, Any]:
    """The description fields of a `TaskSpec`, like `titled`."""
    values = _plain(given)
    text = template % values if values else template
    return {
        "description": text,
        "description_template": template,
        "description_values": _quoted(values),
    }


def answered(text: str, /, **given: object) -> dict[str, Any]:
    """The message fields of an answer (`EventResult`, `DecisionResult`, …):
    `EventResult(**answered("delivery of %(number)s recorded", number=n), …)` (or a `Said` as
    it is) sets the English `message` and the optional `message_template`/`message_values`, from
    which the API (by Accept-Language) and the pages show the reader's language
    (`ui.i18n.answer_message`)."""
    message = Said(text, **given) if given else text
    if isinstance(message, Said):
        return {
            "message": str(message),
            "message_template": message.template,
            "message_values": {
                n: str(v) if isinstance(v, Said) else v for n, v in message.values.items()
            },
        }
    return {"message": message, "message_template": message, "message_values": {}}
