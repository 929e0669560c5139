"""Errors that reach a person or a system: what was wrong and what to do, never a stack trace.

A message is written once, in English, as a template with `%(name)s` placeholders and its values:
`ApiError(409, "lot %(lot)s is on hold", lot=number)`. `detail` is the English text the API
answers; it is a `Message`, a `str` that keeps the template and the values, so a page (and an API
answer for a caller who asks for Chinese) shows the translation from `ui/locales/*/errors.po`."""

from __future__ import annotations

from typing import Any


class Message(str):
    """An English message that remembers its template and values (see ui.i18n.translate_message)."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, /, **values: Any) -> Message:
        text = template % values if values else template
        message = super().__new__(cls, text)
        message.template = template
        message.values = values
        return message


def joined(problems: list[str]) -> str:
    """Problems as one text, `a; b; c` (`a；b；c` in Chinese), each still translatable (a
    `Message` or a `workflows.wording.Said` keeps its template inside)."""
    if not problems:
        return ""
    text = problems[-1]
    for problem in reversed(problems[:-1]):
        text = Message("%(problem)s; %(more)s", problem=problem, more=text)
    return text


class ApiError(Exception):
    """A refusal with an HTTP status and a message meant for the caller."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        /,
        *,
        headers: dict[str, str] | None = None,
        **values: Any,
    ):
        template = getattr(detail, "template", None)
        if isinstance(detail, Message) and not values:
            message = detail
        elif isinstance(template, str) and not values:  # a workflows.wording.Said (erp, workflows)
            message = Message(template, **getattr(detail, "values", {}))
        else:
            message = Message(detail, **values)
        super().__init__(message)
        self.status_code = status_code
        self.detail: Message = message
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "%(what)s was not found; check the id", what=what)


def forbidden(why: str, /, **values: Any) -> ApiError:
    return ApiError(403, why, **values)


def conflict(why: str, /, **values: Any) -> ApiError:
    return ApiError(409, why, **values)


def unavailable(dependency: str) -> ApiError:
    return ApiError(
        503,
        "%(dependency)s is not reachable right now; nothing was changed. Try again shortly.",
        headers={"Retry-After": "5"},
        dependency=dependency,
    )
