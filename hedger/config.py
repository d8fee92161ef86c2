"""Typed, frozen configuration of the contract (SPEC §8).

Owns: the `[risk]`, `[hedge]`, `[fx]`, `[issuers.ID]`, (v2) `[groups.ID]`
and `[sellers.ID]`, and (v2.1) `[pricing]` and `[pricing.issuers.ID]`
sections, their validation (unknown keys are refused: a typo such as
`halt = true` must stop the bot, never lift a halt), and what is derived from
them: an issuer's limit and hedging unit, a group's limit, a seller's limit,
the wrong-way sellers of an issuer, and an issuer's coupon and maximum
spread. Input is an already-parsed mapping (the adapter reads the TOML file),
so this module never touches the file system or the environment. Imports
the standard library, pydantic and `hedger.numbers`.
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

from hedger.numbers import ONE, ZERO, parse_recovery, parse_spread

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


MAX_TENOR_YEARS = 30  # SPEC §8: with dates up to 2199, no maturity leaves the calendar
SELLER_TYPES = frozenset({"insurer", "fund", "bank", "other"})


def _tenors(value: object) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("must be a non-empty list of positive integers")
    tenors = tuple(_positive_int(item) for item in value)
    if max(tenors) > MAX_TENOR_YEARS:
        raise ValueError(f"each tenor must be at most {MAX_TENOR_YEARS} years, got {max(tenors)}")
    return tenors


def _identifier(value: object) -> str:
    if type(value) is not str or not 1 <= len(value) <= 128:
        raise ValueError(f"must be an identifier of 1 to 128 characters, got {value!r}")
    return value


def _identifiers(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"must be an array of identifiers, got {type(value).__name__}")
    return tuple(_identifier(item) for item in value)


def _seller_type(value: object) -> str:
    if value not in SELLER_TYPES:
        raise ValueError(f"must be one of {' '.join(sorted(SELLER_TYPES))}, got {value!r}")
    assert isinstance(value, str)
    return value


PositiveDecimal = Annotated[Decimal, PlainValidator(_positive_decimal)]
PositiveInt = Annotated[int, PlainValidator(_positive_int)]
Currency = Annotated[str, PlainValidator(_currency)]
DocClause = Annotated[str, PlainValidator(_doc_clause)]
Text = Annotated[str, PlainValidator(_text)]
Flag = Annotated[bool, PlainValidator(_flag)]
Tenors = Annotated[tuple[int, ...], PlainValidator(_tenors)]
Identifiers = Annotated[tuple[str, ...], PlainValidator(_identifiers)]
SellerType = Annotated[str, PlainValidator(_seller_type)]

# Unknown keys are refused (SPEC §8): a misspelt key must never pass silently.
_FROZEN = ConfigDict(frozen=True, extra="forbid")


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
    default_seller_limit: PositiveDecimal | None = None  # v2: absent, such sellers have no limit

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
    order_ttl_days: PositiveInt | None = None  # v2: absent, orders never expire

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


class GroupSettings(BaseModel):
    """`[groups.ID]` (v2): connected clients under one large-exposure limit (SPEC §12)."""

    model_config = _FROZEN

    members: Identifiers
    name: Text | None = None
    limit: PositiveDecimal | None = None

    @model_validator(mode="after")
    def _members_distinct(self) -> GroupSettings:
        if not self.members:
            raise ValueError("members: a group needs at least one member")
        if len(set(self.members)) != len(self.members):
            raise ValueError("members: a member is listed twice")
        return self


class SellerSettings(BaseModel):
    """`[sellers.ID]` (v2): a protection seller's limit and wrong-way ties (SPEC §13)."""

    model_config = _FROZEN

    name: Text | None = None
    limit: PositiveDecimal | None = None
    type: SellerType | None = None
    connected_to: Identifiers = ()


IdentifierKey = Annotated[str, PlainValidator(_identifier)]

MAX_COUPON_BPS = 10000
MAX_DISCOUNT_RATE = Decimal("0.25")


def _coupon(value: object) -> int:
    if type(value) is not int or not 1 <= value <= MAX_COUPON_BPS:
        raise ValueError(f"must be an integer from 1 to {MAX_COUPON_BPS}, got {value!r}")
    return value


def _spread(value: object) -> str:
    if parse_spread(value) is None:
        raise ValueError(
            f'must be a spread string in (0, 10000] with at most 4 decimals such as "250", '
            f"got {value!r}"
        )
    assert isinstance(value, str)
    return value


def _recovery(value: object) -> str:
    if parse_recovery(value) is None:
        raise ValueError(
            f'must be a recovery string of at most 0.95 with at most 4 decimals such as "0.40", '
            f"got {value!r}"
        )
    assert isinstance(value, str)
    return value


