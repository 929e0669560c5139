"""An answer's `message` in the caller's language (docs/i18n.md).

A workflow writes the message of an event's or a decision's answer with
`workflows.wording.answered`: the English `message` plus `message_template`/`message_values`.
The API answers in English unless the request's `Accept-Language` asks for Chinese, as its
refusals do; the template and values are passed on, so a caller can translate it itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel

from ui import i18n

Answer = TypeVar("Answer", bound=BaseModel)


def in_language(
    answer: Answer, accept_language: str | None, outcomes: Mapping[str, str] | None = None
) -> Answer:
    """The answer with its message in the language `Accept-Language` asks for first among ours
    (English by default: the message as the workflow wrote it). `outcomes`: the task's outcome
    labels (`ui.i18n.outcome_labels`), so a `%(outcome)s` reads as that task's own label."""
    locale = i18n.preferred(accept_language)
    if locale == i18n.DEFAULT_LOCALE:
        return answer
    message = i18n.translate_message(locale, i18n.answer_message(answer), outcomes=outcomes)
    return answer.model_copy(update={"message": message})


def detail_in_language(answer: Answer, accept_language: str | None) -> Answer:
    """The answer with its short `detail` ("started", …: a constant text of the service, no
    values) in the language `Accept-Language` asks for; English by default, as written."""
    locale = i18n.preferred(accept_language)
    detail = getattr(answer, "detail", "")
    if locale == i18n.DEFAULT_LOCALE or not detail:
        return answer
    return answer.model_copy(update={"detail": i18n.translate(locale, detail)})
