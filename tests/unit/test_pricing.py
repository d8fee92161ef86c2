"""The standard contract's dates and the ISDA clean upfront (SPEC §14.3-§14.6, §14.11).

Expected dates are counted by hand on the calendar (weekdays noted); expected
prices are the SPEC's worked examples.
"""

from datetime import date
from decimal import Decimal

import pytest

from hedger.calendar import standard_maturity
from hedger.pricing import (
    accrual_start,
    adjusted,
    bps_to_double,
    cash_settlement,
    cents_text,
    clean_upfront,
    coupon_dates,
    first_coupon,
    fit_hazard,
    priceable,
    step_in,
    upfront_amount,
    upfront_fraction_text,
)
from hedger.quotes import quote_tenor_for


def d(text: str) -> date:
    return date.fromisoformat(text)


# -- dates (SPEC §14.3) --------------------------------------------------------


@pytest.mark.parametrize(
    ("imm", "expected"),
    [
        ("2025-12-20", "2025-12-22"),  # a Saturday: the Monday after
        ("2026-06-20", "2026-06-22"),  # a Saturday
        ("2026-09-20", "2026-09-21"),  # a Sunday
        ("2026-03-20", "2026-03-20"),  # a Friday stays
    ],
)
def test_imm_dates_on_a_weekend_move_to_monday(imm: str, expected: str) -> None:
    assert adjusted(d(imm)) == d(expected)


@pytest.mark.parametrize(
    ("trade", "settles"),
    [
        ("2026-02-05", "2026-02-10"),  # Thursday: Fri, Mon, Tue
        ("2026-02-06", "2026-02-11"),  # Friday: Mon, Tue, Wed
        ("2026-02-07", "2026-02-11"),  # Saturday: Wednesday too
        ("2026-02-08", "2026-02-11"),  # Sunday: Wednesday too
        ("2026-02-09", "2026-02-12"),  # Monday: Tue, Wed, Thu
    ],
)
def test_cash_settlement_is_the_third_weekday_after_the_trade(trade: str, settles: str) -> None:
    assert cash_settlement(d(trade)) == d(settles)


def test_worked_example_1_dates() -> None:
    """SPEC §14.11 example 1: Friday 14 June 2024, 5Y to 20 June 2029."""
    trade, maturity = d("2024-06-14"), d("2029-06-20")
    assert standard_maturity(trade, 5) == maturity
    assert step_in(trade) == d("2024-06-15")
    assert cash_settlement(trade) == d("2024-06-19")
    assert accrual_start(trade) == d("2024-03-20")
    assert first_coupon(trade) == d("2024-06-20")
    periods = coupon_dates(trade, maturity)
    assert len(periods) == 21
    assert periods[0] == (d("2024-03-20"), d("2024-06-20"), d("2024-06-20"))
    start, end, pay = periods[-1]
    # 20 March to 20 June 2029 is 11 + 30 + 31 + 20 = 92 days, +1: the maturity accrues
    assert (start, end, pay) == (d("2029-03-20"), d("2029-06-20"), d("2029-06-20"))
    assert (end - start).days + 1 == 93


def test_accrual_start_after_an_imm_date_on_a_saturday() -> None:
    """SPEC §14.11 example 2: 20 December 2025 is a Saturday, so A is Monday the 22nd."""
    trade = d("2026-02-03")
    assert accrual_start(trade) == d("2025-12-22")
    assert cash_settlement(trade) == d("2026-02-06")
    assert (step_in(trade) - accrual_start(trade)).days == 44  # alpha = 44/360


def test_a_trade_on_a_saturday_steps_in_on_sunday() -> None:
    """SPEC §14.11 example 3: Saturday 7 February 2026."""
    trade = d("2026-02-07")
    assert step_in(trade) == d("2026-02-08")
    assert cash_settlement(trade) == d("2026-02-11")


