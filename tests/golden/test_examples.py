"""`hedger replay` reproduces the SPEC examples field for field, and behaves as a CLI."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.factories import COMPARE_ORDERS, EXAMPLES, prom_samples
from tests.support.cli import hedger


def replay(
    log: Path, tmp: Path, config: Path = EXAMPLES / "hedger.toml"
) -> subprocess.CompletedProcess[str]:
    return hedger(
        "replay",
        str(log),
        "--config",
        str(config),
        "--orders-out",
        str(tmp / "orders.jsonl"),
        "--dead-letters-out",
        str(tmp / "dead.jsonl"),
    )


@pytest.mark.parametrize(
    ("example", "config"),
    [
        ("walkthrough", "hedger.toml"),
        ("stream-2000", "hedger.toml"),
        ("desk-v2", "desk-v2.toml"),
        ("stream-v2-3000", "desk-v2.toml"),
        ("desk-v21", "desk-v21.toml"),
    ],
)
def test_replay_matches_the_contract_examples(example: str, config: str, tmp_path: Path) -> None:
    """Orders, cancels, dead letters, (v2) the seller report and (v2.1) the risk report.

    Field for field; v2.1's price fields and CS01 within SPEC §14.10's tolerances.
    """
    sellers: list[str] = []
    if (EXAMPLES / f"{example}.sellers.jsonl").exists():
        sellers = ["--sellers-out", str(tmp_path / "sellers.jsonl")]
    risk: list[str] = []
    if (EXAMPLES / f"{example}.risk.jsonl").exists():
        risk = ["--risk-out", str(tmp_path / "risk.jsonl")]
    result = hedger(
        "replay",
        str(EXAMPLES / f"{example}.jsonl"),
        "--config",
        str(EXAMPLES / config),
        "--orders-out",
        str(tmp_path / "orders.jsonl"),
        "--dead-letters-out",
        str(tmp_path / "dead.jsonl"),
        *sellers,
        *risk,
    )
    assert result.returncode == 0, result.stderr
    compare_sellers = []
    if sellers:
        compare_sellers = [
            "--sellers",
            str(EXAMPLES / f"{example}.sellers.jsonl"),
            str(tmp_path / "sellers.jsonl"),
        ]
    if risk:
        compare_sellers += [
            "--risk",
            str(EXAMPLES / f"{example}.risk.jsonl"),
            str(tmp_path / "risk.jsonl"),
        ]
    compare = subprocess.run(
        [
            sys.executable,
            str(COMPARE_ORDERS),
            str(EXAMPLES / f"{example}.orders.jsonl"),
            str(tmp_path / "orders.jsonl"),
            str(EXAMPLES / f"{example}.dead.jsonl"),
            str(tmp_path / "dead.jsonl"),
            *compare_sellers,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compare.returncode == 0, compare.stdout


def test_v2_summary_shows_groups_sellers_and_cancels(tmp_path: Path) -> None:
    result = replay(EXAMPLES / "desk-v2.jsonl", tmp_path, EXAMPLES / "desk-v2.toml")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    expected = [json.loads(line) for line in (EXAMPLES / "desk-v2.orders.jsonl").open()]
    cancels = sum(1 for record in expected if record["action"] == "cancel")
    assert f"{len(expected) - cancels} orders and {cancels} cancel requests" in out
    assert "Group risk" in out and "META-GROUP" in out and "ORCL-GROUP" in out
    blocked = [
        json.loads(line)["seller"]
        for line in (EXAMPLES / "desk-v2.sellers.jsonl").open()
        if json.loads(line)["blocked"]
    ]
    rows = {line.split()[1]: line for line in out.splitlines() if line.count("│") > 4}
    for seller in blocked:
        assert "BLOCKED" in rows[seller], out


def test_summary_names_outcomes_reasons_and_issuers(tmp_path: Path) -> None:
    result = replay(EXAMPLES / "walkthrough.jsonl", tmp_path)
    for text in (
        "applied",
        "duplicate",
        "overfill",
        "BUY_PROTECTION / limit_breach",
        "CRWV",
        "HALTED",
        "utilisation",
    ):
        assert text in result.stdout
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert {"line", "topic", "reason", "detail"} <= dead[0].keys()
    assert all(d["detail"] for d in dead)


def test_missing_log_fails_with_a_message(tmp_path: Path) -> None:
    result = replay(tmp_path / "nope.jsonl", tmp_path)
    assert result.returncode != 0
    assert "nope.jsonl" in result.stderr


def test_bad_config_fails_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (
        (EXAMPLES / "hedger.toml")
        .read_text()
        .replace('unwind_ratio = "0.60"', 'unwind_ratio = "0.95"')
    )
    bad.write_text(text)
    result = replay(EXAMPLES / "walkthrough.jsonl", tmp_path, config=bad)
    assert result.returncode != 0
    assert "risk.unwind_ratio" in result.stderr
    check = hedger("check-config", str(bad))
    assert check.returncode != 0
    assert "risk.unwind_ratio" in check.stderr
    assert hedger("check-config", str(EXAMPLES / "hedger.toml")).returncode == 0


@pytest.mark.parametrize(
    "line",
    [
        '{"topic": "loan-bookings", "value": NaN}',
        "[1]",
        '{"value": {}}',
        '{"topic": 5, "value": {}}',
        '{"topic": "loan-bookings"}',
        "{broken",
        '{"topic": "loan-bookings", "value": [1,}',
        '{"topic": "loan-bookings", "value": ' + "[" * 5000 + "]" * 4999 + "}",
    ],
)
def test_corrupt_log_line_stops_the_replay_naming_it(line: str, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    good = (EXAMPLES / "walkthrough.jsonl").read_text().splitlines()[0]
    log.write_text(f"{good}\n\n{line}\n{good}\n")
    result = replay(log, tmp_path)
    assert result.returncode != 0
    assert "line 3" in result.stderr


def test_blank_lines_and_other_topics_are_skipped_but_counted(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '\n{"topic": "audit", "value": 1}\n'
        '{"topic": "loan-bookings", "value": "{bad json"}\n'
        '{"topic": "loan-bookings", "value": [1]}\n'
    )
    result = replay(log, tmp_path)
    assert result.returncode == 0, result.stderr
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [(d["line"], d["reason"]) for d in dead] == [
        (3, "invalid_json"),
        (4, "schema_violation"),
    ]
    assert "skipped (other topic)" in result.stdout


def replay_metrics(example: str, config: str, tmp_path: Path) -> dict[Any, float]:
    """`hedger replay --metrics-out` of an example: its final metric samples."""
    metrics = tmp_path / "final.prom"
    result = hedger(
        "replay",
        str(EXAMPLES / f"{example}.jsonl"),
        "--config",
        str(EXAMPLES / config),
        "--orders-out",
        str(tmp_path / "o.jsonl"),
        "--dead-letters-out",
        str(tmp_path / "d.jsonl"),
        "--metrics-out",
        str(metrics),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    return prom_samples(metrics.read_text())


def test_replay_metrics_out_matches_the_replay(tmp_path: Path) -> None:
    samples = replay_metrics("walkthrough", "hedger.toml", tmp_path)
    orders = (tmp_path / "o.jsonl").read_text().splitlines()
    dead = (tmp_path / "d.jsonl").read_text().splitlines()
    assert sum(v for (n, _), v in samples.items() if n == "hedger_orders_total") == len(orders)
    assert sum(v for (n, _), v in samples.items() if n == "hedger_dead_letters_total") == len(dead)
    # CRWV: L-1 (600m) repaid in full, L-2 (300m) open; NBIS: L-3 2bn and halted
    assert samples[("hedger_issuer_exposure_base", (("issuer", "CRWV"),))] == 300_000_000
    assert samples[("hedger_issuer_exposure_base", (("issuer", "NBIS"),))] == 2_000_000_000
    assert samples[("hedger_issuer_halted", (("issuer", "NBIS"),))] == 1
    assert samples[("hedger_issuer_limit_base", (("issuer", "CRWV"),))] == 750_000_000


def test_payloads_the_parser_cannot_hold_are_dead_letters_not_a_corrupt_log(
    tmp_path: Path,
) -> None:
    """As on the wire: too deep, too long an integer, or not UTF-8 is invalid_json."""
    good = json.loads((EXAMPLES / "walkthrough.jsonl").read_text().splitlines()[0])
    lines = [
        '{"topic": "loan-bookings", "key": "k", "value": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"topic": "cds-executions", "value": {"schema_version": 1, "n": ' + "7" * 5000 + "}}",
        # a raw payload holding a byte that is not UTF-8, as a dump keeps it
        json.dumps({"topic": "loan-bookings", "value": '{"event_id": "\udcff"}'}),
        json.dumps(good),
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n")
    result = replay(log, tmp_path)
    assert result.returncode == 0, result.stderr
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").open()]
    assert [(d["line"], d["reason"]) for d in dead] == [
        (1, "invalid_json"),
        (2, "invalid_json"),
        (3, "invalid_json"),
    ]


def test_v2_metrics_out_show_sellers_cancels_and_the_clock(tmp_path: Path) -> None:
    """Seller gauges equal the SPEC's seller report; cancels and the last tick are counted."""
    samples = replay_metrics("desk-v2", "desk-v2.toml", tmp_path)
    for line in (EXAMPLES / "desk-v2.sellers.jsonl").open():
        seller = json.loads(line)
        labels = (("seller", seller["seller"]),)
        assert samples[("hedger_seller_exposure_base", labels)] == float(seller["exposure"])
        assert samples[("hedger_seller_blocked", labels)] == (1 if seller["blocked"] else 0)
    expected = [json.loads(line) for line in (EXAMPLES / "desk-v2.orders.jsonl").open()]
    cancels = sum(1 for record in expected if record["action"] == "cancel")
    assert samples[("hedger_cancel_requests_total", ())] == cancels
    # the log's last tick: w-39 at 2026-03-26T18:00:00Z
    assert samples[("hedger_clock_last_tick_timestamp_seconds", ())] == 1_774_548_000
    assert samples[("hedger_group_limit_base", (("group", "META-GROUP"),))] == 7_000_000_000


