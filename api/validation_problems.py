"""The problems of an API body or event's data pydantic found, as one translatable text.

The English is pydantic's, byte for byte (`quantity: Input should be greater than 0; lines:
Field required`), as the API has always answered it. Each problem is an `api.errors.Message`:
`%(field)s: %(problem)s` with pydantic's wording of the error as a template of ours when its
type is listed in `WORDING` (and the template, filled from the error's `ctx`, gives exactly
pydantic's message), and the list is `api.errors.joined`, so `ui.i18n.translate_message`
answers it in Chinese for a caller whose `Accept-Language` asks for it. A type not listed (or a
message pydantic words otherwise) stays pydantic's English inside the translated frame."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from api.errors import Message, joined
from ui.i18n import N_

# pydantic's English for an error type, as a template of ours (placeholders from the error's ctx)
WORDING = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "greater_than": N_("Input should be greater than %(gt)s"),
    "greater_than_equal": N_("Input should be greater than or equal to %(ge)s"),
    "less_than": N_("Input should be less than %(lt)s"),
    "less_than_equal": N_("Input should be less than or equal to %(le)s"),
    "string_type": N_("Input should be a valid string"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "decimal_parsing": N_("Input should be a valid decimal"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "date_type": N_("Input should be a valid date"),
    "enum": N_("Input should be %(expected)s"),
    "literal_error": N_("Input should be %(expected)s"),
    "date_from_datetime_parsing": N_("Input should be a valid date or datetime, %(error)s"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD, %(error)s"),
    "datetime_parsing": N_("Input should be a valid datetime, %(error)s"),
    "value_error": N_("Value error, %(error)s"),
}


class FieldKey:
    """A field's path as the caller sent it (`lines.0.quantity`): code, never translated."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def __str__(self) -> str:
        return self.path


def _worded(error: Any) -> str:
    """One error's message: our template when it says exactly what pydantic said, else
    pydantic's."""
    said = str(error.get("msg", ""))
    template = WORDING.get(str(error.get("type", "")))
    if template is None:
        return said
    ctx = error.get("ctx") or {}
    values = {}
    for name, value in ctx.items():
        raised = value.args[0] if isinstance(value, ValueError) and value.args else value
        # our validator's ValueError(said("…")) keeps its template; anything else as a text
        values[name] = raised if isinstance(getattr(raised, "template", None), str) else str(value)
    try:
        message = Message(template, **values)
    except (KeyError, TypeError, ValueError):
        return said
    return message if str(message) == said else said


def problems_of(err: ValidationError, whole: str = "data") -> str:
    """`field: problem; field: problem` of a validation error (`whole` names a problem of the
    whole body or data), each part translatable."""
    return joined(
        [
            Message(
                N_("%(field)s: %(problem)s"),
                field=FieldKey(".".join(str(p) for p in e["loc"]) or whole),
                problem=_worded(e),
            )
            for e in err.errors()
        ]
    )
