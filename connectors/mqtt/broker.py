"""An MQTT broker inside the aggregator's process (amqtt), for the embedded default and tests.

amqtt speaks MQTT 3.1.1 only; clients fall back to it (see ``link.py``). It binds to loopback
and allows anonymous clients: it is for one machine, never a production broker.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from amqtt.broker import Broker
from amqtt.errors import BrokerError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the broker binds it right after)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _ClosingBroker(Broker):  # type: ignore[misc]  # amqtt ships no type hints
    """amqtt's broker, but a client's connection is closed however its handling ends.

    amqtt leaves the transport open when a client vanishes during the handshake (a refused
    MQTT 5 attempt, say) and its last write fails; asyncio closes it only from Python 3.12.
    """

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        try:
            await super().stream_connected(reader, writer, listener_name)
        except OSError as exc:
            log.debug("MQTT client went away during the handshake: %s", exc)
        finally:
            writer.close()


class EmbeddedBroker:
    """Start and stop an amqtt broker on the running asyncio loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._broker is not None

    async def start(self) -> None:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        broker = _ClosingBroker(config)
        # amqtt logs a traceback for a failed start and then raises it; the raise is enough.
        amqtt_log = logging.getLogger("amqtt.broker")
        level = amqtt_log.level
        amqtt_log.setLevel(logging.CRITICAL)
        try:
            await broker.start()
        except BrokerError as exc:
            # Callers handle "cannot listen" as the OSError it is underneath (port in use).
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else None
            raise OSError(
                cause.errno if cause else None,
                cause.strerror if cause else str(exc),
            ) from exc
        finally:
            amqtt_log.setLevel(level)
        self._broker = broker

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()
