"""One generated log through the core engine: every output line and the final engine.

May import the core (hedger) and tests.property.logs.
"""

from __future__ import annotations

import json
from typing import Any

from hedger.config import HedgerConfig
from hedger.engine import HedgingEngine
from tests.property.logs import CONFIG


def run(
    events: list[tuple[str, dict[str, Any]]], config: HedgerConfig = CONFIG
) -> tuple[list[str], HedgingEngine]:
    """Every output line (outcomes, orders and cancels) in order, and the final engine."""
    engine = HedgingEngine(config)
    lines: list[str] = []
    for topic, event in events:
        outcome = engine.process(topic, event)
        lines.append(json.dumps([outcome.status.value, outcome.reason and outcome.reason.value]))
        lines += [json.dumps(record.to_wire()) for record in outcome.records]
    return lines, engine
