"""Helpers shared by test modules: test modules import from here, never from each other.

Each module names what it owns (bookings, topics, journal, accounting, ...). They may
import the code under test, tests/factories.py and the harness modules beside the
tests (worker_harness, prometheus_harness, kafka_broker, property/logs), never a test module.
"""
