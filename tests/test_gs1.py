"""GS1 strings as scanners and people give them: what is read, and what is refused and why."""

from __future__ import annotations

from datetime import date

import pytest

from erp.gs1 import Gs1Error, looks_like_gs1, parse_label
from erp.seed_master_data import GS1_EXAMPLE_COMPANY_PREFIX, gtin14

GTIN = gtin14("0", GS1_EXAMPLE_COMPANY_PREFIX, "20001")  # 00614141200016, the demo IS-2000
GS = "\x1d"


@pytest.mark.parametrize(
    "scanned",
    [
        f"(01){GTIN}(17)291231(10)NK-2611(21)SN0042",
        f"(01) {GTIN} (17) 291231 (10) NK-2611 (21) SN0042",  # typed with spaces
        f"01{GTIN}17291231" + f"10NK-2611{GS}21SN0042",  # raw, GS after the variable lot
        f"]C101{GTIN}17291231" + f"10NK-2611{GS}21SN0042",  # GS1-128
        f"]d201{GTIN}17291231" + f"10NK-2611{GS}21SN0042",  # GS1 DataMatrix
        f"]Q301{GTIN}17291231" + f"10NK-2611{GS}21SN0042\n",  # GS1 QR, scanner's newline
        f"]d2(01){GTIN}(17)291231(10)NK-2611(21)SN0042",
    ],
)
def test_every_form_of_the_same_label_reads_the_same(scanned):
    label = parse_label(scanned)
    assert label.gtin == GTIN
    assert label.lot == "NK-2611"
    assert label.serial == "SN0042"
    assert label.expires_on == date(2029, 12, 31)
    assert label.manufactured_on is None


def test_production_date_and_day_zero_expiry():
    label = parse_label("(11)260315(17)290300(10)B7")
    assert label.manufactured_on == date(2026, 3, 15)
    assert label.expires_on == date(2029, 3, 31)  # day 00: the month's last day (GS1 7.12)
    assert label.gtin is None and label.lot == "B7"


@pytest.mark.parametrize("bare", [GTIN, GTIN[1:], f"]E0{GTIN[1:]}"])
def test_a_bare_gtin_is_read_as_gtin_14(bare):
    assert parse_label(bare).model_dump(exclude_none=True) == {"gtin": GTIN}


@pytest.mark.parametrize(
    ("scanned", "says"),
    [
        ("(01)00614141200011(10)A", r"\(01\) GTIN '00614141200011'.*check digit .* is 1, it "),
        ("00614141200011", r"check digit of GTIN 00614141200011 is 1, it should be 6"),
        (f"01006141412000111729123110A{GS}", r"check digit"),
        ("(01)0061414120001(10)X", r"\(01\) GTIN '0061414120001' is not 14 digits"),
        (f"(01){GTIN}(17)290230(10)A", r"\(17\) expiry date '290230' is not a real date"),
        (f"(01){GTIN}(17)291331(10)A", r"\(17\) expiry date '291331' is not a date in the form"),
        ("(11)260230(10)A", r"\(11\) production date '260230' is not a real date"),
        ("(11)260301(17)250301(10)A", r"expiry date 2025-03-01 is not after \(11\)"),
        ("(10)A(10)B", r"holds \(10\) lot twice"),
        ("(400)PO-1", r"holds none of \(01\) GTIN, \(10\) lot"),
        ("L2611-0001", r"no GS1 application identifier where 'L2611-0001' begins"),
        ("]A0ABC123", r"prefix \]A0 says this barcode is not a GS1 barcode"),
        ("   ", r"the GS1 string is empty"),
    ],
)
def test_a_bad_string_is_refused_saying_what_is_wrong_and_what_to_do(scanned, says):
    with pytest.raises(Gs1Error, match=says) as refused:
        parse_label(scanned)
    message = refused.value.message
    assert "scan" in message or "check the label" in message  # what to do about it


@pytest.mark.parametrize(
    ("text", "gs1"),
    [
        (f"(01){GTIN}(10)A", True),
        ("(10)NK-1", True),
        (f"]d201{GTIN}10A", True),
        (f"01{GTIN}10A", True),
        (f"10A{GS}21B", True),
        (GTIN, True),
        ("L2611-0001", False),
        ("R2611-00017", False),
        ("F2611-00003", False),
        ("NK260101-107", False),
        ("", False),
    ],
)
def test_a_gs1_string_is_told_from_a_lot_number(text, gs1):
    assert looks_like_gs1(text) is gs1
