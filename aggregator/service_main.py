"""``aggregator run``: start the service and keep it up until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aggregator.app import StartupError, start_service
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
    """Run until a signal; 0 on a clean stop, 2 (one line on stderr) on a bad setting."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_serve(settings))
    except StartupError as err:
        print(str(err), file=sys.stderr)
        return 2
    return 0