def _discount_rate(value: object) -> str:
    if type(value) is not str or _DECIMAL.fullmatch(value) is None or value[0] in "+-":
        raise ValueError(f'must be a decimal string from 0 to 0.25 such as "0.03", got {value!r}')
    if Decimal(value) > MAX_DISCOUNT_RATE:
        raise ValueError(f"must be from 0 to 0.25, got {value}")
    return value


def _days(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"must be an integer >= 0, got {value!r}")
    return value


Coupon = Annotated[int, PlainValidator(_coupon)]
SpreadText = Annotated[str, PlainValidator(_spread)]
RecoveryText = Annotated[str, PlainValidator(_recovery)]
RateText = Annotated[str, PlainValidator(_discount_rate)]
Days = Annotated[int, PlainValidator(_days)]


class PricingIssuerSettings(BaseModel):
    """`[pricing.issuers.ID]` (v2.1): an issuer's own coupon and maximum spread."""

    model_config = _FROZEN

    coupon_bps: Coupon | None = None
    max_spread_bps: SpreadText | None = None


class PricingSettings(BaseModel):
    """`[pricing]` (v2.1): quotes, the ISDA upfront, the guard and the risk report (SPEC §14).

    Spreads, recoveries and the rate stay the strings configured: a recovery
    is written as configured, and each becomes its nearest double only where
    it is priced.
    """

    model_config = _FROZEN

    discount_rate: RateText
    recovery: RecoveryText = "0.40"
    coupon_bps: Coupon | None = None  # absent: [hedge] coupon_bps
    quote_ttl_days: Days = 5
    max_spread_bps: SpreadText | None = None  # absent: no default guard
    issuers: dict[IdentifierKey, PricingIssuerSettings] = Field(default_factory=dict)


