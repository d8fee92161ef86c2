"""Real single-node Kafka broker for tests, via ``scripts/kafka-local``.

Usage::

    from tests.kafka_broker import LocalKafka, create_topic

    with LocalKafka() as kafka:                 # free ports, temp state dir
        create_topic(kafka.bootstrap, "quotes", partitions=4)
        ...                                     # kafka.bootstrap == "127.0.0.1:<port>"

With ``sasl_ssl=True`` the broker also has a SASL_SSL listener (SCRAM-SHA-512,
a throw-away CA at ``kafka.ca_file``) on ``kafka.sasl_ssl_bootstrap``, for the
user ``kafka.scram_user`` with the password ``kafka.scram_password`` (random
unless given)::

    with LocalKafka(sasl_ssl=True) as kafka:
        AIOKafkaProducer(bootstrap_servers=kafka.sasl_ssl_bootstrap, **kafka.sasl_ssl_client())

or, e.g. in a pytest session fixture::

    kafka = LocalKafka().start()
    yield kafka
    kafka.stop()

Needs Java 17+; the first start on a machine also needs Maven (jars are cached
in ``~/.cache/cds-hedger/kafka``, see ``scripts/kafka-local``). This module
deliberately does not import pytest.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from streams.cli.common import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local"


class KafkaStartError(RuntimeError):
    """``scripts/kafka-local start`` failed; the message holds its output."""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(attempts: int = 50) -> tuple[int, int]:
    """Return ``(port, port + 1)``, both currently free on 127.0.0.1."""
    for _ in range(attempts):
        port = free_port()
        if port < 65535 and _port_free(port) and _port_free(port + 1):
            return port, port + 1
    raise RuntimeError("could not find two adjacent free TCP ports on 127.0.0.1")


class LocalKafka:
    """A broker started with ``scripts/kafka-local``; usable as a context manager.

    ``port=None`` picks free client and controller ports. ``dir=None`` uses a new
    temporary directory that is deleted on ``stop()``; an explicit ``dir`` is
    kept (so data persists across restarts with the same ``port``/``dir``).
    ``sasl_ssl=True`` (or an explicit ``sasl_ssl_port``) adds the SASL_SSL
    listener; its SCRAM user is created when the state dir is first formatted.
    """

    def __init__(
        self,
        port: int | None = None,
        dir: str | os.PathLike[str] | None = None,
        controller_port: int | None = None,
        start_timeout: float = 120.0,
        *,
        sasl_ssl: bool = False,
        sasl_ssl_port: int | None = None,
        scram_user: str = "hedger",
        scram_password: str | None = None,
    ) -> None:
        if port is None:
            port, picked_controller = free_port_pair()
            controller_port = controller_port or picked_controller
        self.port = port
        self.controller_port = controller_port or port + 1
        if sasl_ssl and sasl_ssl_port is None:
            sasl_ssl_port = free_port(exclude=(self.port, self.controller_port))
        self.sasl_ssl_port = sasl_ssl_port
        self.scram_user = scram_user
        self.scram_password = scram_password or secrets.token_urlsafe(18)
        self.start_output = ""
        self._own_dir = dir is None
        self.dir = Path(dir) if dir is not None else Path(tempfile.mkdtemp(prefix=f"kafka-{port}-"))
        self.start_timeout = start_timeout
        self._running = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        if self.sasl_ssl_port is None:
            raise RuntimeError("this broker has no SASL_SSL listener (LocalKafka(sasl_ssl=True))")
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ca_file(self) -> Path:
        """The throw-away CA certificate that signed the SASL_SSL listener's certificate."""
        return self.dir / "ca.pem"

    def sasl_ssl_client(self, password: str | None = None) -> dict[str, Any]:
        """aiokafka client keyword arguments for the SASL_SSL listener."""
        from aiokafka.helpers import create_ssl_context

        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": self.scram_user,
            "sasl_plain_password": self.scram_password if password is None else password,
            "ssl_context": create_ssl_context(cafile=str(self.ca_file)),
        }

    def _run(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        args = [str(KAFKA_LOCAL), command, "--port", str(self.port), "--dir", str(self.dir)]
        env = dict(os.environ, KAFKA_LOCAL_START_TIMEOUT=str(int(self.start_timeout)))
        if command == "start":
            args += ["--controller-port", str(self.controller_port)]
            if self.sasl_ssl_port is not None:
                args += ["--sasl-ssl-port", str(self.sasl_ssl_port)]
                env["KAFKA_LOCAL_SCRAM_USER"] = self.scram_user
                env["KAFKA_LOCAL_SCRAM_PASSWORD"] = self.scram_password
        return subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )

    def start(self) -> LocalKafka:
        # The script's own readiness timeout, plus room for a first mvn download.
        proc = self._run("start", timeout=self.start_timeout + 600)
        self.start_output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise KafkaStartError(
                f"scripts/kafka-local start failed (exit {proc.returncode}):\n"
                f"{proc.stderr}{proc.stdout}"
            )
        lines = proc.stdout.strip().splitlines()
        if not lines or lines[-1] != self.bootstrap:
            raise KafkaStartError(
                f"unexpected output from scripts/kafka-local start: {proc.stdout!r}"
            )
        if not self._running:
            self._running = True
            atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the broker (idempotent); removes the temp dir if we created it."""
        if self._running:
            self._running = False
            atexit.unregister(self.stop)
        if self.dir.exists():
            proc = self._run("stop", timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"scripts/kafka-local stop failed:\n{proc.stderr}{proc.stdout}")
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def is_running(self) -> bool:
        return self._run("status", timeout=30).returncode == 0

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:  # never shows the SCRAM password
        return f"LocalKafka(bootstrap={self.bootstrap!r}, dir={str(self.dir)!r})"


async def wait_topic_ready(bootstrap: str, name: str, timeout: float = 30.0) -> None:
    """Wait until every partition of ``name`` answers ListOffsets on its leader.

    Right after CreateTopics the metadata already names a leader, but the
    broker's replica manager may not have the partition yet (the first produce
    then gets a retried NotLeaderForPartitionError). end_offsets() retries until
    the leaders really serve the partitions.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            (desc,) = await admin.describe_topics([name])
            if desc["error_code"] == 0 and desc["partitions"]:
                partitions = sorted(p["partition"] for p in desc["partitions"])
                break
            if loop.time() > deadline:
                raise TimeoutError(f"topic {name!r} not visible on {bootstrap} after {timeout}s")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(name, p) for p in partitions]
        await asyncio.wait_for(consumer.end_offsets(tps), max(deadline - loop.time(), 1.0))
    finally:
        await consumer.stop()


