"""The price of protection under the ISDA CDS Standard Model (SPEC §14.3–§14.6).

Owns: the dates of the standard contract (adjusted IMM dates, step-in,
cash settlement, accrual start, first coupon, whether a contract is
priceable), the hazard rate fitted to a par spread quote and the clean
upfront of a contract, both through QuantLib's `IsdaCdsEngine` with its
default options on flat curves — the library is the model; nothing here
re-implements it. Prices are binary64 (SPEC §1): they become decimals only
where they are written (`upfront_fraction`, `upfront_amount`), and never feed
back into money, sizing or limits. Imports the standard library and QuantLib
(pure and deterministic: the evaluation date is set from the trade date `D`
before every valuation, never from the wall clock).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import lru_cache

import QuantLib as ql

from hedger.numbers import cents_text as cents_text  # pricing's figures are written with it
from hedger.numbers import signed_text

IMM_MONTHS = (3, 6, 9, 12)
# QuantLib's calendar ends with 2199; a 30-year contract traded late in the
# contract's years (SPEC §1: up to 2199) matures after it and has no price.
LAST_PRICEABLE_DATE = date(2199, 12, 31)
_SATURDAY = 5
_FIT_ACCURACY = 1e-14  # SPEC §14.6: the reference fit (QuantLib Brent) uses 1e-14
_GUESS_STEP = 0.02  # the first step of the bracket search, relative to the guess
_MAX_HAZARD_TIMES_YEARS = 700.0  # the bracket [0, 700 / t(mq)] of SPEC §14.6
_BP = Decimal(10000)
_EIGHT_DECIMALS = Decimal("0.00000001")
_CENT = Decimal("0.01")
# An exact product of a decimal notional (< 10^15, 2 decimals) and a double
# (at most 1074 + 53 significant digits in decimal): 1200 digits hold it whole.
_EXACT = Context(prec=1200)


# -- dates of the standard contract (SPEC §14.3) ------------------------------


def adjusted(day: date) -> date:
    """A Saturday or Sunday moves to the Monday after (no holiday calendar)."""
    weekday = day.weekday()
    return day + timedelta(days=7 - weekday) if weekday >= _SATURDAY else day


def _imm_dates_around(day: date) -> list[date]:
    """The adjusted IMM dates of the year before, of, and after `day`'s year, in order."""
    return [
        adjusted(date(year, month, 20))
        for year in (day.year - 1, day.year, day.year + 1)
        for month in IMM_MONTHS
    ]


def step_in(trade_date: date) -> date:
    """`D1 = D + 1` (calendar day)."""
    return trade_date + timedelta(days=1)


def cash_settlement(trade_date: date) -> date:
    """`Ds`: the third weekday after `D` (Friday, Saturday and Sunday all give Wednesday)."""
    day, weekdays = trade_date, 0
    while weekdays < 3:
        day += timedelta(days=1)
        if day.weekday() < _SATURDAY:
            weekdays += 1
    return day


def accrual_start(trade_date: date) -> date:
    """`A`: the latest adjusted IMM date on or before `D1`."""
    d1 = step_in(trade_date)
    return max(day for day in _imm_dates_around(d1) if day <= d1)


def first_coupon(trade_date: date) -> date:
    """`c1`: the first adjusted IMM date after `D1`."""
    d1 = step_in(trade_date)
    return min(day for day in _imm_dates_around(d1) if day > d1)


def priceable(trade_date: date, maturity: date) -> bool:
    """At least two coupon periods left (`m > c1`), within QuantLib's calendar."""
    return first_coupon(trade_date) < maturity <= LAST_PRICEABLE_DATE


def _ql_date(day: date) -> ql.Date:
    return ql.Date(day.day, day.month, day.year)


def _py_date(day: ql.Date) -> date:
    return date(day.year(), day.month(), day.dayOfMonth())


def coupon_dates(trade_date: date, maturity: date) -> list[tuple[date, date, date]]:
    """Each coupon period `(start, end, pay date)` paying after `D1`, from QuantLib's schedule.

    The schedule is `Schedule(D, m, 3M, WeekendsOnly, Following, Unadjusted,
    CDS2015)`; a first period paid on or before `D1` is left out (it
    contributes nothing).
    """
    schedule = list(_schedule(trade_date, maturity))
    d1 = step_in(trade_date)
    periods = []
    for i in range(1, len(schedule)):
        start, end = _py_date(schedule[i - 1]), _py_date(schedule[i])
        pay = end if i < len(schedule) - 1 else adjusted(end)
        if pay > d1:
            periods.append((start, end, pay))
    return periods


