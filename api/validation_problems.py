"""The problems of an API body or event's data pydantic found, as one translatable text.

The English is pydantic's, byte for byte (`quantity: Input should be greater than 0; lines:
Field required`), as the API has always answered it. Each problem is an `api.errors.Message`:
`%(field)s: %(problem)s` with pydantic's wording of the error as a template of ours, chosen by
its type from `WORDING` and filled from the error's `ctx` (the first variant that gives exactly
pydantic's message: `1 character` / `2 characters`), and the list is `api.errors.joined`, so
`ui.i18n.translate_message` answers it in Chinese for a caller whose `Accept-Language` asks
for it. `WORDING` lists every error type of pydantic-core (tests/ui/test_validation_wording.py
fails on one it does not know); a message pydantic words otherwise (a custom error) stays
pydantic's English inside the translated frame. The forms (`ui/form_problems.py`) have words of
their own for the usual types and use this table for the rest. Chinese in `validation.po`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from api.errors import Message, joined
from ui.i18n import N_

# pydantic-core's English for each error type as templates of ours (placeholders from the
# error's ctx); a type whose message has a plural (`{expected_plural}`) or reads two ways has one
# template per way, tried in order
WORDING: dict[str, tuple[str, ...]] = {
    "no_such_attribute": (N_("Object has no attribute '%(attribute)s'"),),
    "json_invalid": (N_("Invalid JSON: %(error)s"),),
    "json_type": (N_("JSON input should be string, bytes or bytearray"),),
    "needs_python_object": (
        N_(
            "Cannot check `%(method_name)s` when validating from json, use a JsonOrPython validator instead"
        ),
    ),
    "recursion_loop": (N_("Recursion error - cyclic reference detected"),),
    "recursion_depth_exceeded": (N_("Recursion error - maximum validation depth exceeded"),),
    "missing": (N_("Field required"),),
    "frozen_field": (N_("Field is frozen"),),
    "frozen_instance": (N_("Instance is frozen"),),
    "extra_forbidden": (N_("Extra inputs are not permitted"),),
    "invalid_key": (N_("Keys should be strings"),),
    "get_attribute_error": (N_("Error extracting attribute: %(error)s"),),
    "model_type": (N_("Input should be a valid dictionary or instance of %(class_name)s"),),
    "model_attributes_type": (
        N_("Input should be a valid dictionary or object to extract fields from"),
    ),
    "dataclass_type": (N_("Input should be a dictionary or an instance of %(class_name)s"),),
    "dataclass_exact_type": (N_("Input should be an instance of %(class_name)s"),),
    "named_tuple_type": (
        N_("Input should be a tuple, list, dictionary or an instance of %(class_name)s"),
    ),
    "default_factory_not_called": (
        N_("The default factory uses validated data, but at least one validation error occurred"),
    ),
    "none_required": (N_("Input should be None"),),
    "greater_than": (N_("Input should be greater than %(gt)s"),),
    "greater_than_equal": (N_("Input should be greater than or equal to %(ge)s"),),
    "less_than": (N_("Input should be less than %(lt)s"),),
    "less_than_equal": (N_("Input should be less than or equal to %(le)s"),),
    "multiple_of": (N_("Input should be a multiple of %(multiple_of)s"),),
    "finite_number": (N_("Input should be a finite number"),),
    "too_short": (
        N_(
            "%(field_type)s should have at least %(min_length)s items after validation, not %(actual_length)s"
        ),
        N_(
            "%(field_type)s should have at least %(min_length)s item after validation, not %(actual_length)s"
        ),
    ),
    "too_long": (
        N_(
            "%(field_type)s should have at most %(max_length)s items after validation, not %(actual_length)s"
        ),
        N_(
            "%(field_type)s should have at most %(max_length)s item after validation, not %(actual_length)s"
        ),
        N_("%(field_type)s should have at most %(max_length)s items after validation, not more"),
        N_("%(field_type)s should have at most %(max_length)s item after validation, not more"),
    ),
    "iterable_type": (N_("Input should be iterable"),),
    "iteration_error": (N_("Error iterating over object, error: %(error)s"),),
    "string_type": (N_("Input should be a valid string"),),
    "string_unicode": (
        N_("Input should be a valid string, unable to parse raw data as a unicode string"),
    ),
    "string_too_short": (
        N_("String should have at least %(min_length)s characters"),
        N_("String should have at least %(min_length)s character"),
    ),
    "string_too_long": (
        N_("String should have at most %(max_length)s characters"),
        N_("String should have at most %(max_length)s character"),
    ),
    "string_pattern_mismatch": (N_("String should match pattern '%(pattern)s'"),),
    "string_not_ascii": (N_("String should contain only ASCII characters"),),
    "enum": (N_("Input should be %(expected)s"),),
    "dict_type": (N_("Input should be a valid dictionary"),),
    "frozen_dict_type": (N_("Input should be a valid frozendict"),),
    "ordered_dict_type": (N_("Input should be a valid OrderedDict"),),
    "counter_type": (N_("Input should be a valid Counter"),),
    "mapping_type": (N_("Input should be a valid mapping, error: %(error)s"),),
    "list_type": (N_("Input should be a valid list"),),
    "deque_type": (N_("Input should be a valid deque"),),
    "tuple_type": (N_("Input should be a valid tuple"),),
    "set_type": (N_("Input should be a valid set"),),
    "set_item_not_hashable": (N_("Set items should be hashable"),),
    "bool_type": (N_("Input should be a valid boolean"),),
    "bool_parsing": (N_("Input should be a valid boolean, unable to interpret input"),),
    "int_type": (N_("Input should be a valid integer"),),
    "int_parsing": (N_("Input should be a valid integer, unable to parse string as an integer"),),
    "int_parsing_size": (N_("Unable to parse input string as an integer, exceeded maximum size"),),
    "int_from_float": (N_("Input should be a valid integer, got a number with a fractional part"),),
    "float_type": (N_("Input should be a valid number"),),
    "float_parsing": (N_("Input should be a valid number, unable to parse string as a number"),),
    "bytes_type": (N_("Input should be a valid bytes"),),
    "bytes_too_short": (
        N_("Data should have at least %(min_length)s bytes"),
        N_("Data should have at least %(min_length)s byte"),
    ),
    "bytes_too_long": (
        N_("Data should have at most %(max_length)s bytes"),
        N_("Data should have at most %(max_length)s byte"),
    ),
    "bytes_invalid_encoding": (N_("Data should be valid %(encoding)s: %(encoding_error)s"),),
    "value_error": (N_("Value error, %(error)s"),),
    "assertion_error": (N_("Assertion failed, %(error)s"),),
    "literal_error": (N_("Input should be %(expected)s"),),
    "missing_sentinel_error": (N_("Input should be the 'MISSING' sentinel"),),
    "ellipsis_error": (N_("Input should be the 'Ellipsis' literal"),),
    "date_type": (N_("Input should be a valid date"),),
    "date_parsing": (N_("Input should be a valid date in the format YYYY-MM-DD, %(error)s"),),
    "date_from_datetime_parsing": (N_("Input should be a valid date or datetime, %(error)s"),),
    "date_from_datetime_inexact": (
        N_("Datetimes provided to dates should have zero time - e.g. be exact dates"),
    ),
    "date_past": (N_("Date should be in the past"),),
    "date_future": (N_("Date should be in the future"),),
    "time_type": (N_("Input should be a valid time"),),
    "time_parsing": (N_("Input should be in a valid time format, %(error)s"),),
    "datetime_type": (N_("Input should be a valid datetime"),),
    "datetime_parsing": (N_("Input should be a valid datetime, %(error)s"),),
    "datetime_object_invalid": (N_("Invalid datetime object, got %(error)s"),),
    "datetime_from_date_parsing": (N_("Input should be a valid datetime or date, %(error)s"),),
    "datetime_past": (N_("Input should be in the past"),),
    "datetime_future": (N_("Input should be in the future"),),
    "timezone_naive": (N_("Input should not have timezone info"),),
    "timezone_aware": (N_("Input should have timezone info"),),
    "timezone_offset": (N_("Timezone offset of %(tz_expected)s required, got %(tz_actual)s"),),
    "time_delta_type": (N_("Input should be a valid timedelta"),),
    "time_delta_parsing": (N_("Input should be a valid timedelta, %(error)s"),),
    "frozen_set_type": (N_("Input should be a valid frozenset"),),
    "is_instance_of": (N_("Input should be an instance of %(class)s"),),
    "is_subclass_of": (N_("Input should be a subclass of %(class)s"),),
    "callable_type": (N_("Input should be callable"),),
    "union_tag_invalid": (
        N_(
            "Input tag '%(tag)s' found using %(discriminator)s does not match any of the expected tags: %(expected_tags)s"
        ),
    ),
    "union_tag_not_found": (N_("Unable to extract tag using discriminator %(discriminator)s"),),
    "arguments_type": (N_("Arguments must be a tuple, list or a dictionary"),),
    "missing_argument": (N_("Missing required argument"),),
    "unexpected_keyword_argument": (N_("Unexpected keyword argument"),),
    "missing_keyword_only_argument": (N_("Missing required keyword only argument"),),
    "unexpected_positional_argument": (N_("Unexpected positional argument"),),
    "missing_positional_only_argument": (N_("Missing required positional only argument"),),
    "multiple_argument_values": (N_("Got multiple values for argument"),),
    "url_type": (N_("URL input should be a string or URL"),),
    "url_parsing": (N_("Input should be a valid URL, %(error)s"),),
    "url_syntax_violation": (N_("Input violated strict URL syntax rules, %(error)s"),),
    "url_too_long": (
        N_("URL should have at most %(max_length)s characters"),
        N_("URL should have at most %(max_length)s character"),
    ),
    "url_scheme": (N_("URL scheme should be %(expected_schemes)s"),),
    "uuid_type": (N_("UUID input should be a string, bytes or UUID object"),),
    "uuid_parsing": (N_("Input should be a valid UUID, %(error)s"),),
    "uuid_version": (N_("UUID version %(expected_version)s expected"),),
    "decimal_type": (N_("Decimal input should be an integer, float, string or Decimal object"),),
    "decimal_parsing": (N_("Input should be a valid decimal"),),
    "decimal_max_digits": (
        N_("Decimal input should have no more than %(max_digits)s digits in total"),
        N_("Decimal input should have no more than %(max_digits)s digit in total"),
    ),
    "decimal_max_places": (
        N_("Decimal input should have no more than %(decimal_places)s decimal places"),
        N_("Decimal input should have no more than %(decimal_places)s decimal place"),
    ),
    "decimal_whole_digits": (
        N_(
            "Decimal input should have no more than %(whole_digits)s digits before the decimal point"
        ),
        N_(
            "Decimal input should have no more than %(whole_digits)s digit before the decimal point"
        ),
    ),
    "fraction_type": (N_("Fraction input should be an integer, float, string or Fraction object"),),
    "fraction_parsing": (N_("Input is not a valid fraction"),),
    "complex_type": (
        N_(
            "Input should be a valid python complex object, a number, or a valid complex string following the rules at https://docs.python.org/3/library/functions.html#complex"
        ),
    ),
    "complex_str_parsing": (
        N_(
            "Input should be a valid complex string following the rules at https://docs.python.org/3/library/functions.html#complex"
        ),
    ),
}

# what `%(field_type)s` names in a too_short/too_long problem (`List should have at least …`)
FIELD_TYPES = (N_("List"), N_("Tuple"), N_("Set"), N_("Frozenset"), N_("Dictionary"))
# what is wrong inside a date, time, duration or URL (`%(error)s` of date_parsing, url_parsing, …)
# and inside a JSON body (Python's json module), as pydantic and FastAPI say it: each value
# reads translated where the catalog has it
INNER_PROBLEMS = (
    N_("input is too short"),
    N_("input is too long"),
    N_("invalid character in year"),
    N_("invalid character in month"),
    N_("invalid character in day"),
    N_("invalid character in hour"),
    N_("invalid character in minute"),
    N_("invalid character in second"),
    N_("invalid date separator, expected `-`"),
    N_("invalid time separator, expected `:`"),
    N_("invalid datetime separator, expected `T`, `t`, `_` or space"),
    N_("day value is outside expected range"),
    N_("month value is outside expected range of 1-12"),
    N_("hour value is outside expected range of 0-23"),
    N_("minute value is outside expected range of 0-59"),
    N_("second value is outside expected range of 0-59"),
    N_("second fraction digits missing after `.`"),
    N_("invalid timezone sign"),
    N_("invalid timezone hour"),
    N_("invalid timezone minute"),
    N_("timezone minute value is outside expected range of 0-59"),
    N_("timezone offset must be less than 24 hours"),
    N_("unexpected extra characters at the end of the input"),
    N_("year 0 is out of range"),
    N_("invalid digit in duration"),
    N_('"day" identifier in duration not correctly formatted'),
    N_("a numeric value in the duration is too large"),
    N_("durations may not exceed 999,999,999 hours"),
    N_("quantity invalid in date part of duration"),
    N_("quantity invalid in time part of duration"),
    N_("input is empty"),
    N_("empty host"),
    N_("invalid port number"),
    N_("invalid IPv4 address"),
    N_("invalid IPv6 address"),
    N_("invalid international domain name"),
    N_("invalid domain character"),
    N_("relative URL without a base"),
    N_("Expecting value"),
    N_("Expecting property name enclosed in double quotes"),
    N_("Expecting ':' delimiter"),
    N_("Expecting ',' delimiter"),
    N_("Unterminated string starting at"),
    N_("Invalid control character at"),
    N_("Invalid \\escape"),
    N_("Invalid \\uXXXX escape"),
    N_("Extra data"),
)
# `'all', 'mine' or 'team'`: pydantic's list of the values it expects, with its last "or"
CHOICES = re.compile(r"^(?P<choices>.+) or (?P<last>[^,]+)$")
LISTED = ("expected", "expected_schemes")


class FieldKey:
    """A field's path as the caller sent it (`lines.0.quantity`): code, never translated."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def __str__(self) -> str:
        return self.path


