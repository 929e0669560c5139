"""The problems pydantic found in a workflow's data as one translatable text, without the API.

`problems_said(err)` is `field: problem; field: problem`, byte for byte what pydantic says (the
text the recall notice always gave), as `said(…)`s: each problem is `%(field)s: %(problem)s`
(the API's `api.validation_problems.problem_of` frame) and the problem pydantic's message as a
template of ours, found from the error itself: each `ctx` value that the message shows exactly
once becomes its `%(name)s` placeholder (`Input should be greater than or equal to %(ge)s`), so
the template is the one `api.validation_problems.WORDING` lists for that type and
`ui/locales/zh_Hans/validation.po` translates; a problem of our own validators
(`ValueError(said(…))`) keeps its template inside `Value error, %(error)s`. A message whose values
cannot be told apart (one shown twice, or not at all) is a plain text, read as it is. The parts
are joined with `schemas.shipping.joined_said` (`a；b` in Chinese). Pure (no I/O, deterministic):
workflow code imports it through `workflow.unsafe.imports_passed_through`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.shipping import joined_said
from schemas.wording import Said, said


def _ctx_value(value: Any) -> Any:
    """A ctx value as the message shows it: our validator's `said(…)` as it is (translated with
    the problem), a number as a number (a whole float as pydantic prints it, `0`), anything else
    as its text."""
    raised = value.args[0] if isinstance(value, Exception) and value.args else value
    if isinstance(raised, Said):
        return raised
    if isinstance(value, float) and value.is_integer():
        return int(value)  # pydantic shows 0.0 as 0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return str(value)


def _shown(text: str) -> re.Pattern[str]:
    """Where a value is shown in a message: the whole value, not a part of a longer word or
    number (`1` is not inside `10`)."""
    return re.compile(r"(?<![\w.])" + re.escape(text) + r"(?![\w])")


def problem_said(error: Mapping[str, Any]) -> str:
    """Pydantic's message of one error as a `said(…)` of its template and values (see above); the
    message as it is when its values cannot be told apart."""
    message = str(error.get("msg", ""))
    values = {name: _ctx_value(v) for name, v in (error.get("ctx") or {}).items()}
    if not values:
        return said(message) if "%" not in message else message
    spans: list[tuple[int, int, str]] = []
    for name, value in values.items():
        found = list(_shown(str(value)).finditer(message)) if str(value) else []
        if len(found) != 1:
            return message
        spans.append((found[0].start(), found[0].end(), name))
    spans.sort()
    if any(end > start for (_, end, _n), (start, _e, _m) in zip(spans, spans[1:], strict=False)):
        return message  # two values overlap: no template tells them apart
    template, at = "", 0
    for start, end, name in spans:
        template += message[at:start].replace("%", "%%") + f"%({name})s"
        at = end
    template += message[at:].replace("%", "%%")
    try:
        text = said(template, **values)
    except (KeyError, TypeError, ValueError):
        return message
    return text if str(text) == message else message


def problems_said(errors: Sequence[Mapping[str, Any]], whole: str = "") -> str:
    """`field: problem; field: problem` of a validation error's `errors()` (`whole` names a
    problem of the whole data, nothing unless given), each part a `said(…)`; the English is
    pydantic's."""
    return joined_said(
        [
            said(
                "%(field)s: %(problem)s",
                field=".".join(str(p) for p in e.get("loc", ())) or whole,
                problem=problem_said(e),
            )
            for e in errors
        ]
    )
