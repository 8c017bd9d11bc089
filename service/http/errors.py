"""One error body for every failure: `{"error": CODE, "detail": ..., "field": ...}`."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core.errors import ModerationError

__all__ = ["error_body", "install_error_handlers"]

log = structlog.get_logger(__name__)


def error_body(code: str, detail: str, field: str | None = None) -> dict[str, Any]:
    return {"error": code, "detail": detail, "field": field}


def _field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _domain_error(_: Request, exc: Exception) -> ORJSONResponse:
    assert isinstance(exc, ModerationError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    if exc.status_code == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return ORJSONResponse(
        error_body(exc.code, exc.detail, exc.field), status_code=exc.status_code, headers=headers
    )


async def _validation_error(_: Request, exc: Exception) -> ORJSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first: dict[str, Any] = (
        errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    )
    if first.get("type") == "json_invalid":
        error = first.get("ctx", {}).get("error", "")
        return ORJSONResponse(
            error_body("malformed_json", f"the body is not valid JSON: {error}"), status_code=400
        )
    field = _field(tuple(first.get("loc", ())))
    message = first.get("msg", "invalid value")
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    elif first.get("type") == "missing":
        message = "field required"
    detail = f"{field}: {message}" if field else message
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ORJSONResponse(error_body("invalid", detail, field), status_code=422)


async def _http_error(_: Request, exc: Exception) -> ORJSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
        exc.status_code, "bad_request"
    )
    detail = str(exc.detail)
    if detail == "There was an error parsing the body":
        detail = "the body could not be read as UTF-8 JSON"
        code = "malformed_json"
    return ORJSONResponse(
        error_body(code, detail), status_code=exc.status_code, headers=exc.headers
    )


async def _database_error(_: Request, exc: Exception) -> ORJSONResponse:
    # Nothing was committed (the unit of work rolled back), so the client can simply retry.
    log.warning("database_unavailable", error=str(exc).splitlines()[0][:300])
    return ORJSONResponse(
        error_body("unavailable", "the database is unavailable; retry shortly"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _unexpected_error(_: Request, exc: Exception) -> ORJSONResponse:
    log.error("unhandled_error", error=repr(exc))
    return ORJSONResponse(error_body("internal", "an unexpected error occurred"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ModerationError, _domain_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