def _without_pricing(tmp: Path) -> Path:
    """desk-v21.toml less its [pricing] tables: the desk of desk-v2 (SPEC §8)."""
    text = (EXAMPLES / "desk-v21.toml").read_text()
    config = tmp / "no-pricing.toml"
    config.write_text(text[: text.index("\n[pricing]\n")])
    return config


def test_without_pricing_quotes_are_skipped_and_orders_carry_no_price(tmp_path: Path) -> None:
    """SPEC §2, §9: cds-quotes is no input topic; v2 records only, no risk figures priced."""
    result = hedger(
        "replay",
        str(EXAMPLES / "desk-v21.jsonl"),
        "--config",
        str(_without_pricing(tmp_path)),
        "--orders-out",
        str(tmp_path / "orders.jsonl"),
        "--dead-letters-out",
        str(tmp_path / "dead.jsonl"),
        "--risk-out",
        str(tmp_path / "risk.jsonl"),
    )
    assert result.returncode == 0, result.stderr
    orders = [json.loads(line) for line in (tmp_path / "orders.jsonl").open()]
    assert orders and {o["action"] for o in orders} <= {"new", "cancel"}
    assert not any("quote_tenor_years" in o for o in orders)
    assert {o["coupon_bps"] for o in orders if o["action"] == "new"} == {100}
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").open()]
    assert all(d["topic"] != "cds-quotes" for d in dead)
    # the bad tick of line 38 is still a dead letter; the bad quotes around it are skipped
    assert [(d["line"], d["reason"]) for d in dead if d["topic"] == "desk-clock"] == [
        (38, "schema_violation")
    ]
    quote_lines = sum(1 for line in (EXAMPLES / "desk-v21.jsonl").open() if '"cds-quotes"' in line)
    (skipped,) = [line for line in result.stdout.splitlines() if "skipped (other topic)" in line]
    assert skipped.split("│")[2].strip() == str(quote_lines)
    assert "Quotes held" not in result.stdout
    risk = [json.loads(line) for line in (tmp_path / "risk.jsonl").open()]
    assert risk and all(r["recovery"] == "0.40" and r["cs01"] is None for r in risk)
    assert all(r["quoted_spread_bps"] is None and r["quote_as_of"] is None for r in risk)


