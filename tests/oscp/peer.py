"""A capacity provider (DSO side) written from the OSCP 2.0 message definitions, not from our
models: plain JSON over a stdlib HTTP server on loopback, and httpx to call the provider."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

CP_PATH = "/oscp/cp/2.0"

# Required fields of what a capacity provider receives from a flexibility provider.
REQUIRED: dict[str, tuple[str, ...]] = {
    "register": ("token", "version_url"),
    "handshake": ("required_behaviour",),
    "handshake_acknowledgment": (),
    "heartbeat": ("offline_mode_at",),
    "update_group_measurements": ("group_id", "measurements"),
    "adjust_group_capacity_forecast": ("group_id", "type", "forecasted_blocks"),
}


class CapacityProvider:
    def __init__(self, token: str) -> None:
        self.tokens = {token}  # what the flexibility provider may call us with
        self.received: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.refused: list[tuple[str, int]] = []
        self.fp_token: str | None = None  # what we call the flexibility provider with
        self.fp_url: str | None = None
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                name = self.path.removeprefix(CP_PATH + "/")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                scheme, _, token = self.headers.get("Authorization", "").partition(" ")
                if scheme != "Token" or token not in peer.tokens:
                    return self._answer(name, 401)
                if name not in REQUIRED:
                    return self._answer(name, 404)
                try:
                    data = json.loads(body)
                except ValueError:
                    return self._answer(name, 400)
                if not isinstance(data, dict) or any(k not in data for k in REQUIRED[name]):
                    return self._answer(name, 400)
                if not self.headers.get("X-Request-ID"):
                    return self._answer(name, 400)
                if name == "register":
                    peer.fp_token = data["token"]
                    peer.fp_url = next(
                        v["base_url"] for v in data["version_url"] if v["version"] == "2.0"
                    )
                peer.received.append((name, data, dict(self.headers)))
                self.send_response(204)
                self.end_headers()

            def _answer(self, name: str, status: int) -> None:
                peer.refused.append((name, status))
                self.send_response(status)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{CP_PATH}"

    def start(self) -> CapacityProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def messages(self, name: str) -> list[dict[str, Any]]:
        return [data for n, data, _ in list(self.received) if n == name]

    def wait_for(
        self,
        name: str,
        pred: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = 20,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for data in self.messages(name):
                if pred(data):
                    return data
            time.sleep(0.05)
        raise AssertionError(f"no matching {name} within {timeout}s: {self.messages(name)}")

    def call(self, name: str, body: Any, token: str | None = None) -> httpx.Response:
        """POST a message to the flexibility provider (our token unless told otherwise)."""
        assert self.fp_url is not None, "the flexibility provider has not registered"
        content = body if isinstance(body, str | bytes) else json.dumps(body)
        headers = {
            "Authorization": f"Token {token or self.fp_token}",
            "Content-Type": "application/json",
            "X-Request-ID": "test",
        }
        return httpx.post(f"{self.fp_url}/{name}", content=content, headers=headers, timeout=30)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
