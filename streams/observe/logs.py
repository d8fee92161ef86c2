"""Structured logs of the bot (structlog): JSON lines in the daemon, readable on a terminal.

Owns: logging configuration for the bot and for the libraries under it
(Faust, aiokafka go through the same renderer), the redaction of secrets from
every line, and `LogObserver`, which writes one INFO line per order and one
WARNING per dead letter — never an INFO line per event. Imports structlog,
the standard library, `hedger` and `streams.observer`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from hedger.control import ControlCommand
from hedger.issuer import RiskView
from hedger.numbers import to_cents
from hedger.orders import CancelRequest, HedgeOrder
from hedger.sellers import SellerStatus
from streams.observer import DeadLettered, NullObserver, Origin

REDACTED = "**********"


class Redactor:
    """A structlog processor that replaces registered secrets wherever they appear."""

    def __init__(self) -> None:
        self.secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        if secret:
            self.secrets.append(secret)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v) for v in value)
        if self.secrets and not isinstance(value, int | float | bool | type(None)):
            return self.scrub(str(value))
        return value

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        if not self.secrets:
            return event
        return {key: self.scrub(value) for key, value in event.items()}


REDACTOR = Redactor()


def configure(
    *, json: bool | None = None, level: str = "INFO", secrets: Iterable[str | None] = ()
) -> None:
    """Set up structlog and route the standard library's logging through it.

    `json=None` picks JSON unless stderr is a terminal.
    """
    for secret in secrets:
        REDACTOR.add(secret)
    as_json = (not sys.stderr.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        REDACTOR,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # The bot's own lines skip the standard library (an order line per order
    # must stay cheap); the libraries' lines get the same processors and renderer.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            REDACTOR,
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def get_logger(name: str = "hedger") -> Any:
    """The bot's logger; every line names it as `logger`."""
    return structlog.get_logger().bind(logger=name)


class LogObserver(NullObserver):
    """One INFO line per order and cancel, one WARNING per dead letter, halt or blocked seller."""

    def __init__(self, logger: Any | None = None) -> None:
        self.log = logger if logger is not None else get_logger("hedger.worker")

    # on_event stays a no-op: no line per event, the metrics count them

    def on_dead_letter(self, dead: DeadLettered) -> None:
        self.log.warning(
            "event.dead_lettered",
            reason=dead.reason,
            detail=dead.detail,
            stage=dead.stage,
            event_id=dead.event_id,
            issuer_id=dead.issuer_id,
            topic=dead.source.topic,
            partition=dead.source.partition,
            offset=dead.source.offset,
        )

    def on_orders(self, orders: list[HedgeOrder], view: RiskView, source: Origin) -> None:
        for order in orders:
            self.log.info(
                "order.emitted",
                order_id=order.order_id,
                issuer_id=order.issuer_id,
                event_id=order.trigger_event_id,
                side=order.side.value,
                notional=str(order.notional),
                currency=order.currency,
                maturity_date=order.maturity_date.isoformat(),
                reason=order.reason.value,
                exposure=to_cents(order.exposure),
                residual_before=to_cents(order.residual_before),
                residual_after=to_cents(order.residual_after),
                limit=to_cents(order.limit),
            )

    def on_cancels(self, cancels: list[CancelRequest], expired_open: int) -> None:
        for cancel in cancels:
            self.log.info(
                "order.cancel_requested",
                order_id=cancel.order_id,
                issuer_id=cancel.issuer_id,
                reason=cancel.reason,
                event_id=cancel.trigger_event_id,
                as_of=cancel.as_of,
            )

    def on_seller(self, status: SellerStatus, changed: bool) -> None:
        if not changed:
            return
        fields = {
            "seller": status.seller,
            "exposure": to_cents(status.exposure),
            "limit": None if status.limit is None else to_cents(status.limit),
        }
        if status.blocked:
            self.log.warning("seller.blocked", **fields)
        else:
            self.log.info("seller.unblocked", **fields)

    def on_control(self, command: ControlCommand, partition: int | None) -> None:
        fields = {
            "issuer_id": command.target,
            "operator": command.operator,
            "reason": command.reason,
            "event_id": command.event_id,
            "partition": partition,
        }
        if command.command == "halt":
            self.log.warning("hedging.halted", **fields)
        else:
            self.log.info("hedging.resumed", **fields)
