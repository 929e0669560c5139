"""The working-day calendar the recall's 10-working-day clock counts with."""

from __future__ import annotations

from datetime import date

import pytest

from erp.business_calendar import UnknownCountry, add_working_days, is_working_day
from settings import Settings


def test_weekends_are_skipped():
    friday = date(2026, 3, 6)
    assert add_working_days(friday, 1, "US") == date(2026, 3, 9)  # Monday
    assert add_working_days(friday, 10, "US") == date(2026, 3, 20)  # two weeks later


def test_a_holiday_on_the_way_pushes_the_date_a_day_further():
    # Thanksgiving (Thursday 26 November 2026) and a weekend within the ten working days
    assert add_working_days(date(2026, 11, 20), 10, "US") == date(2026, 12, 7)
    # the same ten days in Germany, where Thanksgiving is a working day
    assert add_working_days(date(2026, 11, 20), 10, "DE") == date(2026, 12, 4)


def test_christmas_and_new_year_across_the_turn_of_the_year():
    # 24 Dec (Thu) → 25 Dec holiday, weekend, 1 Jan holiday, weekend
    assert add_working_days(date(2026, 12, 24), 10, "US") == date(2027, 1, 11)


def test_start_on_a_non_working_day_and_zero_days():
    saturday = date(2026, 3, 7)
    assert not is_working_day(saturday, "US")
    assert add_working_days(saturday, 1, "US") == date(2026, 3, 9)
    assert add_working_days(saturday, 0, "US") == saturday
    assert not is_working_day(date(2026, 7, 3), "US")  # Independence Day observed (Friday)


def test_negative_days_and_unknown_countries_are_refused():
    with pytest.raises(ValueError):
        add_working_days(date(2026, 3, 6), -1, "US")
    with pytest.raises(UnknownCountry, match="'XX' is not a country code"):
        add_working_days(date(2026, 3, 6), 1, "XX")


def test_settings_refuse_an_unknown_holidays_country(monkeypatch):
    monkeypatch.setenv("LOTLINE_HOLIDAYS_COUNTRY", "XX")
    with pytest.raises(SystemExit, match="LOTLINE_HOLIDAYS_COUNTRY"):
        Settings.from_env()
    monkeypatch.setenv("LOTLINE_HOLIDAYS_COUNTRY", "DE")
    assert Settings.from_env().holidays_country == "DE"
