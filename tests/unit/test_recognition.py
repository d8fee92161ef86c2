"""Recognised value of protection (SPEC §4): maturity, currency, restructuring."""

from datetime import date
from decimal import Decimal

from hedger.engine import HedgingEngine
from hedger.recognition import Recognition, mismatch_factor
from tests.factories import booked, make_config, protection


def test_two_and_a_half_years_against_four_is_recognised_at_0_6() -> None:
    # (2.5 - 0.25) / (4 - 0.25) = 2.25 / 3.75 = 0.6
    assert mismatch_factor(Decimal("2.5"), Decimal("4")) == Decimal("0.6")


def test_protection_outliving_the_exposure_counts_in_full() -> None:
    assert mismatch_factor(Decimal("4"), Decimal("4")) == 1
    assert mismatch_factor(Decimal("7"), Decimal("4")) == 1


def test_under_three_months_left_against_a_longer_exposure_counts_zero() -> None:
    assert mismatch_factor(Decimal("0.24"), Decimal("4")) == 0
    # exactly 3 months is recognised, at factor 0
    assert mismatch_factor(Decimal("0.25"), Decimal("4")) == 0


def test_expired_protection_counts_zero_even_with_no_exposure() -> None:
    assert mismatch_factor(Decimal("0"), Decimal("0")) == 0
    assert mismatch_factor(Decimal("-1"), Decimal("0")) == 0


def test_usd_xr14_worth_40m_against_eur_exposure_is_22_08m() -> None:
    # Base EUR; 50m USD at 0.8 is worth 40m EUR: 40m x 0.6 (XR14) x 0.92 (FX) = 22.08m
    config = make_config(risk={"base_currency": "EUR"}, fx={"EUR": "1", "USD": "0.8"})
    recognition = Recognition(date(2026, 1, 2), Decimal(2), "EUR", config.fx)
    unit = recognition.unit_value(date(2030, 6, 20), "USD", "XR14")
    assert Decimal(50_000_000) * unit == Decimal("22080000.00")
    # same currency, full restructuring: the rate alone
    assert recognition.unit_value(date(2030, 6, 20), "EUR", "MR14") == 1


def test_engine_applies_all_three_factors_to_held_protection() -> None:
    config = make_config(
        risk={"base_currency": "EUR", "default_issuer_limit": "1000000000"},
        fx={"EUR": "1", "USD": "0.8"},
        issuers={},
    )
    engine = HedgingEngine(config)
    engine.process("loan-bookings", booked("L1", "50000000", currency="EUR", maturity="2029-01-02"))
    engine.process(
        "cds-executions",
        protection("50000000", currency="USD", doc="XR14", maturity="2029-06-20"),
    )
    (view,) = engine.views()
    assert view.exposure_currency == "EUR"
    assert view.coverage == Decimal("22080000.00")
    assert view.residual == Decimal("27920000.00")


def test_maturity_mismatch_uses_day_counts() -> None:
    # D = 2026-01-02; loan matures 2030-01-02 (1461 days: T = 1461/365),
    # protection 2029-01-01 (1095 days = 3 years exactly): mm = 2.75 / (1461/365 - 0.25)
    config = make_config(issuers={})
    engine = HedgingEngine(config)
    engine.process("loan-bookings", booked("L1", "100000000", maturity="2030-01-02"))
    engine.process("cds-executions", protection("10000000", maturity="2029-01-01"))
    (view,) = engine.views()
    expected = (
        Decimal(10_000_000)
        * (Decimal(3) - Decimal("0.25"))
        / (Decimal(1461) / Decimal(365) - Decimal("0.25"))
    )
    assert abs(view.coverage - expected) < Decimal("0.000001")
    assert round(view.coverage, 2) == Decimal("7327979.56")  # 27.5m / 3.7527397
