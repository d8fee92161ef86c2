"""Observability: Prometheus metrics and structured logs (both `Observer`s), HTTP endpoints."""
