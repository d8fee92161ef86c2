"""The pure hedging core: SPEC contract v1 as synchronous, deterministic Python.

Owns the domain (events, loans, protection, orders), the risk measures and the
hedge decision. Money is `decimal.Decimal` in the default context; the as-of
date always comes from the event being processed, never from the wall clock.

May import: the standard library and pydantic. Never Faust, aiokafka,
prometheus_client, structlog or environment variables: those are adapters and
live in `streams/`.
"""