def test_a_trade_on_the_roll_date() -> None:
    """Friday 20 March 2026: the 5Y rolls to June 2031; A is that very day."""
    trade = d("2026-03-20")
    assert standard_maturity(trade, 5) == d("2031-06-20")
    assert accrual_start(trade) == d("2026-03-20")
    assert first_coupon(trade) == d("2026-06-22")  # 20 June 2026 is a Saturday
    assert coupon_dates(trade, d("2031-06-20"))[0][:2] == (d("2026-03-20"), d("2026-06-22"))


def test_the_day_before_the_roll_steps_in_on_the_imm_date() -> None:
    """Thursday 19 March 2026: D1 is 20 March, so A = D1; QuantLib's period paid on D1 is past."""
    trade = d("2026-03-19")
    assert standard_maturity(trade, 5) == d("2030-12-20")
    assert accrual_start(trade) == d("2026-03-20")
    assert first_coupon(trade) == d("2026-06-22")
    periods = coupon_dates(trade, d("2030-12-20"))
    assert periods[0][0] == d("2026-03-20")
    assert all(pay > d("2026-03-20") for _, _, pay in periods)


def test_a_last_period_ending_on_a_sunday_pays_monday() -> None:
    trade = d("2026-04-01")
    periods = coupon_dates(trade, d("2026-09-20"))
    assert periods == [
        (d("2026-03-20"), d("2026-06-22"), d("2026-06-22")),
        (d("2026-06-22"), d("2026-09-20"), d("2026-09-21")),
    ]


def test_a_contract_with_one_coupon_period_left_is_not_priceable() -> None:
    trade = d("2026-04-01")  # c1 = 22 June 2026
    assert not priceable(trade, d("2026-06-20"))  # before c1: one period
    assert not priceable(trade, d("2026-06-22"))  # on c1: still one period
    assert priceable(trade, d("2026-09-20"))  # two periods
    assert clean_upfront(trade, d("2026-06-20"), 0.01, 0.02, 0.4, 0.03) is None
    assert clean_upfront(trade, d("2026-09-20"), 0.01, 0.02, 0.4, 0.03) is not None


@pytest.mark.parametrize(
    ("trade", "maturity", "tenor"),
    [
        ("2026-03-23", "2030-12-20", 5),  # after the roll: 4Y is June 2030, 5Y June 2031
        ("2026-03-19", "2030-12-20", 5),  # before the roll: 5Y is December 2030 itself
        ("2026-03-23", "2026-06-20", 1),  # 1Y is June 2027
        ("2026-03-23", "2027-06-20", 1),  # on the standard maturity: that tenor
    ],
)
def test_the_quote_that_prices_a_sell(trade: str, maturity: str, tenor: int) -> None:
    assert quote_tenor_for(d(trade), d(maturity)) == tenor


# -- prices (SPEC §14.6, §14.7, §14.11) -----------------------------------------


def test_worked_example_1_price() -> None:
    trade, maturity = d("2024-06-14"), d("2029-06-20")
    hazard = fit_hazard(trade, maturity, bps_to_double(250), 0.40, 0.03)
    assert hazard == pytest.approx(0.0420866501, abs=1e-10)
    upfront = clean_upfront(trade, maturity, bps_to_double(100), hazard, 0.40, 0.03)
    assert upfront is not None
    assert upfront == pytest.approx(0.063834723498, abs=1e-11)
    assert upfront_fraction_text(upfront) == "0.06383472"
    assert upfront_amount(Decimal("10000000"), upfront) == Decimal("638347.23")


def test_worked_example_2_meta_buy_at_55bp_is_paid_to_the_buyer() -> None:
    trade, maturity = d("2026-02-03"), d("2030-12-20")
    hazard = fit_hazard(trade, maturity, bps_to_double(Decimal("55")), 0.40, 0.03)
    assert hazard == pytest.approx(0.0092581307, abs=1e-10)
    upfront = clean_upfront(trade, maturity, bps_to_double(100), hazard, 0.40, 0.03)
    assert upfront is not None
    assert upfront_fraction_text(upfront) == "-0.02018692"
    assert str(upfront_amount(Decimal("250000000"), upfront)) == "-5046729.34"