async def create_topic_async(
    bootstrap: str,
    name: str,
    partitions: int,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    wait: bool = True,
) -> bool:
    """Create ``name``; return False (no error) if it already exists.

    With ``wait`` (default) it returns only once all partitions are served.
    """
    created = await _create(bootstrap, name, partitions, replication_factor, config)
    if wait:
        await wait_topic_ready(bootstrap, name)
    return created


async def _create(
    bootstrap: str,
    name: str,
    partitions: int,
    replication_factor: int,
    config: dict[str, str] | None,
) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topic = NewTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            topic_configs=config or {},
        )
        try:
            resp = await admin.create_topics([topic])
        except TopicAlreadyExistsError:
            return False
        # aiokafka may return per-topic error codes instead of raising.
        for topic_name, code, *_ in getattr(resp, "topic_errors", ()):
            if code == TopicAlreadyExistsError.errno:
                return False
            if code != 0:
                raise RuntimeError(
                    f"create_topics({topic_name!r}) failed with error code {code}: {resp}"
                )
        return True
    finally:
        await admin.close()


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    wait: bool = True,
) -> bool:
    """Sync wrapper around :func:`create_topic_async` (runs its own event loop).

    Do not call from inside a running event loop; await ``create_topic_async``.
    """
    return asyncio.run(
        create_topic_async(bootstrap, name, partitions, replication_factor, config, wait)
    )
