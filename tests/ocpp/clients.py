"""Charge points written with the ``ocpp`` library's client side, one class per version."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp import v16, v21, v201
from ocpp.routing import on


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _first_limit(profile: dict[str, Any]) -> float:
    schedule = profile["charging_schedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    return float(schedule["charging_schedule_period"][0]["limit"])


class _Recorder:
    """Keeps every SetChargingProfile it gets; ``answer`` decides the reply.

    It also enforces them as a charger does: ``limit_now()`` is the latest TxProfile's limit
    while that profile is within ``validFrom``..``validTo``, else the TxDefaultProfile's.
    GetCompositeSchedule answers that limit plus ``composite_offset`` (0: an honest charger).
    """

    def _init_recorder(self) -> None:
        self.profiles: list[dict[str, Any]] = []
        self.answer: str = "accept"  # or "error" (CALLERROR) or "silent" (no reply)
        self.received = asyncio.Event()
        self.composite_offset = 0.0
        self.composite_asked = 0

    def limit_now(self, now: datetime | None = None) -> float | None:
        now = now or datetime.now(UTC)
        for p in reversed(self.tx_profiles()):
            valid_from, valid_to = p.get("valid_from"), p.get("valid_to")
            if valid_from and parse_ts(valid_from) > now:
                continue
            if valid_to and parse_ts(valid_to) <= now:
                continue
            return _first_limit(p)
        defaults = self.defaults()
        return _first_limit(defaults[-1]) if defaults else None

    def _composite(self, unit: str | None) -> dict[str, Any]:
        self.composite_asked += 1
        limit = (self.limit_now() or 0.0) + self.composite_offset
        return {
            "chargingRateUnit": unit or "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        }

    async def _record(self, profile: dict[str, Any]) -> None:
        if self.answer == "silent":
            await asyncio.sleep(3600)
        if self.answer == "error":
            raise NotImplementedError("this charger refuses profiles")  # -> CALLERROR
        self.profiles.append(profile)
        self.received.set()

    def tx_profiles(self) -> list[dict[str, Any]]:
        return [p for p in self.profiles if p["charging_profile_purpose"] == "TxProfile"]

    def defaults(self) -> list[dict[str, Any]]:
        return [p for p in self.profiles if p["charging_profile_purpose"] == "TxDefaultProfile"]


class Cp16(_Recorder, v16.ChargePoint):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_recorder()

    @on("SetChargingProfile")
    async def on_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        await self._record(cs_charging_profiles)
        return v16.call_result.SetChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_composite(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None
    ) -> Any:
        return v16.call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=now_iso(),
            charging_schedule=self._composite(charging_rate_unit),
        )

    async def plug_in(self, vehicle: str, soc_pct: float) -> int:
        await self.call(v16.call.BootNotification(charge_point_model="m", charge_point_vendor="v"))
        await self.call(
            v16.call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing")
        )
        res = await self.call(
            v16.call.StartTransaction(
                connector_id=1, id_tag=vehicle, meter_start=0, timestamp=now_iso()
            )
        )
        self.tx = int(res.transaction_id)
        await self.meter(0.0, soc_pct)
        return self.tx

    async def meter(self, power_w: float, soc_pct: float) -> None:
        await self.call(
            v16.call.MeterValues(
                connector_id=1,
                transaction_id=self.tx,
                meter_value=[
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [
                            {
                                "value": f"{power_w:.1f}",
                                "measurand": "Power.Active.Import",
                                "unit": "W",
                            },
                            {"value": f"{soc_pct:.1f}", "measurand": "SoC", "unit": "Percent"},
                        ],
                    }
                ],
            )
        )

    async def unplug(self) -> None:
        await self.call(
            v16.call.StopTransaction(meter_stop=0, timestamp=now_iso(), transaction_id=self.tx)
        )
        await self.call(
            v16.call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
        )


class _Cp2x(_Recorder):
    calls: Any

    @on("SetChargingProfile")
    async def on_profile(self, evse_id: int, charging_profile: dict[str, Any]) -> Any:
        await self._record(charging_profile)
        return self._call_result.SetChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_composite(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        schedule = {
            "evseId": evse_id,
            "duration": duration,
            "scheduleStart": now_iso(),
            **self._composite(charging_rate_unit),
        }
        return self._call_result.GetCompositeSchedule(status="Accepted", schedule=schedule)

    async def plug_in(self, vehicle: str, soc_pct: float) -> str:
        c = self.calls
        await self.call(
            c.BootNotification(
                charging_station={"model": "m", "vendor_name": "v"}, reason="PowerUp"
            )
        )
        await self.call(
            c.StatusNotification(
                timestamp=now_iso(), connector_status="Occupied", evse_id=1, connector_id=1
            )
        )
        self.tx = f"tx-{self.id}"
        self.seq = 0
        await self.call(
            c.TransactionEvent(
                event_type="Started",
                timestamp=now_iso(),
                trigger_reason="CablePluggedIn",
                seq_no=self._next(),
                transaction_info={"transaction_id": self.tx},
                id_token={"id_token": vehicle, "type": "Central"},
                evse={"id": 1, "connector_id": 1},
                meter_value=[self._mv(0.0, soc_pct)],
            )
        )
        return self.tx

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _mv(self, power_w: float, soc_pct: float) -> dict[str, Any]:
        return {
            "timestamp": now_iso(),
            "sampled_value": [
                {
                    "value": power_w / 1000,
                    "measurand": "Power.Active.Import",
                    "unit_of_measure": {"unit": "kW"},
                },
                {"value": soc_pct, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}},
            ],
        }

    async def meter(self, power_w: float, soc_pct: float) -> None:
        await self.call(self.calls.MeterValues(evse_id=1, meter_value=[self._mv(power_w, soc_pct)]))

    async def unplug(self) -> None:
        await self.call(
            self.calls.TransactionEvent(
                event_type="Ended",
                timestamp=now_iso(),
                trigger_reason="EVCommunicationLost",
                seq_no=self._next(),
                transaction_info={"transaction_id": self.tx},
            )
        )


class Cp201(_Cp2x, v201.ChargePoint):
    calls = v201.call

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_recorder()


class Cp21(_Cp2x, v21.ChargePoint):
    calls = v21.call

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_recorder()


VERSIONS: dict[str, tuple[str, type[Any]]] = {
    "1.6": ("ocpp1.6", Cp16),
    "2.0.1": ("ocpp2.0.1", Cp201),
    "2.1": ("ocpp2.1", Cp21),
}


class Connected:
    """A charge point connected to ``url`` with its receive loop running."""

    def __init__(self, cp: Any, ws: Any, task: asyncio.Task[None]) -> None:
        self.cp, self.ws, self.task = cp, ws, task

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


async def connect(url: str, cp_id: str, version: str, **kwargs: Any) -> Connected:
    subprotocol, cls = VERSIONS[version]
    ws = await websockets.connect(url + cp_id, subprotocols=[subprotocol], **kwargs)
    cp = cls(cp_id, ws, response_timeout=5)
    task = asyncio.get_running_loop().create_task(cp.start())
    return Connected(cp, ws, task)
