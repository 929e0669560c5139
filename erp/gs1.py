"""GS1 barcode strings: a supplier's label at receiving, and our own UDIs on finished goods.

`parse_label` reads what a scanner or a person gives — the human-readable form
"(01)…(17)…(10)…(21)…", the raw form with GS (\\x1d) separators, with or without a symbology
prefix (]C1 GS1-128, ]d2 GS1 DataMatrix, ]Q3 GS1 QR, ]e0 GS1 DataBar), or a bare GTIN — with the
`biip` library. Every GTIN's check digit is verified and every date must exist; anything else is
refused with a `Gs1Error` that names the application identifier (AI), the value, and what to do.
"""

from __future__ import annotations

import re
from datetime import date

from biip import ParseError
from biip.gs1_application_identifiers import _GS1_APPLICATION_IDENTIFIERS
from biip.gs1_element_strings import GS1ElementStrings
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.symbology import GS1Symbology, SymbologyIdentifier

from schemas.supply import Gs1Label
from workflows.wording import Said, said

GS = "\x1d"
# The AIs a label or UDI is read for, and what people call them.
AI_NAMES = {
    "01": "GTIN",
    "10": "lot",
    "11": "production date",
    "17": "expiry date",
    "21": "serial number",
}
EXAMPLE = "(01)00614141200016(17)291231(10)LOT123(21)SN0001"
_HRI_START = re.compile(r"^\(\d{2,4}\)")
_RAW_START = re.compile(r"^01\d{14}")
_GTIN_LENGTHS = (8, 12, 13, 14)


class Gs1Error(ValueError):
    """A GS1 string that cannot be read: the message says what is wrong and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def looks_like_gs1(text: str) -> bool:
    """Whether `text` is meant as a GS1 string (label, UDI, GTIN) rather than a plain lot number."""
    value = text.strip()
    if not value:
        return False
    if value.startswith("]") or GS in value or _HRI_START.match(value):
        return True
    if value.isdigit() and len(value) in _GTIN_LENGTHS:
        return True
    return bool(_RAW_START.match(value))


def parse_label(text: str) -> Gs1Label:
    """What a GS1 string says: GTIN (check digit verified), lot, serial, expiry, production date."""
    value = text.strip()
    if not value:
        raise Gs1Error(
            said(
                "the GS1 string is empty; "
                "scan the label again, or type it as printed, e.g. %(example)s",
                example=EXAMPLE,
            )
        )
    value = _without_symbology(value)
    if value.isdigit() and len(value) in _GTIN_LENGTHS:
        return Gs1Label(gtin=_gtin(value))
    try:
        if value.startswith("("):
            message = GS1Message.parse_hri(value)
        else:
            message = GS1Message.parse(value)
    except ParseError as err:
        raise Gs1Error(
            said(
                "the GS1 string %(text)r cannot be read: %(problem)s; "
                "scan the label again, or type it as printed, e.g. %(example)s",
                text=text.strip(),
                problem=_explain(str(err)),
                example=EXAMPLE,
            )
        ) from None
    return _label(message.element_strings)


def _without_symbology(value: str) -> str:
    """Drop a scanner's symbology prefix, refusing one that says the barcode is not GS1."""
    if not value.startswith("]"):
        return value
    try:
        symbology = SymbologyIdentifier.extract(value)
    except ParseError:
        raise Gs1Error(
            said(
                "%(prefix)r is not a known scanner prefix; configure the scanner to send "
                "]C1, ]d2 or ]Q3 (or no prefix)",
                prefix=value[:3],
            )
        ) from None
    readable = GS1Symbology.with_gs1_messages() | GS1Symbology.with_gtin()
    if symbology.gs1_symbology not in readable:
        raise Gs1Error(
            said(
                "the scanner prefix %(prefix)s says this barcode is not a GS1 barcode "
                "(GS1-128 is ]C1, GS1 DataMatrix ]d2, GS1 QR ]Q3); scan the GS1 label",
                prefix=symbology.value,
            )
        )
    return value[len(symbology) :]


def _gtin(value: str) -> str:
    try:
        return Gtin.parse(value).as_gtin_14()
    except ParseError as err:
        raise Gs1Error(_gtin_problem(value, _explain(str(err)))) from None


