"""The kit as a FastAPI dependency: `KitDep` in a route's signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from daca_kit.core.kit import Kit


async def get_kit(request: Request) -> Kit:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a round trip per request for a lookup
    return request.app.state.kit  # type: ignore[no-any-return]


KitDep = Annotated[Kit, Depends(get_kit)]
