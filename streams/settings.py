"""Every setting of the bot, from one source: the contract file and the Kafka connection.

Owns: the connection settings, read with pydantic-settings from
command-line values over `HEDGER_*` environment variables over defaults
(the contract configuration is read by `streams.config_file`, re-exported
here as `load_config`):

* `KafkaSettings`: broker address, security (PLAINTEXT, SSL, SASL_PLAINTEXT,
  SASL_SSL with PLAIN or SCRAM), topic names (`TopicNames`,
  `HEDGER_TOPIC_*`), and the keyword arguments every aiokafka client
  (`client_options`) and the Faust app (`faust_options`) are built with.
  Every command that talks to Kafka builds its clients from here.
* `WorkerSettings`: the above plus what only the daemon needs (app id,
  partitions, ports, batching).

The SASL password is a `SecretStr` (or read from `HEDGER_SASL_PASSWORD_FILE`),
so it never appears in a repr, a settings dump, a log line or an error.
`load_settings` turns a validation failure into one `SettingsError` line that
names the setting. Imports the standard library, pydantic(-settings),
aiokafka's and faust's credential helpers, `hedger.control`/`hedger.events`
and `streams.config_file`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hedger.control import CONTROL_TOPIC
from hedger.events import CLOCK_TOPIC, EXECUTION_TOPIC, LOAN_TOPIC, QUOTE_TOPIC
from streams.config_file import load_config as load_config

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
ENV_PREFIX = "HEDGER_"
TOPIC_ENV_PREFIX = "HEDGER_TOPIC_"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


# -- the Kafka connection ---------------------------------------------------


class SettingsError(ValueError):
    """Invalid connection settings: one line naming the setting, never a secret."""


class TopicNames(BaseSettings):
    """Names of every topic the bot reads or writes (`HEDGER_TOPIC_<FIELD>`)."""

    model_config = SettingsConfigDict(env_prefix=TOPIC_ENV_PREFIX, frozen=True)

    loan_bookings: str = LOAN_TOPIC
    cds_executions: str = EXECUTION_TOPIC
    desk_clock: str = CLOCK_TOPIC  # v2: clock.tick, no key
    cds_quotes: str = QUOTE_TOPIC  # v2.1: read only when the configuration has [pricing]
    loans: str = "hedger-loans"  # internal: loan events keyed by loan_id
    journal: str = "hedger-journal"  # internal: every valid event keyed by hedging unit
    seller_parts: str = "hedger-seller-parts"  # internal: moved parts keyed by seller
    orders: str = "cds-hedge-orders"
    dead_letters: str = "hedger-dead-letters"
    control: str = CONTROL_TOPIC

    @classmethod
    def prefixed(cls, prefix: str) -> TopicNames:
        """Every topic named `{prefix}-{field with dashes}`: a private set of topics
        (tests and benchmarks sharing one broker)."""
        fields = cls.model_fields
        return cls(**{name: f"{prefix}-{name.replace('_', '-')}" for name in fields})


class KafkaSettings(BaseSettings):
    """Where the broker is, how to authenticate, and the topic names."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    bootstrap: str = DEFAULT_BOOTSTRAP  # HOST:PORT[,HOST:PORT...]
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None  # read once, at validation
    ssl_cafile: Path | None = None  # CA bundle for SSL/SASL_SSL (default: the system's)
    # Replicas of every topic the bot creates: inputs and outputs, internal
    # topics and table changelogs. 1 suits one local broker; a production
    # cluster of 3 or more brokers wants 3 (with min.insync.replicas=2).
    replication_factor: int = Field(default=1, ge=1, le=32767)
    topics: TopicNames = Field(default_factory=TopicNames)

    @field_validator("bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host:
                raise ValueError(f"{server.strip()!r} is not HOST:PORT")
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"port {port!r} of {server.strip()!r} is not in 1-65535")
        return value

    @field_validator("ssl_cafile")
    @classmethod
    def _check_cafile(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                with value.open("rb"):
                    pass
            except OSError as exc:
                raise ValueError(f"cannot read CA file {str(value)!r}: {exc.strerror}") from None
        return value

    @model_validator(mode="after")
    def _check_sasl(self) -> KafkaSettings:
        if self.sasl_password is None and self.sasl_password_file is not None:
            file = self.sasl_password_file
            try:
                secret = file.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
                raise ValueError(
                    f"HEDGER_SASL_PASSWORD_FILE: cannot read {str(file)!r}: {reason}"
                ) from None
            # frozen model: set the field once, here, before anyone reads it
            object.__setattr__(self, "sasl_password", SecretStr(secret))
        if self.sasl:
            if not self.sasl_username:
                raise ValueError(
                    f"HEDGER_SASL_USERNAME: required with security protocol "
                    f"{self.security_protocol}"
                )
            if self.sasl_password is None or not self.sasl_password.get_secret_value():
                raise ValueError(
                    f"HEDGER_SASL_PASSWORD (or HEDGER_SASL_PASSWORD_FILE): required with "
                    f"security protocol {self.security_protocol}"
                )
        return self

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    @property
    def tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    def secret(self) -> str | None:
        """The SASL password, for the log redactor only."""
        return None if self.sasl_password is None else self.sasl_password.get_secret_value()

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context trusting `ssl_cafile` (or the system CAs) when TLS is on."""
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context  # only live commands load aiokafka

        cafile = None if self.ssl_cafile is None else str(self.ssl_cafile)
        return create_ssl_context(cafile=cafile)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka producer, consumer or admin client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.secret()
        return options

    def faust_options(self) -> dict[str, Any]:
        """The Faust app's broker URL and credentials (SASL and/or TLS)."""
        import faust  # only the worker loads Faust

        urls = [f"kafka://{server.strip()}" for server in self.bootstrap.split(",")]
        options: dict[str, Any] = {"broker": urls[0] if len(urls) == 1 else urls}
        context = self.ssl_context()
        if self.sasl:
            options["broker_credentials"] = faust.SASLCredentials(
                username=self.sasl_username,
                password=self.secret(),
                mechanism=self.sasl_mechanism,
                ssl_context=context,
            )
        elif context is not None:
            options["broker_credentials"] = faust.SSLCredentials(context)
        return options

    def masked(self) -> dict[str, object]:
        """Settings for logs and banners: secrets replaced by '**********'."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'


class WorkerSettings(KafkaSettings):
    """Everything the daemon needs besides the contract configuration."""

    app_id: str = "cds-hedger"
    # Partitions of the internal topics (and of topics the worker creates);
    # the unit of scale-out: more partitions, more workers.
    partitions: int = Field(default=4, ge=1)
    # Where the tables live between restarts (docs/performance.md, "Recovery"):
    # memory:// restores every table from its changelog at each start;
    # rocksdb:// keeps a snapshot per changelog partition under data_dir and
    # reads only the changelog written since.
    store: Literal["memory://", "rocksdb://"] = "memory://"
    data_dir: str = "build/worker-data"
    # A table restore that takes longer logs one WARNING with the offsets left.
    recovery_warn_after: float = Field(default=30.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_bind: str = "127.0.0.1"
    # Seconds a partition's lane, woken by new records, waits for more before
    # its transaction: 0 commits as soon as the previous transaction ends
    # (lowest latency); more gives fewer, larger transactions (throughput
    # against latency: each transaction costs a few broker round trips).
    commit_interval: float = Field(default=0.0, ge=0)
    # Records per poll, so at most per transaction and input partition.
    batch_size: int = Field(default=500, ge=1)
    # Seconds one poll waits for records when none are ready.
    batch_wait: float = Field(default=0.02, gt=0)
    # How long a dead worker keeps its partitions before the group moves
    # them: Faust's 60 s default would stall a restarted worker for a minute.
    session_timeout: float = Field(default=10.0, gt=0)
    # /ready turns 503 when a partition had lag and no commit for this long
    # (a stalled partition), or when the broker does not answer.
    stall_timeout: float = Field(default=30.0, gt=0)
    # Seconds between the summary lines of a broker outage.
    log_summary_every: float = Field(default=10.0, gt=0)
    # retention.ms of the topics the worker creates (-1: kept forever).
    # The journal is the record replayed for audit and backtest-live parity,
    # the control topic the record of operator halts: both kept forever by
    # default. Orders: 30 days (consumers read them within seconds).
    retention_journal_ms: int = Field(default=-1, ge=-1)
    retention_orders_ms: int = Field(default=30 * 24 * 3600 * 1000, ge=-1)
    retention_control_ms: int = Field(default=-1, ge=-1)

    @field_validator("retention_journal_ms", "retention_orders_ms", "retention_control_ms")
    @classmethod
    def _check_retention(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be -1 (forever) or a positive number of milliseconds")
        return value


S = TypeVar("S", bound=KafkaSettings)


def load_settings(cls: type[S], **given: Any) -> S:
    """Settings from `given` (command-line values; None means not given) over the environment.

    Raises `SettingsError` with one line naming the first bad setting (its
    variable, and its flag when the value came from one).
    """
    values = {name: value for name, value in given.items() if value is not None}
    try:
        return cls(**values)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc, set(values))) from None


def flag_name(field: str) -> str:
    """The command-line flag of a setting: `sasl_username` -> `--sasl-username`."""
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    """The environment variable of a setting: `sasl_username` -> `HEDGER_SASL_USERNAME`."""
    return ENV_PREFIX + field.upper()


_SECRET_FIELDS = frozenset({"sasl_password"})


def _one_line(exc: ValidationError, flags: set[str]) -> str:
    """The first error as `HEDGER_NAME: problem`, without the offending input if secret."""
    error = exc.errors(include_url=False, include_context=False)[0]
    loc = [str(part) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:  # a model-level check: its message names the setting
        return message
    if loc[0] == "topics" and len(loc) > 1:
        name = TOPIC_ENV_PREFIX + loc[1].upper()
    else:
        name = env_name(loc[0])
        if loc[0] in flags:
            name += f" ({flag_name(loc[0])})"
    message = message[0].lower() + message[1:]
    given = error.get("input")
    if error["type"] != "value_error" and loc[0] not in _SECRET_FIELDS:
        if isinstance(given, str | int | float) and not isinstance(given, bool):
            message += f", not {given!r}"
    return f"{name}: {message}"


def connection(kafka: KafkaSettings | str) -> KafkaSettings:
    """Settings as given, or from a bare HOST:PORT (security from the environment)."""
    if isinstance(kafka, KafkaSettings):
        return kafka
    return load_settings(KafkaSettings, bootstrap=kafka)