class HedgerConfig(BaseModel):
    """The whole contract configuration, frozen after validation."""

    model_config = _FROZEN

    risk: RiskSettings
    hedge: HedgeSettings
    fx: dict[Currency, PositiveDecimal]
    issuers: dict[IdentifierKey, IssuerSettings] = Field(default_factory=dict)
    groups: dict[IdentifierKey, GroupSettings] = Field(default_factory=dict)
    sellers: dict[IdentifierKey, SellerSettings] = Field(default_factory=dict)
    pricing: PricingSettings | None = None  # v2.1: absent, no pricing and v2 holds

    @model_validator(mode="after")
    def _default_coupon_in_range(self) -> HedgerConfig:
        pricing = self.pricing
        if pricing is not None and pricing.coupon_bps is None:
            if self.hedge.coupon_bps > MAX_COUPON_BPS:
                raise ValueError(
                    f"pricing.coupon_bps: absent, so [hedge] coupon_bps ({self.hedge.coupon_bps}) "
                    f"is the coupon and must lie from 1 to {MAX_COUPON_BPS}"
                )
        return self

    @model_validator(mode="after")
    def _base_rate_is_one(self) -> HedgerConfig:
        base = self.risk.base_currency
        if self.fx.get(base) != ONE:
            raise ValueError(f"fx.{base}: the base currency must have rate 1")
        return self

    @model_validator(mode="after")
    def _groups_consistent(self) -> HedgerConfig:
        named = set(self.issuers)
        if self.pricing is not None:
            named.update(self.pricing.issuers)
        for seller in self.sellers.values():
            named.update(seller.connected_to)
        owner: dict[str, str] = {}
        for group_id, group in self.groups.items():
            named.update(group.members)
            for member in group.members:
                if member in owner:
                    raise ValueError(
                        f"groups.{group_id}.members: {member} is already a member of "
                        f"{owner[member]} (an issuer belongs to at most one group)"
                    )
                owner[member] = group_id
        for group_id in self.groups:
            if group_id in named:
                raise ValueError(f"groups.{group_id}: a group id must not be an issuer id")
        return self

    # -- hedging units (SPEC §1, §12) ----------------------------------

    @cached_property
    def unit_table(self) -> dict[str, str]:
        """The group of each grouped issuer; an issuer not in it is its own unit."""
        return {
            member: group_id for group_id, group in self.groups.items() for member in group.members
        }

    def unit_of(self, issuer_id: str) -> str:
        """The hedging unit of an issuer: its group's id, else its own id."""
        return self.unit_table.get(issuer_id, issuer_id)

    def group_of(self, issuer_id: str) -> str | None:
        """The issuer's group, or None."""
        return self.unit_table.get(issuer_id)

    def members_of(self, unit_id: str) -> tuple[str, ...]:
        """The issuers of a unit: a group's members, or the issuer alone."""
        group = self.groups.get(unit_id)
        return group.members if group is not None else (unit_id,)

    @cached_property
    def halted_issuers(self) -> frozenset[str]:
        """Issuers the configuration halts (looked up for every member of every decision)."""
        return frozenset(i for i, settings in self.issuers.items() if settings.halted)

    @cached_property
    def group_limit_table(self) -> dict[str, Decimal]:
        """`L_G = min(group limit, cap)`; without a group limit, the cap."""
        cap = self.risk.regulatory_limit
        return {
            group_id: cap if group.limit is None else min(group.limit, cap)
            for group_id, group in self.groups.items()
        }

    def group_limit(self, group_id: str) -> Decimal:
        """`L_G` of a configured group."""
        return self.group_limit_table[group_id]

    # -- protection sellers (SPEC §13) ----------------------------------

    def seller_limit(self, seller: str) -> Decimal | None:
        """`L_s`: the seller's own limit, else `default_seller_limit`, else none."""
        settings = self.sellers.get(seller)
        if settings is not None and settings.limit is not None:
            return settings.limit
        return self.risk.default_seller_limit

    @cached_property
    def wrong_way_table(self) -> dict[str, tuple[str, ...]]:
        """Configured sellers that are an issuer of the unit or tied to one, per issuer."""
        table: dict[str, tuple[str, ...]] = {}
        issuers = set(self.unit_table) | set(self.issuers)
        for seller in self.sellers.values():
            issuers.update(seller.connected_to)
        for issuer in issuers:
            table[issuer] = self._wrong_way(issuer)
        return table

    def wrong_way(self, issuer_id: str) -> tuple[str, ...]:
        """Sellers never to trade protection on this issuer with (wrong-way risk)."""
        found = self.wrong_way_table.get(issuer_id)
        if found is not None:
            return found
        if issuer_id in self.groups:  # an issuer named like a group: the general rule
            return self._wrong_way(issuer_id)
        # Not in the table: no group and no seller's ties name it, so it is
        # its own unit and only a seller of its own id is wrong-way.
        return (issuer_id,) if issuer_id in self.sellers else ()

    def _wrong_way(self, issuer_id: str) -> tuple[str, ...]:
        unit = set(self.members_of(self.unit_of(issuer_id)))
        return tuple(
            sorted(
                seller_id
                for seller_id, seller in self.sellers.items()
                if seller_id in unit or unit.intersection(seller.connected_to)
            )
        )

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

    # -- the price of protection (SPEC §14.1) ---------------------------

    def coupon_of(self, issuer_id: str) -> int:
        """The issuer's coupon: its own, else `[pricing]`'s, else `[hedge]`'s."""
        pricing = self.pricing
        if pricing is not None:
            own = pricing.issuers.get(issuer_id)
            if own is not None and own.coupon_bps is not None:
                return own.coupon_bps
            if pricing.coupon_bps is not None:
                return pricing.coupon_bps
        return self.hedge.coupon_bps

    def max_spread_of(self, issuer_id: str) -> str | None:
        """The issuer's maximum spread (a spread string), or None: never guarded."""
        pricing = self.pricing
        if pricing is None:
            return None
        own = pricing.issuers.get(issuer_id)
        if own is not None and own.max_spread_bps is not None:
            return own.max_spread_bps
        return pricing.max_spread_bps

    def is_halted(self, issuer_id: str) -> bool:
        """Whether the configuration halts hedging for this issuer."""
        return issuer_id in self.halted_issuers


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
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: unknown key (SPEC §8 defines no such key)") from None
        raise ConfigError(f"{where}: {message}") from None


def unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Every key the contract does not define, as dotted paths (SPEC §8 refuses them all).

    `config_from_mapping` stops at the first; this lists them all for `check-config`.
    """
    found = [f"{k}" for k in data if k not in HedgerConfig.model_fields]
    for section, model in (
        ("risk", RiskSettings),
        ("hedge", HedgeSettings),
        ("pricing", PricingSettings),
    ):
        block = data.get(section)
        if isinstance(block, Mapping):
            found += [f"{section}.{k}" for k in block if k not in model.model_fields]
    for section, entry_model in (
        ("issuers", IssuerSettings),
        ("groups", GroupSettings),
        ("sellers", SellerSettings),
    ):
        blocks = data.get(section)
        if isinstance(blocks, Mapping):
            for entry_id, block in blocks.items():
                if isinstance(block, Mapping):
                    found += [
                        f"{section}.{entry_id}.{k}"
                        for k in block
                        if k not in entry_model.model_fields
                    ]
    pricing = data.get("pricing")
    issuers = pricing.get("issuers") if isinstance(pricing, Mapping) else None
    if isinstance(issuers, Mapping):
        for entry_id, block in issuers.items():
            if isinstance(block, Mapping):
                found += [
                    f"pricing.issuers.{entry_id}.{k}"
                    for k in block
                    if k not in PricingIssuerSettings.model_fields
                ]
    return found