def test_v21_summary_shows_quotes_withheld_legs_and_jtd(tmp_path: Path) -> None:
    result = replay(EXAMPLES / "desk-v21.jsonl", tmp_path, EXAMPLES / "desk-v21.toml")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    expected = [json.loads(line) for line in (EXAMPLES / "desk-v21.orders.jsonl").open()]
    withheld = sum(1 for record in expected if record["action"] == "withhold")
    assert f"and {withheld} withheld legs" in out
    assert "Quotes held" in out and "Withheld buys" in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.count("│") > 8}
    for line in (EXAMPLES / "desk-v21.risk.jsonl").open():
        risk = json.loads(line)
        jtd = f"{float(risk['jtd']):,.2f}"
        assert jtd in rows[risk["issuer"]], out


def test_risk_out_is_checked_like_every_output(tmp_path: Path) -> None:
    """The risk report may not overwrite the log, the configuration or another output."""
    result = hedger(
        "replay",
        str(EXAMPLES / "desk-v21.jsonl"),
        "--config",
        str(EXAMPLES / "desk-v21.toml"),
        "--orders-out",
        str(tmp_path / "orders.jsonl"),
        "--dead-letters-out",
        str(tmp_path / "dead.jsonl"),
        "--risk-out",
        str(tmp_path / "orders.jsonl"),
    )
    assert result.returncode != 0
    assert "orders.jsonl" in result.stderr and "Traceback" not in result.stderr


