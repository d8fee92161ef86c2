"""Money and decimal helpers shared by the whole core (SPEC §1).

Owns: the money grammar, the 2-decimal half-even rounding used on every
reported figure, and the constants of the recognition rules. Imports only the
standard library.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

# `[0-9]`, not `\d`: `\d` also matches non-ASCII digits such as "٣".
_MONEY = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
MONEY_CEILING = Decimal(10) ** 15
CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)


def parse_money(text: object) -> Decimal | None:
    """Return the amount of a SPEC money string, or None when it is not one.

    A money string is plain decimal notation with at most 2 decimals, greater
    than 0 and below 10^15.
    """
    if type(text) is not str or _MONEY.fullmatch(text) is None:
        return None
    value = Decimal(text)
    if value <= ZERO or value >= MONEY_CEILING:
        return None
    return value


def to_cents(value: Decimal) -> str:
    """Format a figure with 2 decimals, rounded half-even (never "-0.00")."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_EVEN)
    if rounded.is_zero():
        rounded = abs(rounded)
    return str(rounded)


def whole(value: Decimal) -> str:
    """Format a whole amount (an order notional) as an integer string."""
    return str(int(value))


# A spread or a recovery (SPEC §1, v2.1): digits, optionally a point and 1 to 4 digits.
_RATE = re.compile(r"[0-9]+(?:\.[0-9]{1,4})?")
MAX_SPREAD_BPS = Decimal(10000)
MAX_RECOVERY = Decimal("0.95")


def parse_spread(text: object) -> Decimal | None:
    """The value of a spread string in bp (> 0 and <= 10000), or None when it is not one."""
    if type(text) is not str or _RATE.fullmatch(text) is None:
        return None
    value = Decimal(text)
    return value if ZERO < value <= MAX_SPREAD_BPS else None


def parse_recovery(text: object) -> Decimal | None:
    """The value of a recovery string (a fraction, at most 0.95), or None when it is not one."""
    if type(text) is not str or _RATE.fullmatch(text) is None:
        return None
    value = Decimal(text)
    return value if value <= MAX_RECOVERY else None


def signed_text(value: Decimal) -> str:
    """Plain notation, never `"-0..."`: `str()` would give "0E-8" and "1E-8" for such decimals."""
    return format(abs(value) if value.is_zero() else value, "f")


def cents_text(value: Decimal) -> str:
    """A figure with 2 decimals, never `"-0.00"`."""
    return signed_text(value.quantize(CENT, rounding=ROUND_HALF_EVEN))
