"""Settings of the live worker: Kafka connection, topic names, partitions, ports.

Owns: `WorkerSettings`, read from command-line values and `HEDGER_*`
environment variables (pydantic-settings), with the SASL password held as a
`SecretStr` so it never appears in a repr, a log line or an error. The
contract configuration (limits, hedge terms) is not here: that is
`config/hedger.toml`, loaded by `streams.settings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TopicNames(BaseSettings):
    """Names of every topic the worker reads or writes."""

    model_config = SettingsConfigDict(env_prefix="HEDGER_TOPIC_", frozen=True)

    loan_bookings: str = "loan-bookings"
    cds_executions: str = "cds-executions"
    loans: str = "hedger-loans"  # internal: loan events keyed by loan_id
    journal: str = "hedger-journal"  # internal: every valid event keyed by issuer_id
    orders: str = "cds-hedge-orders"
    dead_letters: str = "hedger-dead-letters"
    control: str = "hedger-control"


class WorkerSettings(BaseSettings):
    """Everything the daemon needs besides the contract configuration."""

    model_config = SettingsConfigDict(env_prefix="HEDGER_", frozen=True)

    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "cds-hedger"
    # Partitions of the internal topics (and of topics the worker creates);
    # the unit of scale-out: more partitions, more workers.
    partitions: int = Field(default=4, ge=1)
    topics: TopicNames = Field(default_factory=TopicNames)
    store: Literal["memory://"] = "memory://"  # see README: why not RocksDB
    data_dir: str = "build/worker-data"
    metrics_port: int | None = None
    metrics_bind: str = "127.0.0.1"
    commit_interval: float = Field(default=0.5, gt=0)
    # Agents process up to batch_size events at a time, waiting at most
    # batch_wait seconds to fill a batch: throughput against latency.
    batch_size: int = Field(default=500, ge=1)
    batch_wait: float = Field(default=0.005, gt=0)
    # How long a dead worker keeps its partitions before the group moves
    # them: Faust's 60 s default would stall a restarted worker for a minute.
    session_timeout: float = Field(default=10.0, gt=0)
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    def masked(self) -> dict[str, object]:
        """Settings for logs and banners: secrets replaced by '**********'."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'