def ctx_value(name: str, value: Any) -> Any:
    """A ctx value as the message shows it: our validator's `ValueError(said("…"))` keeps its
    template, pydantic's list of choices keeps its "or" translatable, anything else is text."""
    raised = value.args[0] if isinstance(value, Exception) and value.args else value
    if isinstance(getattr(raised, "template", None), str):
        return raised
    text = str(value)
    listed = CHOICES.match(text) if name in LISTED else None
    if listed:
        return Message(
            N_("%(choices)s or %(last)s"), choices=listed["choices"], last=listed["last"]
        )
    return text


def worded(error: Mapping[str, Any]) -> str:
    """One error's message: our template of its type when it says exactly what pydantic said
    (a `Message`), else pydantic's message as it is."""
    said = str(error.get("msg", ""))
    ctx = error.get("ctx") or {}
    values = {name: ctx_value(name, value) for name, value in ctx.items()}
    for template in WORDING.get(str(error.get("type", "")), ()):
        try:
            message = Message(template, **values)
        except (KeyError, TypeError, ValueError):
            continue
        if str(message) == said:
            return message
    return said


def problem_of(field: str, error: Mapping[str, Any]) -> Message:
    """`field: problem`, the field's path as code, the problem translatable."""
    return Message(N_("%(field)s: %(problem)s"), field=FieldKey(field), problem=worded(error))


def problems_of(err: ValidationError, whole: str = "data") -> str:
    """`field: problem; field: problem` of a validation error (`whole` names a problem of the
    whole body or data), each part translatable."""
    return joined(
        [problem_of(".".join(str(p) for p in e["loc"]) or whole, e) for e in err.errors()]
    )
