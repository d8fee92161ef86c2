"""Can we talk to Kafka with these settings? One line saying why not.

Owns: `check_connection`, which opens one connection to a bootstrap server
exactly as the clients will (security protocol, TLS context, SASL) and asks
for metadata, and `describe`, which turns what went wrong — refused
credentials, an untrusted certificate, a TLS client on a plaintext port or
the reverse, nobody listening, no answer — into one line naming the problem
and the setting to look at. aiokafka's own clients only say "Unable to
bootstrap", having logged the reason; every Kafka command calls this first
so that the operator reads the reason. Never includes the password.
Imports the standard library, aiokafka and `streams.settings`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from streams.settings import KafkaSettings

DEFAULT_TIMEOUT = 15.0  # seconds for one server: connect, TLS, SASL and a metadata answer


class KafkaUnavailable(RuntimeError):
    """No bootstrap server could be used; the message (one line) says why."""


async def check_connection(kafka: KafkaSettings, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Return once one bootstrap server answers a metadata request; else `KafkaUnavailable`."""
    options = kafka.client_options()
    options.pop("bootstrap_servers")
    problems = []
    for server in (part.strip() for part in kafka.bootstrap.split(",")):
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(timeout):
                conn = await create_conn(
                    host,
                    int(port),
                    client_id="hedger-check",
                    request_timeout_ms=int(timeout * 1000),
                    **options,
                )
                try:
                    await conn.send(MetadataRequest([]))
                finally:
                    conn.close()
        except Exception as exc:
            problems.append(f"{server}: {describe(exc, kafka, timeout)}")
            continue
        return
    raise KafkaUnavailable(f"cannot use Kafka at {'; '.join(problems)}")


def describe(exc: BaseException, kafka: KafkaSettings, timeout: float = DEFAULT_TIMEOUT) -> str:
    """What went wrong, and which setting to check, in a few words (never the password)."""
    protocol = f"{kafka.security_protocol}? (HEDGER_SECURITY_PROTOCOL)"
    if isinstance(exc, SaslAuthenticationFailed):
        return (
            f"authentication failed: the broker refused the {kafka.sasl_mechanism} credentials "
            f"of user {kafka.sasl_username!r} (check HEDGER_SASL_USERNAME and "
            "HEDGER_SASL_PASSWORD or HEDGER_SASL_PASSWORD_FILE)"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (
            f"the broker does not accept SASL mechanism {kafka.sasl_mechanism} "
            "(HEDGER_SASL_MECHANISM)"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the broker's certificate is not trusted ({exc.verify_message}; "
            "HEDGER_SSL_CAFILE names the CA to trust)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc}): does that listener speak {protocol}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s: does that listener speak {protocol}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens there (HEDGER_BOOTSTRAP)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror}; HEDGER_BOOTSTRAP)"
    if isinstance(exc, KafkaConnectionError | ConnectionError | EOFError):
        return f"the broker closed the connection: does that listener speak {protocol}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} (HEDGER_BOOTSTRAP)"
    return f"{type(exc).__name__}: {exc}"


def quiet_kafka_logs() -> None:
    """Keep aiokafka's own error lines (a reason we report in one line) off a tool's stderr."""
    for name in ("aiokafka", "asyncio"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
