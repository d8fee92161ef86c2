"""Typed, frozen configuration of the contract (SPEC §8).

Owns: the `[risk]`, `[hedge]`, `[fx]` and `[issuers.ID]` sections, their
validation and the derived limit of an issuer. Input is an already-parsed
mapping (the adapter reads the TOML file), so this module never touches the
file system or the environment. Imports the standard library and pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)

from hedger.numbers import ONE, ZERO

DOC_CLAUSES = frozenset({"CR14", "MR14", "MM14", "XR14"})
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending field."""


def _positive_decimal(value: object) -> Decimal:
    # A TOML number would arrive here as float or int: money must never be a
    # float, so only strings are accepted (SPEC §8).
    if type(value) is not str:
        raise ValueError(f'must be a decimal string such as "1.00", got {type(value).__name__}')
    if _DECIMAL.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a plain decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the regex already rules this out
        raise ValueError(f"{value!r} is not a decimal") from exc
    if number <= ZERO:
        raise ValueError(f"must be greater than 0, got {value}")
    return number


def _positive_int(value: object) -> int:
    if type(value) is not int or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


def _currency(value: object) -> str:
    if type(value) is not str or _CURRENCY.fullmatch(value) is None:
        raise ValueError(f"must be 3 upper-case letters, got {value!r}")
    return value


def _doc_clause(value: object) -> str:
    if value not in DOC_CLAUSES:
        raise ValueError(f"must be one of {' '.join(sorted(DOC_CLAUSES))}, got {value!r}")
    assert isinstance(value, str)
    return value


def _text(value: object) -> str:
    if type(value) is not str or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _flag(value: object) -> bool:
    if type(value) is not bool:
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _tenors(value: object) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("must be a non-empty list of positive integers")
    return tuple(_positive_int(item) for item in value)


PositiveDecimal = Annotated[Decimal, PlainValidator(_positive_decimal)]
PositiveInt = Annotated[int, PlainValidator(_positive_int)]
Currency = Annotated[str, PlainValidator(_currency)]
DocClause = Annotated[str, PlainValidator(_doc_clause)]
Text = Annotated[str, PlainValidator(_text)]
Flag = Annotated[bool, PlainValidator(_flag)]
Tenors = Annotated[tuple[int, ...], PlainValidator(_tenors)]

_FROZEN = ConfigDict(frozen=True, extra="ignore")


class RiskSettings(BaseModel):
    """`[risk]`: the limit framework and the hedge bands."""

    model_config = _FROZEN

    base_currency: Currency
    tier1_capital: PositiveDecimal
    large_exposure_limit_pct: PositiveDecimal
    default_issuer_limit: PositiveDecimal
    trigger_ratio: PositiveDecimal
    target_ratio: PositiveDecimal
    unwind_ratio: PositiveDecimal
    max_maturity_years: PositiveDecimal

    @model_validator(mode="after")
    def _bands_in_order(self) -> RiskSettings:
        if self.large_exposure_limit_pct > 100:
            raise ValueError("large_exposure_limit_pct: must be in (0, 100]")
        if not self.unwind_ratio < self.target_ratio:
            raise ValueError(
                "unwind_ratio: must be below target_ratio (0 < unwind < target <= trigger)"
            )
        if not self.target_ratio <= self.trigger_ratio:
            raise ValueError(
                "target_ratio: must not exceed trigger_ratio (0 < unwind < target <= trigger)"
            )
        return self

    @property
    def regulatory_limit(self) -> Decimal:
        """`tier1_capital x large_exposure_limit_pct / 100`."""
        return self.tier1_capital * self.large_exposure_limit_pct / 100