def test_v21_metrics_out_show_price_and_risk(tmp_path: Path) -> None:
    """Upfronts, withheld legs, JTD and CS01 on /metrics equal the SPEC example's records."""
    samples = replay_metrics("desk-v21", "desk-v21.toml", tmp_path)
    expected = [json.loads(line) for line in (EXAMPLES / "desk-v21.orders.jsonl").open()]
    withheld: dict[tuple[str, str], int] = {}
    paid: dict[str, float] = {}
    received: dict[str, float] = {}
    for record in expected:
        if record["action"] == "withhold":
            key = (record["issuer_id"], record["reason"])
            withheld[key] = withheld.get(key, 0) + 1
        elif record["action"] == "new" and record["upfront_amount"] is not None:
            amount = float(record["upfront_amount"])  # every order of the example is in USD
            if record["side"] == "SELL_PROTECTION":
                amount = -amount
            book = paid if amount > 0 else received
            book[record["issuer_id"]] = book.get(record["issuer_id"], 0.0) + abs(amount)
    for (issuer, reason), n in withheld.items():
        labels = (("issuer", issuer), ("reason", reason))
        assert samples[("hedger_withheld_legs_total", labels)] == n
    for name, book in (("paid", paid), ("received", received)):
        for issuer, amount in book.items():
            found = samples[(f"hedger_upfront_{name}_base_total", (("issuer", issuer),))]
            assert abs(found - amount) < 0.1, (name, issuer)
    for line in (EXAMPLES / "desk-v21.risk.jsonl").open():
        risk = json.loads(line)
        labels = (("issuer", risk["issuer"]),)
        assert samples[("hedger_issuer_jtd_base", labels)] == float(risk["jtd"])
        if risk["cs01"] is None:
            assert ("hedger_issuer_credit_spread_risk_base", labels) not in samples
        else:
            cs01 = samples[("hedger_issuer_credit_spread_risk_base", labels)]
            assert abs(cs01 - float(risk["cs01"])) < 0.02
        if risk["quoted_spread_bps"] is not None:
            tenor = (("issuer", risk["issuer"]), ("tenor", str(risk["hedge_tenor_years"])))
            assert samples[("hedger_quote_spread_bps", tenor)] == float(risk["quoted_spread_bps"])


def test_a_bad_pricing_table_is_one_line_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (EXAMPLES / "desk-v21.toml").read_text()
    bad.write_text(text.replace('discount_rate = "0.03"', "discount_rate = 0.03"))
    outputs = ["--orders-out", str(tmp_path / "o.jsonl"), "--dead-letters-out", str(tmp_path / "d")]
    replay_bad = ["replay", str(EXAMPLES / "desk-v21.jsonl"), "--config", str(bad), *outputs]
    for command in (["check-config", str(bad)], replay_bad):
        result = hedger(*command)
        assert result.returncode != 0
        assert "pricing.discount_rate" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    check = hedger("check-config", str(EXAMPLES / "desk-v21.toml"))
    assert check.returncode == 0 and "CRWV coupon 500bp max 900" in check.stdout