def _label(elements: GS1ElementStrings) -> Gs1Label:
    found: dict[str, str] = {}
    dates: dict[str, date] = {}
    for element in elements:
        ai = element.ai.ai
        if ai in found:
            raise Gs1Error(
                said(
                    "the GS1 string holds (%(ai)s) %(name)s twice; "
                    "scan the label again, or type it as printed, e.g. %(example)s",
                    ai=ai,
                    name=AI_NAMES.get(ai, ""),
                    example=EXAMPLE,
                )
            )
        if ai == "01" and element.gtin_error:
            raise Gs1Error(_gtin_problem(element.value, _explain(element.gtin_error)))
        found[ai] = element.value
        if element.date is not None:
            dates[ai] = element.date
    if not found.keys() & AI_NAMES.keys():
        names = ", ".join(f"({ai}) {name}" for ai, name in AI_NAMES.items())
        raise Gs1Error(
            said(
                "the GS1 string holds none of %(names)s; "
                "scan the label that carries the lot or serial",
                names=names,
            )
        )
    label = Gs1Label(
        gtin=found.get("01"),
        lot=found.get("10"),
        serial=found.get("21"),
        expires_on=dates.get("17"),
        manufactured_on=dates.get("11"),
    )
    if label.expires_on and label.manufactured_on and label.expires_on <= label.manufactured_on:
        raise Gs1Error(
            said(
                "(17) expiry date %(expires)s is not after (11) production date %(made)s; "
                "check the label",
                expires=label.expires_on,
                made=label.manufactured_on,
            )
        )
    return label


_FAILED_MATCH = re.compile(r"Failed to match '(\d*)(.*?)' with GS1 AI \((\d+)\)")
_BAD_DATE = re.compile(r"Failed to parse GS1 AI \((\d+)\) date/time from '(.*?)'")
_NO_AI = re.compile(r"Failed to get GS1 Application Identifier from '(.*?)'\.?$", re.S)
_UNKNOWN_AI = re.compile(r"Unknown GS1 Application Identifier '(\d+)'")
_CHECK_DIGIT = re.compile(r"Invalid GTIN check digit for '(\d+)': Expected (\d), got (\d)")
_GTIN_LENGTH = re.compile(r"Expected 8, 12, 13, or 14 digits, got (\d+)")


def _gtin_problem(value: str, problem: str) -> Said:
    return said(
        "(01) GTIN %(gtin)r: %(problem)s; "
        "scan the label again, or type it as printed, e.g. %(example)s",
        gtin=value,
        problem=problem,
        example=EXAMPLE,
    )


def _name(ai: str) -> Said:
    known = AI_NAMES.get(ai)
    if known:
        return said("(%(ai)s) %(name)s", ai=ai, name=known)
    definition = _GS1_APPLICATION_IDENTIFIERS.get(ai)
    if definition:
        return said("(%(ai)s) %(name)s", ai=ai, name=definition.data_title)
    return said("(%(ai)s)", ai=ai)


def _explain(message: str) -> str:  # a Said, or biip's own English when we do not know it
    """biip's message in our words: which AI, what value, what is wrong with it."""
    if match := _CHECK_DIGIT.search(message):
        return said(
            "the check digit of GTIN %(gtin)s is %(got)s, it should be %(expected)s: "
            "the GTIN is mistyped or misread",
            gtin=match.group(1),
            got=match.group(3),
            expected=match.group(2),
        )
    if match := _GTIN_LENGTH.search(message):
        return said("a GTIN has 8, 12, 13 or 14 digits, not %(n)s", n=match.group(1))
    if match := _BAD_DATE.search(message):
        return said(
            "%(ai)s %(raw)r is not a real date (YYMMDD)",
            ai=_name(match.group(1)),
            raw=match.group(2),
        )
    if match := _FAILED_MATCH.search(message):
        ai = match.group(3)
        raw = (match.group(1) + match.group(2))[len(ai) :]
        definition = _GS1_APPLICATION_IDENTIFIERS.get(ai)
        expected = _expected_form(ai, definition.format if definition else "")
        return said("%(ai)s %(raw)r is not %(expected)s", ai=_name(ai), raw=raw, expected=expected)
    if match := _UNKNOWN_AI.search(message):
        return said("(%(ai)s) is not a GS1 application identifier", ai=match.group(1))
    if match := _NO_AI.search(message):
        rest = match.group(1)
        return said("no GS1 application identifier where %(rest)r begins", rest=rest[:24])
    return message


def _expected_form(ai: str, gs1_format: str) -> Said:
    if ai in ("11", "13", "15", "16", "17"):
        return said("a date in the form YYMMDD")
    if ai == "01":
        return said("14 digits")
    return said("in the form %(format)s", format=gs1_format) if gs1_format else said("valid")
