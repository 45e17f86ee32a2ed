"""The HTTP API over real HTTP against the running service (SQLite, and PostgreSQL if up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.api.conftest import Running


def account(running: Running, account_id: str, role: str, fleets: list[str] | None = None) -> str:
    with running.client(running.operator) as c:
        r = c.post(
            "/api/v1/accounts",
            json={
                "account_id": account_id,
                "name": account_id,
                "role": role,
                "fleet_ids": fleets or [],
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def later(hours: float = 3.0) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def test_no_token_or_a_wrong_one_is_401_and_health_needs_none(running: Running) -> None:
    with running.client() as c:
        assert c.get("/api/v1/sites").status_code == 401
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"store": "ok", "broker": "ok"}
        assert c.get("/docs").status_code == 200
        assert "/api/v1/vehicles/{vehicle_id}/departure" in c.get("/openapi.json").json()["paths"]
    with running.client("agg_not-a-key") as c:
        r = c.get("/api/v1/sites")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_operator_crud_of_sites_chargers_vehicles_fleets(running: Running) -> None:
    with running.client(running.operator) as c:
        assert (
            c.post("/api/v1/sites", json={"site_id": "yard", "import_limit_kw": 50}).status_code
            == 201
        )
        assert (
            c.post("/api/v1/sites", json={"site_id": "yard", "import_limit_kw": 50}).status_code
            == 409
        )
        r = c.post(
            "/api/v1/chargers", json={"charger_id": "y1", "site_id": "yard", "max_charge_kw": 22}
        )
        assert r.status_code == 201, r.text
        r = c.post(
            "/api/v1/chargers", json={"charger_id": "y2", "site_id": "nowhere", "max_charge_kw": 22}
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "site_id"]
        assert (
            c.post("/api/v1/fleets", json={"fleet_id": "vans", "name": "Vans"}).status_code == 201
        )
        r = c.post(
            "/api/v1/vehicles",
            json={
                "vehicle_id": "van-1",
                "battery_kwh": 75,
                "max_charge_kw": 11,
                "fleet_id": "vans",
            },
        )
        assert r.status_code == 201, r.text
        assert c.get("/api/v1/vehicles/van-1").json()["fleet_id"] == "vans"
        battery = {"capacity_kwh": 50, "max_charge_kw": 20, "max_discharge_kw": 20}
        r = c.put("/api/v1/sites/yard", json={"import_limit_kw": 55, "battery": battery})
        assert r.status_code == 200 and c.get("/api/v1/sites/yard").json()["battery"] is not None
        r = c.put("/api/v1/sites/yard", json={"import_limit_kw": 60})  # replaced: no battery
        assert r.status_code == 200 and r.json()["import_limit_kw"] == 60
        assert c.get("/api/v1/sites/yard").json()["battery"] is None
        assert c.put("/api/v1/sites/nope", json={"import_limit_kw": 1}).status_code == 404
        # The controller plans with the new assets at once.
        assert running.on_loop(
            lambda: [s.site_id for s in running.service.controller.fleet.sites]
        ) == [
            "depot",
            "yard",
        ]
        # Deleting what others depend on is refused; in order it works.
        assert c.delete("/api/v1/sites/yard").status_code == 409
        assert c.delete("/api/v1/fleets/vans").status_code == 409
        assert c.delete("/api/v1/chargers/y1").status_code == 204
        assert c.delete("/api/v1/sites/yard").status_code == 204
        assert c.delete("/api/v1/vehicles/van-1").status_code == 204
        assert c.delete("/api/v1/fleets/vans").status_code == 204
        assert c.get("/api/v1/sites/yard").status_code == 404


def test_a_departure_is_stored_before_the_answer_and_triggers_a_replan(running: Running) -> None:
    plans_before = running.on_loop(lambda: len(running.service.runtime.plan_seconds))
    with running.client(running.operator) as c:
        when = later()
        r = c.put("/api/v1/vehicles/v0/departure", json={"departure_at": when, "target_soc": 0.9})
        assert r.status_code == 200, r.text
        stored = {x.vehicle_id: x for x in running.service.repo.constraints()}
        assert stored["v0"].target_soc == 0.9
        assert stored["v0"].departure_at == datetime.fromisoformat(when)
        assert c.get("/api/v1/vehicles/v0/departure").json()["target_soc"] == 0.9
        assert [d["vehicle_id"] for d in c.get("/api/v1/departures").json()] == ["v0"]
        csv = c.get("/api/v1/departures", headers={"Accept": "text/csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith("departure_at,target_soc,energy_kwh,min_soc")
        for _ in range(100):
            if running.on_loop(lambda: len(running.service.runtime.plan_seconds)) > plans_before:
                break
            running.call(__import__("asyncio").sleep(0.05))
        else:
            pytest.fail("no re-plan after the constraint")
        assert c.delete("/api/v1/vehicles/v0/departure").status_code == 204
        assert c.get("/api/v1/vehicles/v0/departure").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            {"departure_at": "2020-01-01T07:00:00Z", "target_soc": 0.8},
            "departure_at",
            "is in the past",
        ),
        ({"departure_at": later(), "target_soc": 1.2}, "target_soc", "less than or equal to 1"),
        (
            {"departure_at": later(), "target_soc": 0.5, "min_soc": 0.6},
            "min_soc",
            "must be <= target_soc",
        ),
        (
            {"departure_at": later(), "energy_kwh": 41.0},
            "energy_kwh",
            "more than the 40 kWh battery",
        ),
        ({"departure_at": later()}, "target_soc", "exactly one of target_soc, energy_kwh"),
        ({"departure_at": "2030-01-01T07:00:00", "target_soc": 0.8}, "departure_at", "timezone"),
    ],
)
def test_bad_departures_are_422_naming_the_field_and_change_nothing(
    running: Running, body: dict[str, object], field: str, reason: str
) -> None:
    with running.client(running.operator) as c:
        ok = c.put(
            "/api/v1/vehicles/v1/departure", json={"departure_at": later(5), "target_soc": 0.7}
        )
        assert ok.status_code == 200
        r = c.put("/api/v1/vehicles/v1/departure", json=body)
        assert r.status_code == 422, r.text
        (err,) = r.json()["detail"]
        assert err["loc"][-1] == field and reason in err["msg"], err
        assert c.get("/api/v1/vehicles/v1/departure").json()["target_soc"] == 0.7  # kept
        assert c.put("/api/v1/vehicles/ghost/departure", json=body).status_code in (404, 422)


def test_weekly_departure_sets_the_next_one(running: Running) -> None:
    with running.client(running.operator) as c:
        r = c.put(
            "/api/v1/vehicles/v2/departure/recurring",
            json={
                "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                "time": "07:00",
                "timezone": "Europe/Amsterdam",
                "target_soc": 0.8,
            },
        )
        assert r.status_code == 200, r.text
        nxt = datetime.fromisoformat(r.json()["next_departure_at"])
        local = nxt.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))
        assert (
            (local.hour, local.minute) == (7, 0) and local.weekday() < 5 and nxt > datetime.now(UTC)
        )
        assert (
            c.get("/api/v1/vehicles/v2/departure").json()["departure_at"]
            == r.json()["next_departure_at"]
        )
        bad = c.put(
            "/api/v1/vehicles/v2/departure/recurring",
            json={
                "weekdays": ["mon"],
                "time": "07:00",
                "timezone": "Mars/Olympus",
                "target_soc": 0.8,
            },
        )
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "timezone"
        assert c.delete("/api/v1/vehicles/v2/departure/recurring").status_code == 204


def test_plans_schedules_envelope_and_forecasts(running: Running) -> None:
    with running.client(running.operator) as c:
        summary = c.get("/api/v1/plan").json()
        assert summary["solver_path"] in ("lp", "heuristic") and "depot" in summary["site_power_kw"]
        site = c.get("/api/v1/sites/depot/plan").json()
        assert site["import_limit_kw"] == 20 and len(site["power_kw"]) == summary["grid"]["n_slots"]
        assert all(p <= 20 + 1e-6 for p in site["power_kw"])
        csv = c.get("/api/v1/sites/depot/plan", headers={"Accept": "text/csv"}).text
        assert csv.splitlines()[0] == "start,power_kw,battery_kw,import_limit_kw"
        sched = c.get("/api/v1/vehicles/v0/schedule").json()
        assert sched["vehicle_id"] == "v0" and sched["plan_id"] == summary["plan_id"]
        env = c.get("/api/v1/envelope").json()
        assert len(env) == summary["grid"]["n_slots"]
        assert all(e["min_kw"] <= e["max_kw"] + 1e-6 for e in env)
        fc = c.get("/api/v1/forecasts", params={"hours": 2}).json()
        assert len(fc) == 8 and fc[0]["import_price_per_mwh"] == 50 and fc[0]["base_load_kw"] == 2
        assert c.get("/api/v1/forecasts", params={"hours": 0}).status_code == 422


def test_tenant_isolation_every_vehicle_endpoint_of_another_fleet_is_404_or_403(
    running: Running,
) -> None:
    with running.client(running.operator) as c:
        for fleet, vehicles in (("north", ["v0"]), ("south", ["v1"])):
            assert c.post("/api/v1/fleets", json={"fleet_id": fleet}).status_code == 201
            for v in vehicles:
                body = c.get(f"/api/v1/vehicles/{v}").json()
                body.pop("vehicle_id")
                body["fleet_id"] = fleet
                assert c.put(f"/api/v1/vehicles/{v}", json=body).status_code == 200
        c.put("/api/v1/vehicles/v1/departure", json={"departure_at": later(), "target_soc": 0.6})
    north = account(running, "fm-north", "fleet_manager", ["north"])
    trader = account(running, "trader-1", "trader")
    dep = {"departure_at": later(), "target_soc": 0.9}
    weekly = {"weekdays": ["mon"], "time": "07:00", "target_soc": 0.8}
    with running.client(north) as c:
        assert [v["vehicle_id"] for v in c.get("/api/v1/vehicles").json()] == ["v0"]
        assert [f["fleet_id"] for f in c.get("/api/v1/fleets").json()] == ["north"]
        assert c.put("/api/v1/vehicles/v0/departure", json=dep).status_code == 200
        assert [d["vehicle_id"] for d in c.get("/api/v1/departures").json()] == ["v0"]
        # Everything about south's v1 (and the unfleeted v2) is not there for north.
        for v in ("v1", "v2"):
            for method, path, body in (
                ("GET", f"/api/v1/vehicles/{v}", None),
                ("GET", f"/api/v1/vehicles/{v}/departure", None),
                ("PUT", f"/api/v1/vehicles/{v}/departure", dep),
                ("DELETE", f"/api/v1/vehicles/{v}/departure", None),
                ("GET", f"/api/v1/vehicles/{v}/departure/recurring", None),
                ("PUT", f"/api/v1/vehicles/{v}/departure/recurring", weekly),
                ("DELETE", f"/api/v1/vehicles/{v}/departure/recurring", None),
                ("GET", f"/api/v1/vehicles/{v}/schedule", None),
                ("PUT", f"/api/v1/vehicles/{v}", {"battery_kwh": 1, "max_charge_kw": 1}),
                ("DELETE", f"/api/v1/vehicles/{v}", None),
            ):
                r = c.request(method, path, json=body)
                assert r.status_code in (403, 404), (method, path, r.status_code)
        assert c.get("/api/v1/fleets/south").status_code == 404
        for path in (
            "/api/v1/sites",
            "/api/v1/plan",
            "/api/v1/sites/depot/plan",
            "/api/v1/events",
            "/api/v1/envelope",
            "/api/v1/telemetry/latest",
            "/api/v1/accounts",
        ):
            assert c.get(path).status_code == 403, path
    # South's constraint is untouched.
    assert {x.vehicle_id: x.target_soc for x in running.service.repo.constraints()}["v1"] == 0.6
    with running.client(trader) as c:
        assert c.get("/api/v1/plan").status_code == 200
        assert c.get("/api/v1/events").json() == []
        assert c.get("/api/v1/vehicles").status_code == 403
        assert c.put("/api/v1/vehicles/v0/departure", json=dep).status_code == 403
        assert (
            c.post("/api/v1/sites", json={"site_id": "x", "import_limit_kw": 1}).status_code == 403
        )


def test_idempotency_key_makes_a_retried_post_safe(running: Running) -> None:
    with running.client(running.operator) as c:
        body = {"site_id": "retry", "import_limit_kw": 10}
        first = c.post("/api/v1/sites", json=body, headers={"Idempotency-Key": "k-1"})
        again = c.post("/api/v1/sites", json=body, headers={"Idempotency-Key": "k-1"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        other = c.post(
            "/api/v1/sites",
            json={**body, "import_limit_kw": 11},
            headers={"Idempotency-Key": "k-1"},
        )
        assert other.status_code == 422 and other.json()["detail"][0]["loc"] == [
            "header",
            "Idempotency-Key",
        ]
        assert c.post("/api/v1/sites", json=body).status_code == 409  # without a key: a new create
        token = c.post(
            "/api/v1/accounts",
            json={"account_id": "t2", "role": "trader"},
            headers={"Idempotency-Key": "acct"},
        ).json()["token"]
        replay = c.post(
            "/api/v1/accounts",
            json={"account_id": "t2", "role": "trader"},
            headers={"Idempotency-Key": "acct"},
        )
        assert replay.json()["token"] == token


def test_malformed_json_and_oversize_bodies_are_4xx_and_change_nothing(running: Running) -> None:
    with running.client(running.operator) as c:
        r = c.post(
            "/api/v1/sites",
            content=b'{"site_id": "x", ',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
        big = b'{"site_id": "big", "import_limit_kw": 1, "pad": "' + b"x" * (2 << 20) + b'"}'
        r = c.post("/api/v1/sites", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "larger than" in r.json()["detail"]
        assert [s["site_id"] for s in c.get("/api/v1/sites").json()] == ["depot"]
        assert (
            c.post("/api/v1/sites", json={"site_id": "../etc", "import_limit_kw": 1}).status_code
            == 422
        )
        assert (
            c.post("/api/v1/sites", json={"site_id": "s", "import_limit_kw": -1}).status_code == 422
        )


def test_a_store_failure_answers_503_not_a_lost_2xx(running: Running) -> None:
    repo = running.service.repo
    with running.client(running.operator) as c:
        c.put("/api/v1/vehicles/v0/departure", json={"departure_at": later(), "target_soc": 0.5})
        original = repo._write
        from sqlalchemy import create_engine
        from sqlalchemy.orm import sessionmaker

        broken = create_engine("sqlite:////nonexistent-dir/none.db")
        repo._write = sessionmaker(broken)
        try:
            r = c.put(
                "/api/v1/vehicles/v0/departure", json={"departure_at": later(), "target_soc": 0.9}
            )
            assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
        finally:
            repo._write = original
            broken.dispose()
        assert c.get("/api/v1/vehicles/v0/departure").json()["target_soc"] == 0.5


def test_metrics_are_prometheus_text(running: Running) -> None:
    with httpx.Client(base_url=running.url) as c:
        text = c.get("/metrics").text
    assert 'aggregator_plans_total{solver_path="lp"}' in text
    assert 'aggregator_site_headroom_kw{site_id="depot"}' in text
    assert "aggregator_plan_duration_seconds_count" in text
