"""Fixtures for the security tests: an in-process app on a fresh SQLite file, with known secrets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from daca_kit.bootstrap import bootstrap
from daca_kit.core.kit import Kit
from daca_kit.web.api import create_api

REVIEWER_PASSWORD = "rv-9c1e77f0b2d4"
ADMIN_TOKEN = "adm-4f8a2b6c0d1e"


@pytest.fixture
def make_app(settings_factory: Any) -> Iterator[Callable[..., tuple[Kit, TestClient]]]:
    """make_app(client_host="127.0.0.1", **settings) -> (kit, client); kits are closed afterwards."""
    kits: list[Kit] = []

    def make(*, client_host: str = "testclient", **overrides: Any) -> tuple[Kit, TestClient]:
        values = {"reviewer_password": REVIEWER_PASSWORD, "admin_token": ADMIN_TOKEN, **overrides}
        kit = bootstrap(settings_factory(**values)).start()
        kits.append(kit)
        return kit, TestClient(create_api(kit), client=(client_host, 50000))

    yield make
    for kit in kits:
        kit.close()