def _schedule(trade_date: date, maturity: date) -> ql.Schedule:
    return ql.Schedule(
        _ql_date(trade_date),
        _ql_date(maturity),
        ql.Period(3, ql.Months),
        ql.WeekendsOnly(),
        ql.Following,
        ql.Unadjusted,
        ql.DateGeneration.CDS2015,
        False,
    )


# -- doubles from the contract's strings (SPEC §1) ------------------------------


def bps_to_double(bps: Decimal | int) -> float:
    """The double nearest to `x / 10000` (the decimal division is exact here)."""
    return float(Decimal(bps) / _BP)


# -- the model (SPEC §14.4–§14.6) ---------------------------------------------


# The date QuantLib's global evaluation date was last set to (only this module
# sets it): checked on every valuation, cheaper than asking QuantLib.
_EVALUATION_DATE: list[date | None] = [None]


def _evaluate_on(trade_date: date, day: ql.Date) -> None:
    ql.Settings.instance().evaluationDate = day
    _EVALUATION_DATE[0] = trade_date


class _Valuation:
    """One contract (trade date, maturity, coupon) on flat curves at a movable hazard rate."""

    __slots__ = ("coupon", "day", "hazard", "swap", "trade_date")

    def __init__(
        self, trade_date: date, maturity: date, coupon: float, recovery: float, rate: float
    ) -> None:
        day = _ql_date(trade_date)
        self.trade_date, self.day, self.coupon = trade_date, day, coupon
        _evaluate_on(trade_date, day)
        self.hazard = ql.SimpleQuote(0.0)
        discount = ql.YieldTermStructureHandle(ql.FlatForward(day, rate, ql.Actual365Fixed()))
        probability = ql.DefaultProbabilityTermStructureHandle(
            ql.FlatHazardRate(day, ql.QuoteHandle(self.hazard), ql.Actual365Fixed())
        )
        self.swap = ql.CreditDefaultSwap(
            ql.Protection.Buyer,
            1.0,
            0.0,
            coupon,
            _schedule(trade_date, maturity),
            ql.Following,
            ql.Actual360(),
            True,  # settlesAccrual
            True,  # paysAtDefaultTime
            _ql_date(step_in(trade_date)),  # protectionStart = D1
            _ql_date(cash_settlement(trade_date)),  # upfrontDate = Ds
            ql.FaceValueClaim(),
            ql.Actual360(True),  # the last period accrues its maturity date
            True,  # rebatesAccrual
            day,  # tradeDate
            3,  # cashSettlementDays
        )
        self.swap.setPricingEngine(ql.IsdaCdsEngine(probability, recovery, discount))

    def _at(self, hazard: float) -> None:
        # QuantLib values at its global evaluation date: always this contract's D.
        if _EVALUATION_DATE[0] != self.trade_date:
            _evaluate_on(self.trade_date, self.day)
        self.hazard.setValue(hazard)

    def clean_value_at(self, spread: float, hazard: float) -> float:
        """`V - S x (RPV01 - alpha x P(Ds))`: the clean value if `spread` were the coupon.

        QuantLib's legs are linear in the coupon: the coupon leg and the
        accrual rebate of this contract, scaled by `S / C`, are those of the
        same contract paying `S`.
        """
        self._at(hazard)
        swap = self.swap
        scale = spread / self.coupon
        return float(swap.defaultLegNPV() + scale * (swap.couponLegNPV() + swap.accrualRebateNPV()))

    def fair_upfront(self, hazard: float) -> float:
        """`U = (V - C x RPV01 + C x alpha x P(Ds)) / P(Ds)`: QuantLib's `fairUpfront()`."""
        self._at(hazard)
        return float(self.swap.fairUpfront())


# Contracts of the as-of dates being decided: a decision prices its legs on a
# handful of standard maturities, so each is built once per trade date.
_VALUATIONS: dict[tuple[date, date, float, float, float], _Valuation] = {}
_MAX_VALUATIONS = 512


