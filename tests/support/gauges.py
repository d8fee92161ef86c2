"""The worker's gauges as scraped, and a desk with four issuers in breach to read them from.

May import the worker harness and tests.support.bookings.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.worker_harness import WorkerProcess, wait_until_idle
from tests.support.bookings import booking, publish_events


def gauges(text: str) -> dict[str, float]:
    wanted = (
        "hedger_open_orders ",
        "hedger_issuers_in_breach ",
        "hedger_issuer_exposure_base{",
        "hedger_issuer_coverage_base{",
        "hedger_issuer_residual_base{",
        "hedger_issuer_limit_base{",
        "hedger_issuer_utilisation_ratio{",
        "hedger_issuer_open_orders{",
        "hedger_issuer_in_breach{",
    )
    found = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


BREACHING = ["CRWV", "MSFT", "ORCL", "META"]


def four_breaching_issuers(worker: WorkerProcess, tmp: Path) -> dict[str, float]:
    """Book 9bn for each of four issuers (each breaches), wait until done: the gauges."""
    publish_events(
        worker, tmp, [booking(10 + n, issuer, "9000000000") for n, issuer in enumerate(BREACHING)]
    )
    wait_until_idle(worker)
    return gauges(worker.scrape())
