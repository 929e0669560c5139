"""A text that keeps its translatable template: `said("lot %(lot)s is on hold", lot=n)`.

The English text (a `str`: what payloads, histories and old callers read) that remembers its
`%(name)s` template and values, so a page translates it later (`ui.i18n.translate_message`).
Standard library only, so the payloads of `schemas/` can use it; `workflows.wording` re-exports
it with the workflows' `refuse`, `titled` and `described`.
"""

from __future__ import annotations

Value = str | int | float


def _plain(values: dict[str, object]) -> dict[str, Value]:
    """Values as a payload keeps them: a number stays a number, a `Said` stays one (a problem
    inside a text, translated with it; a payload keeps its English), anything else (a StrEnum, a
    Decimal, None) becomes the text an f-string would have printed."""
    return {
        name: value
        if isinstance(value, Said)
        or (isinstance(value, int | float) and not isinstance(value, bool))
        else str(value)
        for name, value in values.items()
    }


class Said(str):
    """An English text that keeps its `%(name)s` template and values (see api.errors.Message)."""

    template: str
    values: dict[str, Value]

    def __new__(cls, template: str, /, **given: object) -> Said:
        values = _plain(given)
        text = super().__new__(cls, template % values if values else template)
        text.template = template
        text.values = values
        return text


def said(template: str, /, **values: object) -> Said:
    return Said(template, **values)
