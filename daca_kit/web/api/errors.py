"""The kit's errors as HTTP answers: each a JSON `{"detail": sentence}` with its status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from daca_kit.core.ratelimit import retry_after_header
from daca_kit.errors import AlreadyDecided, BackendError, DacaError, InputError, NotFound, RateLimited

log = logging.getLogger(__name__)

STATUS: tuple[tuple[type[DacaError], int], ...] = (
    (InputError, 422),
    (RateLimited, 429),
    (NotFound, 404),
    (AlreadyDecided, 409),
    (BackendError, 503),
)


def validation_sentence(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + "."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_sentence(exc)})

    @app.exception_handler(DacaError)
    async def _daca(_request: Request, exc: DacaError) -> JSONResponse:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
        headers = {"Retry-After": retry_after_header(exc.retry_after)} if isinstance(exc, RateLimited) else {}
        if status >= 500:
            log.warning("request failed: %s", exc)
        return JSONResponse(status_code=status, content={"detail": str(exc)}, headers=headers)
