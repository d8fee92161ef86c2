"""Standard CDS maturities (SPEC §6) and year fractions (SPEC §1)."""

from datetime import date
from decimal import Decimal

import pytest

from hedger.calendar import standard_maturity, year_fraction


@pytest.mark.parametrize(
    ("trade", "expected"),
    [
        (date(2024, 3, 19), date(2028, 12, 20)),  # before 20 Mar: 20 Dec of y - 1 + n
        (date(2024, 3, 20), date(2029, 6, 20)),  # from 20 Mar: 20 Jun of y + n
        (date(2024, 9, 19), date(2029, 6, 20)),  # up to 19 Sep still June
        (date(2024, 9, 20), date(2029, 12, 20)),  # from 20 Sep: 20 Dec of y + n
        (date(2025, 1, 10), date(2029, 12, 20)),
        (date(2024, 12, 31), date(2029, 12, 20)),
        (date(2024, 1, 1), date(2028, 12, 20)),
    ],
)
def test_five_year_standard_maturity(trade: date, expected: date) -> None:
    assert standard_maturity(trade, 5) == expected


def test_other_tenors_roll_the_same_way() -> None:
    assert standard_maturity(date(2026, 2, 3), 1) == date(2026, 12, 20)
    assert standard_maturity(date(2026, 6, 1), 10) == date(2036, 6, 20)


def test_year_fraction_is_days_over_365() -> None:
    assert year_fraction(date(2026, 1, 2), date(2028, 1, 2)) == Decimal(2)  # 730 days
    assert year_fraction(date(2024, 1, 1), date(2025, 1, 1)) == Decimal(366) / Decimal(365)
    assert year_fraction(date(2026, 1, 2), date(2026, 1, 1)) == Decimal(-1) / Decimal(365)
