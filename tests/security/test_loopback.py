"""Without DACA_ADMIN_TOKEN, admin calls (and reading any user's history) are accepted only from this
machine. A request that any proxy forwarded is not from this machine, whatever header says so, and in Dapr
mode nothing is: daprd runs beside the app on loopback and relays other apps' calls (remote invocations
carry X-Forwarded-For, X-Forwarded-Host, Forwarded and dapr-caller-app-id; a call to the app's own id
carries nothing that tells it from a local one)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from daca_kit.web.api import create_api
from daca_kit.web.auth import Auth

FORWARDED = [
    {"Forwarded": "for=203.0.113.9"},
    {"Forwarded": "for=127.0.0.1;by=127.0.0.1"},
    {"X-Real-IP": "203.0.113.9"},
    {"X-Real-IP": "127.0.0.1"},
    {"X-Forwarded-Host": "daca.example.org"},
    {"X-Forwarded-Proto": "https"},
    {"Via": "1.1 proxy"},
    {"True-Client-IP": "203.0.113.9"},
    {"CF-Connecting-IP": "203.0.113.9"},
    # What daprd adds to a call another app invokes through it (dapr/pkg/messaging/direct_messaging.go).
    {
        "X-Forwarded-For": "10.0.0.7",
        "X-Forwarded-Host": "node-2",
        "Forwarded": "for=10.0.0.7;by=10.0.0.7;host=node-2",
        "dapr-caller-app-id": "other-app",
        "dapr-callee-app-id": "daca",
    },
    {"dapr-caller-app-id": "other-app"},
    {"dapr-api-token": "whatever"},  # daprd sends APP_API_TOKEN on every call it makes to the app
]


@pytest.mark.parametrize("headers", FORWARDED, ids=[",".join(h) for h in FORWARDED])
def test_a_forwarded_request_from_loopback_is_not_local(make_app, headers: dict[str, str]) -> None:
    kit, client = make_app(client_host="127.0.0.1", admin_token=None)
    kit.initialize_count("alice", 5)
    reset = client.post("/analytics/reset", headers=headers)
    init = client.post("/analytics/alice/initialize", json={"message_count": 1}, headers=headers)
    assert (reset.status_code, init.status_code) == (403, 403), reset.text
    assert kit.message_count("alice") == 5
    assert client.post("/analytics/reset").status_code == 200  # the same machine, not forwarded


def test_in_dapr_mode_loopback_is_not_trusted(make_app, settings_factory) -> None:
    kit, _ = make_app(admin_token=None)
    auth = Auth.from_settings(settings_factory(admin_token=None, runtime="dapr"), kit.stores.keys)
    client = TestClient(create_api(kit, auth=auth), client=("127.0.0.1", 50000))
    kit.initialize_count("alice", 5)
    reset = client.post("/analytics/reset")
    assert reset.status_code == 403
    assert "DACA_ADMIN_TOKEN" in reset.json()["detail"]
    assert kit.message_count("alice") == 5
