"""The pure hedging core: the business contract (docs/contract.md, v2.1) as
synchronous, deterministic Python.

Owns the domain (events, loans, protection, orders), the risk measures and the
hedge decision, and `CONTRACT_VERSION`, the contract version the core
implements. Money is `decimal.Decimal` in the default context; the as-of date
always comes from the event being processed, never from the wall clock.

May import: the standard library and pydantic. Never Faust, aiokafka,
prometheus_client, structlog or environment variables: those are adapters and
live in `streams/`.
"""

from typing import Final

# The version of the business contract the core implements: what `--version`
# and `hedger_build_info{contract_version}` report.
CONTRACT_VERSION: Final = "2.1"