class HedgeSettings(BaseModel):
    """`[hedge]`: the terms and sizes of the orders the bot emits."""

    model_config = _FROZEN

    tenors_years: Tenors
    lot_size: PositiveDecimal
    min_order_notional: PositiveDecimal
    max_order_notional: PositiveDecimal
    max_decision_notional: PositiveDecimal
    coupon_bps: PositiveInt
    doc_clause: DocClause
    seniority: Text

    @model_validator(mode="after")
    def _sizes_consistent(self) -> HedgeSettings:
        for name in (
            "lot_size",
            "min_order_notional",
            "max_order_notional",
            "max_decision_notional",
        ):
            value: Decimal = getattr(self, name)
            if value != value.to_integral_value():
                raise ValueError(f"{name}: must be a whole number, got {value}")
            if name != "lot_size" and value % self.lot_size != 0:
                raise ValueError(f"{name}: must be a multiple of lot_size ({self.lot_size})")
        if self.min_order_notional > self.max_order_notional:
            raise ValueError("min_order_notional: must not exceed max_order_notional")
        if self.max_order_notional > self.max_decision_notional:
            raise ValueError("max_order_notional: must not exceed max_decision_notional")
        return self


class IssuerSettings(BaseModel):
    """`[issuers.ID]`: an issuer's own limit and halt flag."""

    model_config = _FROZEN

    name: Text | None = None
    limit: PositiveDecimal | None = None
    halted: Flag = False


class HedgerConfig(BaseModel):
    """The whole contract configuration, frozen after validation."""

    model_config = _FROZEN

    risk: RiskSettings
    hedge: HedgeSettings
    fx: dict[Currency, PositiveDecimal]
    issuers: dict[str, IssuerSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _base_rate_is_one(self) -> HedgerConfig:
        base = self.risk.base_currency
        if self.fx.get(base) != ONE:
            raise ValueError(f"fx.{base}: the base currency must have rate 1")
        return self

    def limit_for(self, issuer_id: str) -> Decimal:
        """`L = min(issuer limit or default_issuer_limit, regulatory limit)`."""
        own, default = self.limit_table
        return own.get(issuer_id, default)

    @cached_property
    def limit_table(self) -> tuple[dict[str, Decimal], Decimal]:
        """Limits of the configured issuers, and the limit of any other issuer.

        Looked up on every event; the configuration is frozen, so it is
        computed once (a cached_property lives in the instance dict, which
        pydantic's private attributes would not: their access is slow).
        """
        regulatory = self.risk.regulatory_limit
        own = {
            issuer_id: min(settings.limit, regulatory)
            for issuer_id, settings in self.issuers.items()
            if settings.limit is not None
        }
        return own, min(self.risk.default_issuer_limit, regulatory)

    def is_halted(self, issuer_id: str) -> bool:
        """Whether the configuration halts hedging for this issuer."""
        issuer = self.issuers.get(issuer_id)
        return issuer is not None and issuer.halted


def config_from_mapping(data: Mapping[str, Any]) -> HedgerConfig:
    """Validate a parsed TOML document; raise `ConfigError` naming the field."""
    try:
        return HedgerConfig.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if ":" in message.split(" ", 1)[0]:
            # A cross-field check names its own field; prefix the section.
            raise ConfigError(f"{where}.{message}" if where else message) from None
        if first["type"] == "missing":
            raise ConfigError(f"{where}: required key is missing") from None
        raise ConfigError(f"{where}: {message}") from None


def unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Keys of `[risk]`, `[hedge]` and `[issuers.*]` that the contract does not define.

    They are ignored (a newer file must not stop an older bot) but worth a
    warning: a typo such as `halt = true` would otherwise pass silently.
    """
    found: list[str] = []
    for section, model in (("risk", RiskSettings), ("hedge", HedgeSettings)):
        block = data.get(section)
        if isinstance(block, Mapping):
            found += [f"{section}.{k}" for k in block if k not in model.model_fields]
    issuers = data.get("issuers")
    if isinstance(issuers, Mapping):
        for issuer_id, block in issuers.items():
            if isinstance(block, Mapping):
                found += [
                    f"issuers.{issuer_id}.{k}"
                    for k in block
                    if k not in IssuerSettings.model_fields
                ]
    return found
