"""Sites, chargers, vehicles and fleets: create, read, replace, delete.

Writes are the operator's. A fleet manager reads the vehicles of its fleets only; a trader
reads sites and chargers. Every accepted change is stored before the answer, then the
controller picks up the new assets and the fleet is re-planned.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from aggregator.api.auth import Ctx, needs
from aggregator.api.common import conflict, idempotent, not_found, store, unprocessable
from aggregator.api.context import ApiContext
from aggregator.api.schemas import (
    ERRORS,
    BatteryBody,
    ChargerBody,
    ChargerFields,
    FleetBody,
    FleetFields,
    SiteBody,
    SiteFields,
    VehicleBody,
    VehicleFields,
)
from aggregator.domain import (
    Account,
    Charger,
    Fleet,
    Site,
    SiteBattery,
    Vehicle,
    VehicleFleet,
)
from aggregator.services.access import sees_vehicle

router = APIRouter(prefix="/api/v1", tags=["assets"], responses=ERRORS)

Reader = Annotated[Account, Depends(needs("assets:read"))]
Writer = Annotated[Account, Depends(needs("assets:write"))]
VehicleReader = Annotated[Account, Depends(needs("vehicles:read"))]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key")]


async def changed(ctx: ApiContext, reason: str) -> None:
    """The store changed under the controller: reload the assets and re-plan."""
    controller = ctx.runtime.controller
    await store(controller.reload_fleet)
    ctx.runtime.request_replan(reason)


# ---------------------------------------------------------------------- sites


def _site_body(site: Site, battery: SiteBattery | None) -> SiteBody:
    b = None
    if battery is not None:
        b = BatteryBody(
            capacity_kwh=battery.capacity_kwh,
            max_charge_kw=battery.max_charge_kw,
            max_discharge_kw=battery.max_discharge_kw,
            charge_efficiency=battery.charge_efficiency,
            discharge_efficiency=battery.discharge_efficiency,
            initial_soc=battery.initial_soc,
            min_soc=battery.min_soc,
        )
    return SiteBody(
        site_id=site.site_id,
        import_limit_kw=site.import_limit_kw,
        export_limit_kw=site.export_limit_kw,
        battery=b,
    )


def _battery(fleet: Fleet, site_id: str) -> SiteBattery | None:
    return next((b for b in fleet.batteries if b.site_id == site_id), None)


async def _save_site(ctx: ApiContext, site_id: str, body: SiteFields) -> SiteBody:
    site = Site(site_id, body.import_limit_kw, body.export_limit_kw)
    batteries: tuple[SiteBattery, ...] = ()
    if body.battery is not None:
        batteries = (SiteBattery(site_id, **body.battery.model_dump()),)
    await store(ctx.repo.save_fleet, Fleet((site,), (), (), batteries))
    if not batteries:  # a replace without a battery removes the one stored
        await store(ctx.repo.delete_asset, "battery", site_id)
    await changed(ctx, f"site {site_id} saved")
    return _site_body(site, batteries[0] if batteries else None)


@router.get("/sites", response_model=list[SiteBody])
async def list_sites(ctx: Ctx, _: Reader) -> list[SiteBody]:
    fleet = await store(ctx.repo.load_fleet)
    return [_site_body(s, _battery(fleet, s.site_id)) for s in fleet.sites]


@router.get("/sites/{site_id}", response_model=SiteBody)
async def get_site(site_id: str, ctx: Ctx, _: Reader) -> SiteBody:
    fleet = await store(ctx.repo.load_fleet)
    site = next((s for s in fleet.sites if s.site_id == site_id), None)
    if site is None:
        raise not_found(f"site {site_id}")
    return _site_body(site, _battery(fleet, site_id))


@router.post("/sites", status_code=201, response_model=SiteBody)
async def create_site(
    body: SiteBody, request: Request, ctx: Ctx, account: Writer, key: IdemKey = None
) -> Response:
    async def act() -> tuple[int, object]:
        fleet = await store(ctx.repo.load_fleet)
        if any(s.site_id == body.site_id for s in fleet.sites):
            raise conflict(f"site {body.site_id} exists")
        return 201, await _save_site(ctx, body.site_id, body)

    return await idempotent(ctx, account, request, key, act)


@router.put("/sites/{site_id}", response_model=SiteBody)
async def replace_site(site_id: str, body: SiteFields, ctx: Ctx, _: Writer) -> SiteBody:
    fleet = await store(ctx.repo.load_fleet)
    if not any(s.site_id == site_id for s in fleet.sites):
        raise not_found(f"site {site_id}")
    return await _save_site(ctx, site_id, body)


async def _delete(ctx: ApiContext, kind: str, asset_id: str) -> Response:
    try:
        found = await store(ctx.repo.delete_asset, kind, asset_id)  # type: ignore[arg-type]
    except ValueError as exc:
        raise conflict(str(exc)) from exc
    if not found:
        raise not_found(f"{kind} {asset_id}")
    await changed(ctx, f"{kind} {asset_id} deleted")
    return Response(status_code=204)


@router.delete("/sites/{site_id}", status_code=204)
async def delete_site(site_id: str, ctx: Ctx, _: Writer) -> Response:
    return await _delete(ctx, "site", site_id)


# ---------------------------------------------------------------------- chargers


def _charger_body(c: Charger) -> ChargerBody:
    return ChargerBody(
        charger_id=c.charger_id,
        site_id=c.site_id,
        max_charge_kw=c.max_charge_kw,
        max_discharge_kw=c.max_discharge_kw,
    )


async def _save_charger(ctx: ApiContext, charger_id: str, body: ChargerFields) -> ChargerBody:
    fleet = await store(ctx.repo.load_fleet)
    if not any(s.site_id == body.site_id for s in fleet.sites):
        raise unprocessable("site_id", f"unknown site {body.site_id!r}")
    charger = Charger(charger_id, body.site_id, body.max_charge_kw, body.max_discharge_kw)
    await store(ctx.repo.save_fleet, Fleet((), (charger,), ()))
    await changed(ctx, f"charger {charger_id} saved")
    return _charger_body(charger)


@router.get("/chargers", response_model=list[ChargerBody])
async def list_chargers(ctx: Ctx, _: Reader) -> list[ChargerBody]:
    fleet = await store(ctx.repo.load_fleet)
    return [_charger_body(c) for c in fleet.chargers]


@router.get("/chargers/{charger_id}", response_model=ChargerBody)
async def get_charger(charger_id: str, ctx: Ctx, _: Reader) -> ChargerBody:
    fleet = await store(ctx.repo.load_fleet)
    charger = next((c for c in fleet.chargers if c.charger_id == charger_id), None)
    if charger is None:
        raise not_found(f"charger {charger_id}")
    return _charger_body(charger)


@router.post("/chargers", status_code=201, response_model=ChargerBody)
async def create_charger(
    body: ChargerBody, request: Request, ctx: Ctx, account: Writer, key: IdemKey = None
) -> Response:
    async def act() -> tuple[int, object]:
        fleet = await store(ctx.repo.load_fleet)
        if any(c.charger_id == body.charger_id for c in fleet.chargers):
            raise conflict(f"charger {body.charger_id} exists")
        return 201, await _save_charger(ctx, body.charger_id, body)

    return await idempotent(ctx, account, request, key, act)


@router.put("/chargers/{charger_id}", response_model=ChargerBody)
async def replace_charger(charger_id: str, body: ChargerFields, ctx: Ctx, _: Writer) -> ChargerBody:
    fleet = await store(ctx.repo.load_fleet)
    if not any(c.charger_id == charger_id for c in fleet.chargers):
        raise not_found(f"charger {charger_id}")
    return await _save_charger(ctx, charger_id, body)


@router.delete("/chargers/{charger_id}", status_code=204)
async def delete_charger(charger_id: str, ctx: Ctx, _: Writer) -> Response:
    return await _delete(ctx, "charger", charger_id)


# ---------------------------------------------------------------------- vehicles


def _vehicle_body(v: Vehicle, fleet_id: str | None) -> VehicleBody:
    return VehicleBody(
        vehicle_id=v.vehicle_id,
        battery_kwh=v.battery_kwh,
        max_charge_kw=v.max_charge_kw,
        max_discharge_kw=v.max_discharge_kw,
        v2g_allowed=v.v2g_allowed,
        charge_efficiency=v.charge_efficiency,
        discharge_efficiency=v.discharge_efficiency,
        fleet_id=fleet_id,
    )


async def visible_vehicle(ctx: ApiContext, account: Account, vehicle_id: str) -> Vehicle:
    """The vehicle, if ``account`` may see it; 404 otherwise (another fleet's is not there)."""
    fleet = await store(ctx.repo.load_fleet)
    vehicle = next((v for v in fleet.vehicles if v.vehicle_id == vehicle_id), None)
    members = await store(ctx.accounts.vehicle_fleets)
    if vehicle is None or not sees_vehicle(account, members.get(vehicle_id)):
        raise not_found(f"vehicle {vehicle_id}")
    return vehicle


async def _save_vehicle(ctx: ApiContext, vehicle_id: str, body: VehicleFields) -> VehicleBody:
    if body.fleet_id is not None and await store(ctx.accounts.fleet, body.fleet_id) is None:
        raise unprocessable("fleet_id", f"unknown fleet {body.fleet_id!r}")
    vehicle = Vehicle(
        vehicle_id,
        battery_kwh=body.battery_kwh,
        max_charge_kw=body.max_charge_kw,
        max_discharge_kw=body.max_discharge_kw,
        v2g_allowed=body.v2g_allowed,
        charge_efficiency=body.charge_efficiency,
        discharge_efficiency=body.discharge_efficiency,
    )
    await store(ctx.repo.save_fleet, Fleet((), (), (vehicle,)))
    await store(ctx.accounts.set_vehicle_fleet, vehicle_id, body.fleet_id)
    await changed(ctx, f"vehicle {vehicle_id} saved")
    return _vehicle_body(vehicle, body.fleet_id)


@router.get("/vehicles", response_model=list[VehicleBody])
async def list_vehicles(ctx: Ctx, account: VehicleReader) -> list[VehicleBody]:
    fleet = await store(ctx.repo.load_fleet)
    members = await store(ctx.accounts.vehicle_fleets)
    return [
        _vehicle_body(v, members.get(v.vehicle_id))
        for v in fleet.vehicles
        if sees_vehicle(account, members.get(v.vehicle_id))
    ]


@router.get("/vehicles/{vehicle_id}", response_model=VehicleBody)
async def get_vehicle(vehicle_id: str, ctx: Ctx, account: VehicleReader) -> VehicleBody:
    vehicle = await visible_vehicle(ctx, account, vehicle_id)
    members = await store(ctx.accounts.vehicle_fleets)
    return _vehicle_body(vehicle, members.get(vehicle_id))


@router.post("/vehicles", status_code=201, response_model=VehicleBody)
async def create_vehicle(
    body: VehicleBody,
    request: Request,
    ctx: Ctx,
    account: Annotated[Account, Depends(needs("vehicles:write"))],
    key: IdemKey = None,
) -> Response:
    async def act() -> tuple[int, object]:
        fleet = await store(ctx.repo.load_fleet)
        if any(v.vehicle_id == body.vehicle_id for v in fleet.vehicles):
            raise conflict(f"vehicle {body.vehicle_id} exists")
        return 201, await _save_vehicle(ctx, body.vehicle_id, body)

    return await idempotent(ctx, account, request, key, act)


@router.put("/vehicles/{vehicle_id}", response_model=VehicleBody)
async def replace_vehicle(
    vehicle_id: str,
    body: VehicleFields,
    ctx: Ctx,
    account: Annotated[Account, Depends(needs("vehicles:write"))],
) -> VehicleBody:
    await visible_vehicle(ctx, account, vehicle_id)
    return await _save_vehicle(ctx, vehicle_id, body)


@router.delete("/vehicles/{vehicle_id}", status_code=204)
async def delete_vehicle(
    vehicle_id: str,
    ctx: Ctx,
    account: Annotated[Account, Depends(needs("vehicles:write"))],
) -> Response:
    await visible_vehicle(ctx, account, vehicle_id)
    await store(ctx.accounts.set_vehicle_fleet, vehicle_id, None)
    await store(ctx.repo.delete_constraint, vehicle_id)
    await store(ctx.accounts.delete_recurring, vehicle_id)
    return await _delete(ctx, "vehicle", vehicle_id)


# ---------------------------------------------------------------------- fleets


@router.get("/fleets", response_model=list[FleetBody])
async def list_fleets(ctx: Ctx, account: VehicleReader) -> list[FleetBody]:
    fleets = await store(ctx.accounts.fleets)
    return [
        FleetBody(fleet_id=f.fleet_id, name=f.name)
        for f in fleets
        if account.role == "operator" or f.fleet_id in account.fleet_ids
    ]


@router.get("/fleets/{fleet_id}", response_model=FleetBody)
async def get_fleet(fleet_id: str, ctx: Ctx, account: VehicleReader) -> FleetBody:
    fleet = await store(ctx.accounts.fleet, fleet_id)
    if fleet is None or not (account.role == "operator" or fleet_id in account.fleet_ids):
        raise not_found(f"fleet {fleet_id}")
    return FleetBody(fleet_id=fleet.fleet_id, name=fleet.name)


@router.post("/fleets", status_code=201, response_model=FleetBody)
async def create_fleet(
    body: FleetBody, request: Request, ctx: Ctx, account: Writer, key: IdemKey = None
) -> Response:
    async def act() -> tuple[int, object]:
        if await store(ctx.accounts.fleet, body.fleet_id) is not None:
            raise conflict(f"fleet {body.fleet_id} exists")
        await store(ctx.accounts.save_fleet, VehicleFleet(body.fleet_id, body.name))
        return 201, body

    return await idempotent(ctx, account, request, key, act)


@router.put("/fleets/{fleet_id}", response_model=FleetBody)
async def replace_fleet(fleet_id: str, body: FleetFields, ctx: Ctx, _: Writer) -> FleetBody:
    held = await store(ctx.accounts.fleet, fleet_id)
    if held is None:
        raise not_found(f"fleet {fleet_id}")
    await store(ctx.accounts.save_fleet, replace(held, name=body.name))
    return FleetBody(fleet_id=fleet_id, name=body.name)


@router.delete("/fleets/{fleet_id}", status_code=204)
async def delete_fleet(fleet_id: str, ctx: Ctx, _: Writer) -> Response:
    try:
        found = await store(ctx.accounts.delete_fleet, fleet_id)
    except ValueError as exc:
        raise conflict(str(exc)) from exc
    if not found:
        raise not_found(f"fleet {fleet_id}")
    return Response(status_code=204)
