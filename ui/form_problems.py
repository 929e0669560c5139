"""A form's validation problems in the reader's language.

Pydantic says what is wrong in English; a form says it in its own words, chosen by the error's
`type` and filled from its `ctx` (never by matching pydantic's English): `Quantity: must be more
than 0`, `Title: string should have at most 200 characters` (pydantic's wording where the forms
have always shown it, without its "after validation" tail). Each problem is an `api.errors.Message`,
and so are the `Label: problem` pairs and their `; ` list, so `ui.i18n.translate_message` (the
`sentence` filter of the pages) translates the template and every value, labels included:
`标题：字符串最多 200 个字符`. The English text is the one the forms have always shown. A type
without words here reads as pydantic says it, through `api.validation_problems.WORDING` (every
type of pydantic-core, translated), so no problem of a form stays English.

Used by ui/supply_views.py (and through it the quality and recall forms), ui/change_views.py and
the approval and delegation forms of ui/routes.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from api.errors import Message
from api.validation_problems import ctx_value, worded
from ui.i18n import N_

# the words of a form for pydantic's error types that need no value
PLAIN = {
    "missing": N_("fill this in"),
    "decimal_parsing": N_("enter a number"),
    "decimal_type": N_("enter a number"),
    "int_parsing": N_("enter a number"),
    "int_type": N_("enter a number"),
    "int_from_float": N_("enter a whole number"),
    "float_parsing": N_("enter a number"),
    "float_type": N_("enter a number"),
    "finite_number": N_("enter a number"),
    "bool_parsing": N_("choose yes or no"),
    "string_pattern_mismatch": N_("use letters, digits, '.', '_' or '-' only"),
    "string_type": N_("enter a text"),
    "url_parsing": N_("enter a web address like https://example.com"),
    "url_scheme": N_("enter a web address like https://example.com"),
    "json_invalid": N_("enter valid JSON"),
}
# the words for those that say a limit, filled from the error's ctx
LIMITS = {
    "greater_than": (N_("must be more than %(gt)s"), "gt"),
    "greater_than_equal": (N_("must be at least %(ge)s"), "ge"),
    "less_than": (N_("must be less than %(lt)s"), "lt"),
    "less_than_equal": (N_("must be at most %(le)s"), "le"),
    "string_too_short": (N_("string should have at least %(min_length)s characters"), "min_length"),
    "string_too_long": (N_("string should have at most %(max_length)s characters"), "max_length"),
    "too_short": (N_("list should have at least %(min_length)s items"), "min_length"),
    "too_long": (N_("list should have at most %(max_length)s items"), "max_length"),
    "decimal_max_digits": (N_("use at most %(max_digits)s digits"), "max_digits"),
    "decimal_max_places": (N_("use at most %(decimal_places)s decimal places"), "decimal_places"),
    "decimal_whole_digits": (
        N_("use at most %(whole_digits)s digits before the decimal point"),
        "whole_digits",
    ),
    "multiple_of": (N_("must be a multiple of %(multiple_of)s"), "multiple_of"),
}


def said(error: Mapping[str, Any]) -> str:
    """What is wrong with one field, in a form's words: a `Message` for a known error type, our
    validator's `said(…)` problem, a plain `ValueError`'s text lower-cased to follow a label, or
    pydantic's sentence for a type without form words (`api.validation_problems.worded`)."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return Message(PLAIN["missing"])
    if kind == "too_short" and ctx.get("min_length") == 1:
        return Message(N_("list should have at least 1 item"))
    if kind in PLAIN:
        return Message(PLAIN[kind])
    if kind in LIMITS and LIMITS[kind][1] in ctx:
        template, name = LIMITS[kind]
        return Message(template, **{name: ctx[name]})
    if kind.startswith(("date_", "datetime_")):
        return Message(N_("enter a date like 2026-12-31"))
    if kind in ("enum", "literal_error") and ctx.get("expected"):
        # pydantic's `'a' or 'b'`, its "or" translatable as the API's (`'a' 或 'b'`)
        return Message(
            N_("choose one of %(expected)s"), expected=ctx_value("expected", ctx["expected"])
        )
    raised = ctx.get("error")  # our own validator's ValueError(said("…")): its template
    given = raised.args[0] if isinstance(raised, ValueError) and raised.args else None
    if (
        kind == "value_error"
        and isinstance(given, str)
        and isinstance(getattr(given, "template", None), str)
    ):
        return given
    if kind != "value_error":
        # any other type: pydantic's own sentence, worded by the API's table of every type
        shared = worded(error)
        if isinstance(getattr(shared, "template", None), str):
            return shared
    # a plain ValueError("…") or a custom error: its text, translated where the catalog has it
    message = str(error.get("msg", "not valid")).removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def labelled(label: str, problem: str) -> Message:
    """`Label: problem` (`标签：问题`); the label and the problem are translated too."""
    return Message(N_("%(label)s: %(problem)s"), label=label, problem=problem)


def joined(problems: Sequence[str]) -> str:
    """The problems as one text, `a; b; c` (`a；b；c`), each still translatable."""
    if not problems:
        return ""
    text = problems[-1]
    for problem in reversed(problems[:-1]):
        text = Message(N_("%(problem)s; %(more)s"), problem=problem, more=text)
    return text
