"""Working days: Monday to Friday, less the public holidays of a country (the `holidays`
package). The recall's regulatory clock counts them (21 CFR 806.10: a correction or removal is
reported within 10 working days of its initiation)."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

SATURDAY = 5


class UnknownCountry(ValueError):
    """The `holidays` package has no calendar for this country code."""


@lru_cache(maxsize=32)
def _holidays(country: str) -> holidays.HolidayBase:
    """The country's holidays (any year asked for is filled in as it is asked)."""
    if country not in holidays.list_supported_countries():
        raise UnknownCountry(
            f"{country!r} is not a country code the holidays calendar knows; "
            "use an ISO 3166 code such as US, DE or CN"
        )
    return holidays.country_holidays(country)


def check_country(country: str) -> None:
    """Refuse an unknown country code now, not when a clock first counts working days."""
    _holidays(country)


def is_working_day(day: date, country: str) -> bool:
    return day.weekday() < SATURDAY and day not in _holidays(country)


def add_working_days(start: date, days: int, country: str) -> date:
    """The date `days` working days after `start` (the start day itself is not counted, working
    or not): 10 working days from a Friday is the Friday two weeks later, a holiday on the way
    pushes it a day further. `days` = 0 gives `start`."""
    if days < 0:
        raise ValueError("days must not be negative")
    day, left = start, days
    while left:
        day += timedelta(days=1)
        if is_working_day(day, country):
            left -= 1
    return day
