"""``aggregator run``: start the service and keep it up until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aggregator.app import start_service
from aggregator.settings import RuntimeSettings

log = logging.getLogger("aggregator")


async def _serve(settings: RuntimeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service = await start_service(settings)
    log.info("aggregator running: MQTT %s, store %s", service.mqtt_url, settings.database_url)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await service.stop()


def serve(settings: RuntimeSettings) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_serve(settings))
    return 0
