"""The local broker's SASL_SSL listener (`scripts/kafka-local start --sasl-ssl-port`).

A broker of its own (the session `secure_kafka` fixture; the `kafka` one is PLAINTEXT only):
SCRAM-SHA-512 over TLS with the throw-away CA at `<dir>/ca.pem`. The right
password round-trips a message; a wrong one is refused by the broker as an
authentication failure; a PLAINTEXT client on the TLS port reads nothing; the
password shows in no output of the script and no file of the broker's dir.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from tests.kafka_broker import LocalKafka, create_topic

pytestmark = pytest.mark.kafka


@pytest.fixture
def topic(secure_kafka: LocalKafka) -> str:
    name = f"secure-{uuid.uuid4().hex[:8]}"
    create_topic(secure_kafka.bootstrap, name, partitions=1)
    return name


async def consume_one(consumer: AIOKafkaConsumer, timeout: float) -> list[bytes]:
    batches = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=1)
    return [record.value for records in batches.values() for record in records]


def test_listener_is_configured_as_asked(secure_kafka: LocalKafka) -> None:
    props = (secure_kafka.dir / "server.properties").read_text()
    assert f"SASL_SSL://127.0.0.1:{secure_kafka.sasl_ssl_port}" in props
    assert "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT," in props
    assert "inter.broker.listener.name=PLAINTEXT" in props
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in props
    assert secure_kafka.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_scram_client_round_trips_a_message(secure_kafka: LocalKafka, topic: str) -> None:
    async def main() -> list[bytes]:
        producer = AIOKafkaProducer(
            bootstrap_servers=secure_kafka.sasl_ssl_bootstrap, **secure_kafka.sasl_ssl_client()
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"over-tls", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=secure_kafka.sasl_ssl_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **secure_kafka.sasl_ssl_client(),
        )
        await consumer.start()
        try:
            return await consume_one(consumer, timeout=20)
        finally:
            await consumer.stop()

    assert asyncio.run(main()) == [b"over-tls"]


def test_wrong_password_is_an_authentication_failure(
    secure_kafka: LocalKafka, caplog: pytest.LogCaptureFixture
) -> None:
    client = secure_kafka.sasl_ssl_client(password="not-" + secure_kafka.scram_password)
    host, port = "127.0.0.1", secure_kafka.sasl_ssl_port
    assert port is not None

    async def connect() -> None:
        conn = await create_conn(host, port, request_timeout_ms=10000, **client)
        conn.close()

    # TLS is fine (the CA is trusted); the broker refuses the SCRAM exchange.
    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        asyncio.run(connect())

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=secure_kafka.sasl_ssl_bootstrap, request_timeout_ms=10000, **client
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    # A client gives up bootstrapping, and logs why.
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        with pytest.raises(KafkaConnectionError):
            asyncio.run(produce())
    assert "SaslAuthenticationFailed" in caplog.text


def test_plaintext_client_on_the_tls_port_reads_nothing(
    secure_kafka: LocalKafka, topic: str
) -> None:
    async def produce_securely() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=secure_kafka.sasl_ssl_bootstrap, **secure_kafka.sasl_ssl_client()
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"secret")
        finally:
            await producer.stop()

    async def read_in_plaintext() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=secure_kafka.sasl_ssl_bootstrap,
            auto_offset_reset="earliest",
            request_timeout_ms=5000,
        )
        try:
            await asyncio.wait_for(consumer.start(), 30)
            return await consume_one(consumer, timeout=5)
        finally:
            await consumer.stop()

    asyncio.run(produce_securely())
    with pytest.raises(KafkaConnectionError):
        asyncio.run(read_in_plaintext())


def test_password_is_never_printed_or_stored(secure_kafka: LocalKafka) -> None:
    password = secure_kafka.scram_password
    assert secure_kafka.scram_user in secure_kafka.start_output
    assert password not in secure_kafka.start_output
    assert password not in repr(secure_kafka)
    for path in secure_kafka.dir.rglob("*"):
        if path.is_file() and path.suffix in ("", ".properties", ".log", ".pem", ".pass"):
            assert password.encode() not in path.read_bytes(), path
