"""OSCP 2.0 against a capacity provider over real HTTP on loopback (docs/oscp.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.oscp.conftest import CP_TOKEN, FP_TOKEN, Running
from tests.oscp.peer import iso

GROUP = "depot-group"


def forecast(kw: float, hours: float = 4, **block: object) -> dict[str, object]:
    start = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "group_id": GROUP,
        "type": "CONSUMPTION",
        "forecasted_blocks": [
            {
                "capacity": kw,
                "phase": "ALL",
                "unit": "KW",
                "start_time": iso(start),
                "end_time": iso(start + timedelta(hours=hours)),
            }
            | block
        ],
    }


def oscp_events(r: Running) -> dict[str, tuple[str, float | None]]:
    return {
        x.event.event_id: (x.status, x.event.cap_kw)
        for x in r.service.repo.events()
        if x.event.event_id.startswith("oscp/")
    }


def test_registration_handshake_and_heartbeat_both_ways(oscp_service: Running) -> None:
    r, cp = oscp_service, oscp_service.cp
    reg = cp.wait_for("register")
    assert reg["token"] == FP_TOKEN
    assert reg["version_url"][0]["version"] == "2.0"
    assert reg["version_url"][0]["base_url"].endswith("/oscp/fp/2.0")
    cp.wait_for("handshake", lambda m: m["required_behaviour"]["heartbeat_interval"] == 0.5)
    cp.wait_for("heartbeat")
    # Every message carried the token we were given.
    assert all(h["Authorization"] == f"Token {CP_TOKEN}" for _, _, h in cp.received)

    # A wrong token, or none, is refused before anything is read.
    assert cp.call("heartbeat", {"offline_mode_at": iso(datetime.now(UTC))}, "nope").status_code == 401
    assert cp.fp_url is not None
    bearer = httpx.post(
        f"{cp.fp_url}/heartbeat", json={}, headers={"Authorization": f"Bearer {FP_TOKEN}"}
    )
    assert bearer.status_code == 401

    # The capacity provider's own handshake: it wants a heartbeat every 0.2 s.
    resp = cp.call("handshake", {"required_behaviour": {"heartbeat_interval": 0.2}})
    assert resp.status_code == 204
    cp.wait_for("handshake_acknowledgment")
    assert r.service.oscp is not None
    assert r.on_loop(lambda: r.service.oscp.heartbeat_interval()) == 0.2  # type: ignore[union-attr]
    ok = cp.call("heartbeat", {"offline_mode_at": iso(datetime.now(UTC) + timedelta(minutes=1))})
    assert ok.status_code == 204

    # It registers anew with a fresh token for us to use: we register back with it.
    cp.tokens = {"cp-token-2"}
    before = len(cp.messages("register"))
    resp = cp.call(
        "register",
        {"token": "cp-token-2", "version_url": [{"version": "2.0", "base_url": cp.url}]},
    )
    assert resp.status_code == 204
    cp.wait_for("handshake", lambda _: len(cp.messages("register")) > before)
    n = len(cp.messages("heartbeat"))
    cp.wait_for("heartbeat", lambda _: len(cp.messages("heartbeat")) > n + 2)
    assert cp.received[-1][2]["Authorization"] == "Token cp-token-2"
