"""Configuration validation (SPEC §8): each invalid value names its field."""

from decimal import Decimal
from typing import Any

import pytest

from hedger.config import ConfigError, config_from_mapping, unknown_keys
from tests.factories import config_data, example_config


def test_example_configuration_loads() -> None:
    config = example_config()
    assert config.limit_for("CRWV") == Decimal(750_000_000)
    assert config.limit_for("UNLISTED") == Decimal(5_000_000_000)
    assert config.risk.regulatory_limit == Decimal(15_000_000_000)  # 25% of 60bn
    assert config.is_halted("NBIS")
    assert not config.is_halted("MSFT")


@pytest.mark.parametrize(
    ("section", "values", "field"),
    [
        ("risk", {"unwind_ratio": "0.90"}, "risk.unwind_ratio"),  # unwind >= target
        ("risk", {"target_ratio": "1.10"}, "risk.target_ratio"),  # target > trigger
        ("risk", {"default_issuer_limit": "-1"}, "risk.default_issuer_limit"),
        ("risk", {"tier1_capital": "0"}, "risk.tier1_capital"),
        ("risk", {"large_exposure_limit_pct": "100.5"}, "risk.large_exposure_limit_pct"),
        ("risk", {"max_maturity_years": 5}, "risk.max_maturity_years"),  # TOML number
        ("risk", {"base_currency": "usd"}, "risk.base_currency"),
        ("hedge", {"doc_clause": "XR"}, "hedge.doc_clause"),
        ("hedge", {"tenors_years": []}, "hedge.tenors_years"),
        ("hedge", {"tenors_years": [1, -3]}, "hedge.tenors_years"),
        ("hedge", {"tenors_years": [1, True]}, "hedge.tenors_years"),
        ("hedge", {"lot_size": "1000000.5"}, "hedge.lot_size"),
        ("hedge", {"min_order_notional": "5500000"}, "hedge.min_order_notional"),  # not a multiple
        ("hedge", {"min_order_notional": "300000000"}, "hedge.min_order_notional"),  # > max order
        ("hedge", {"max_order_notional": "2000000000"}, "hedge.max_order_notional"),  # > decision
        ("hedge", {"coupon_bps": "100"}, "hedge.coupon_bps"),
        ("fx", {"USD": "1.01"}, "fx.USD"),  # base without rate 1
        ("fx", {"EUR": "0"}, "fx.EUR"),
        ("issuers", {"ACME": {"limit": "0"}}, "issuers.ACME.limit"),
        ("issuers", {"ACME": {"halted": "yes"}}, "issuers.ACME.halted"),
    ],
)
def test_invalid_value_names_the_field(section: str, values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}\b"):
        config_from_mapping(config_data(**{section: values}))


@pytest.mark.parametrize("key", ["trigger_ratio", "base_currency", "max_maturity_years"])
def test_missing_risk_key(key: str) -> None:
    data = config_data()
    del data["risk"][key]
    with pytest.raises(ConfigError, match=rf"risk\.{key}: required key is missing"):
        config_from_mapping(data)


def test_missing_section_and_missing_base_rate() -> None:
    data = config_data()
    del data["hedge"]
    with pytest.raises(ConfigError, match="hedge"):
        config_from_mapping(data)
    data = config_data()
    data["fx"] = {"EUR": "1.08"}
    with pytest.raises(ConfigError, match=r"fx\.USD"):
        config_from_mapping(data)


def test_another_base_currency() -> None:
    config = config_from_mapping(
        config_data(risk={"base_currency": "EUR"}, fx={"EUR": "1", "USD": "0.92"})
    )
    assert config.fx["EUR"] == 1


def test_unknown_keys_are_refused() -> None:
    # Contract v2 (SPEC §8): a typo such as `halt = true` must stop the bot,
    # never silently lift a halt.
    data = config_data(issuers={"ACME": {"limit": "100", "halt": True}})
    with pytest.raises(ConfigError, match=r"^issuers\.ACME\.halt: unknown key"):
        config_from_mapping(data)
    assert unknown_keys(data) == ["issuers.ACME.halt"]


def test_config_is_frozen() -> None:
    config = example_config()
    with pytest.raises(Exception, match="frozen"):
        config.risk.trigger_ratio = Decimal(2)  # type: ignore[misc]


def test_the_projects_v2_desk_configuration_is_the_spec_examples() -> None:
    import tomllib

    from tests.factories import EXAMPLES, REPO

    ours = config_from_mapping(tomllib.loads((REPO / "config" / "desk-v2.toml").read_text()))
    spec = config_from_mapping(tomllib.loads((EXAMPLES / "desk-v2.toml").read_text()))
    assert ours == spec
    assert set(ours.groups) == {"META-GROUP", "ORCL-GROUP", "NBIS-GROUP"}


def test_the_projects_v21_desk_configuration_is_the_spec_examples() -> None:
    import tomllib

    from tests.factories import EXAMPLES, REPO

    ours = config_from_mapping(tomllib.loads((REPO / "config" / "desk-v21.toml").read_text()))
    spec = config_from_mapping(tomllib.loads((EXAMPLES / "desk-v21.toml").read_text()))
    assert ours == spec
    assert ours.pricing is not None