def _valuation(
    trade_date: date, maturity: date, coupon: float, recovery: float, rate: float
) -> _Valuation:
    key = (trade_date, maturity, coupon, recovery, rate)
    found = _VALUATIONS.get(key)
    if found is None:
        if len(_VALUATIONS) >= _MAX_VALUATIONS:
            _VALUATIONS.clear()
        found = _VALUATIONS[key] = _Valuation(trade_date, maturity, coupon, recovery, rate)
    return found


def _years(trade_date: date, maturity: date) -> float:
    return (maturity - trade_date).days / 365.0


@lru_cache(maxsize=4096)
def fit_hazard(
    trade_date: date,
    quote_maturity: date,
    spread: float,
    recovery: float,
    rate: float,
    coupon: float = 0.01,
) -> float | None:
    """SPEC §14.6: the flat hazard rate at which the quoted spread as coupon is worth 0 clean.

    The root of the clean value of the standard contract to `quote_maturity`
    paying `spread`, in `[0, 700 / t(mq)]`, by QuantLib's Brent solver at an
    accuracy of 1e-14: bracketed first from the credit-triangle guess
    `S / (1 - R)` within those bounds (6 to 8 valuations where the whole
    bracket takes 9 to 11; the same root to about 1e-16), else on the whole
    bracket. The legs come from the coupon-`coupon` contract (the
    issuer's, so a buy's fit and price share one contract). Memoised: the
    orders and reports of one as-of date share their quotes. None when the
    quote's contract has no price (past QuantLib's calendar), or when the
    solver finds no root in the bracket: a quote never stops the bot.
    """
    if quote_maturity > LAST_PRICEABLE_DATE:
        return None
    upper = _MAX_HAZARD_TIMES_YEARS / _years(trade_date, quote_maturity)
    guess = min(spread / (1.0 - recovery), upper / 2)  # the credit triangle: near the root
    try:
        valuation = _valuation(trade_date, quote_maturity, coupon, recovery, rate)

        def clean_value(hazard: float) -> float:
            return valuation.clean_value_at(spread, hazard)

        near = ql.Brent()
        near.setLowerBound(0.0)
        near.setUpperBound(upper)
        try:
            return float(near.solve(clean_value, _FIT_ACCURACY, guess, guess * _GUESS_STEP))
        except RuntimeError:  # not bracketed near the guess: the whole bracket decides
            return float(ql.Brent().solve(clean_value, _FIT_ACCURACY, guess, 0.0, upper))
    except RuntimeError:
        # QuantLib refuses: a date its calendar cannot hold (it ends with 2199,
        # and looks past a maturity), or a root not bracketed (§14.6 rules it out).
        return None


@lru_cache(maxsize=4096)
def clean_upfront(
    trade_date: date, maturity: date, coupon: float, hazard: float, recovery: float, rate: float
) -> float | None:
    """SPEC §14.6: the clean upfront per unit notional of the coupon contract to `maturity`.

    Paid by the protection buyer when positive; None when the contract is not
    priceable (within its last coupon period, §14.3).
    """
    if not priceable(trade_date, maturity):
        return None
    try:
        return _valuation(trade_date, maturity, coupon, recovery, rate).fair_upfront(hazard)
    except RuntimeError:  # a date past QuantLib's calendar, as in `fit_hazard`
        return None


# -- written figures (SPEC §14.7) ---------------------------------------------


def upfront_fraction_text(upfront: float) -> str:
    """`U` rounded half-even to 8 decimals; `"-"` when negative, `"0.00000000"` when zero."""
    return signed_text(Decimal(upfront).quantize(_EIGHT_DECIMALS, rounding=ROUND_HALF_EVEN))


def upfront_amount(notional: Decimal, upfront: float) -> Decimal:
    """`notional x U` exactly (U unrounded), rounded half-even to cents."""
    product = _EXACT.multiply(notional, Decimal(upfront))
    return product.quantize(_CENT, rounding=ROUND_HALF_EVEN, context=_EXACT)


def clear_caches() -> None:
    """Forget every memoised contract, fit and upfront (benchmarks measure a cold start)."""
    _VALUATIONS.clear()
    fit_hazard.cache_clear()
    clean_upfront.cache_clear()