def test_worked_example_3_crwv_on_a_saturday_at_the_500bp_coupon() -> None:
    trade, maturity = d("2026-02-07"), d("2030-12-20")
    hazard = fit_hazard(trade, maturity, bps_to_double(Decimal("640")), 0.30, 0.03)
    upfront = clean_upfront(trade, maturity, bps_to_double(500), hazard, 0.30, 0.03)
    assert upfront is not None
    assert upfront_fraction_text(upfront) == "0.05189003"
    assert str(upfront_amount(Decimal("225000000"), upfront)) == "11675255.65"


def test_worked_example_4_a_sell_priced_off_the_next_standard_tenor() -> None:
    trade, bucket = d("2026-03-23"), d("2030-12-20")
    hazard = fit_hazard(trade, d("2031-06-20"), bps_to_double(Decimal("700")), 0.30, 0.03)
    upfront = clean_upfront(trade, bucket, bps_to_double(500), hazard, 0.30, 0.03)
    assert upfront is not None
    assert upfront_fraction_text(upfront) == "0.07143876"
    assert str(upfront_amount(Decimal("225000000"), upfront)) == "16073720.58"


def test_a_spread_equal_to_the_coupon_costs_nothing() -> None:
    """U = (S - C) x (RPV01 / P(Ds) - alpha): zero when S = C."""
    trade, maturity = d("2026-02-03"), d("2030-12-20")
    hazard = fit_hazard(trade, maturity, bps_to_double(100), 0.40, 0.03)
    upfront = clean_upfront(trade, maturity, bps_to_double(100), hazard, 0.40, 0.03)
    assert upfront is not None
    assert abs(upfront) < 1e-12
    assert upfront_fraction_text(upfront) == "0.00000000"
    assert cents_text(upfront_amount(Decimal("5000000"), upfront)) == "0.00"


def test_zero_and_negative_figures_are_written_without_a_negative_zero() -> None:
    assert upfront_fraction_text(-0.000000001) == "0.00000000"
    assert upfront_fraction_text(-0.000000005000001) == "-0.00000001"
    assert upfront_fraction_text(0.00000001) == "0.00000001"  # never "1E-8"
    assert cents_text(upfront_amount(Decimal("1"), -0.001)) == "0.00"
    # the exact product, not a 28-digit one: 0.125 x 0.05 is 0.00625, rounded half-even
    assert cents_text(upfront_amount(Decimal("0.05"), 0.125)) == "0.01"
    assert cents_text(upfront_amount(Decimal("0.04"), 0.125)) == "0.00"


def test_bps_become_the_nearest_double() -> None:
    assert bps_to_double(Decimal("37.5")) == 0.00375
    assert bps_to_double(100) == 0.01
    assert bps_to_double(Decimal("0.0001")) == 1e-8


def test_a_contract_past_quantlibs_calendar_has_no_price() -> None:
    """QuantLib's dates end with 2199: a 10Y or 30Y contract traded in 2199 is not priced."""
    trade = d("2199-06-01")
    assert standard_maturity(trade, 30) == d("2229-06-20")
    assert not priceable(trade, d("2209-06-20"))
    assert fit_hazard(trade, d("2229-06-20"), 0.01, 0.4, 0.03) is None
    assert clean_upfront(trade, d("2209-06-20"), 0.01, 0.02, 0.4, 0.03) is None
    # nothing raises, whatever QuantLib refuses near the end of its calendar
    for month in (6, 9, 12):
        maturity = date(2199, month, 20)
        hazard = fit_hazard(trade, maturity, 0.01, 0.4, 0.03)
        assert hazard is None or isinstance(hazard, float)
        upfront = clean_upfront(trade, maturity, 0.01, hazard or 0.02, 0.4, 0.03)
        assert upfront is None or isinstance(upfront, float)
