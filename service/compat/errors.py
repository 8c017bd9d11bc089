"""Errors in the caller's own format: Google's for Perspective clients, OpenAI's for OpenAI's.

Each compatibility router uses a route class of its format, so every failure of its routes
(bad JSON, a missing key, a domain error, a body over the limit, a bug) answers in that format:
the clients parse these bodies, and some crash on anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core.errors import AuthError, ModerationError, RateLimited

__all__ = [
    "GoogleError",
    "GoogleRoute",
    "OpenAIError",
    "OpenAIRoute",
    "as_google",
    "google_response",
    "invalid_key",
    "openai_response",
    "too_large_body",
]

log = structlog.get_logger(__name__)

PERSPECTIVE_ERROR_TYPE = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
# Google's canonical status names by HTTP status.
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
# Where each format is spoken, for the errors raised before a route runs (the body limit).
PERSPECTIVE_PREFIXES = ("/v1alpha1/", "/comments:", "/$discovery/", "/batch")
OPENAI_PREFIXES = ("/v1/moderations",)


class GoogleError(Exception):
    """A failure as Google APIs report it; `error_type` is Perspective's own code for it."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 400,
        error_type: str = "INVALID_REQUEST",
        extra: dict[str, Any] | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.headers = headers
        # Never empty: a widely used client reads details[0] of every error.
        self.details = details or [
            {"@type": PERSPECTIVE_ERROR_TYPE, "errorType": error_type, **(extra or {})}
        ]

    def body(self) -> dict[str, Any]:
        status = _GOOGLE_STATUS.get(self.code, "UNKNOWN")
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "status": status,
                "details": self.details,
            }
        }


def invalid_key() -> GoogleError:
    # What Google answers for a bad key: a 400, not a 401 or 403; clients test for the reason.
    return GoogleError(
        "API key not valid. Please pass a valid API key.",
        details=[
            {"@type": ERROR_INFO_TYPE, "reason": "API_KEY_INVALID", "domain": "googleapis.com"}
        ],
    )


def as_google(exc: Exception) -> GoogleError:
    if isinstance(exc, GoogleError):
        return exc
    if isinstance(exc, AuthError):
        return invalid_key()
    if isinstance(exc, ModerationError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        details = None
        if isinstance(exc, RateLimited):  # what Google's quota errors carry
            reason = {"reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com"}
            details = [{"@type": ERROR_INFO_TYPE, **reason}]
        # Google reports every bad argument as a 400; it has no 422.
        code = 400 if exc.status_code == 422 else exc.status_code
        return GoogleError(exc.detail, code=code, details=details, headers=headers)
    if isinstance(exc, RequestValidationError):
        return GoogleError(f"Invalid JSON payload received. {_first_problem(exc)}")
    if isinstance(exc, StarletteHTTPException):
        message = str(exc.detail)
        if exc.status_code == 413:
            return GoogleError(message, code=413, error_type="COMMENT_TOO_LONG")
        return GoogleError(message, code=exc.status_code)
    if isinstance(exc, OperationalError):
        return GoogleError("The service is unavailable; retry shortly.", code=503)
    log.error("unhandled_error", error=repr(exc))
    return GoogleError("Internal error encountered.", code=500)


class OpenAIError(Exception):
    """A failure as OpenAI's API reports it: `{"error": {message, type, param, code}}`."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers
        self.message, self.status, self.type, self.param, self.code = (
            message,
            status,
            type_,
            param,
            code,
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def _as_openai(exc: Exception) -> OpenAIError:
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, AuthError):
        return OpenAIError(
            f"Incorrect API key provided ({exc.detail}).", status=401, code="invalid_api_key"
        )
    if isinstance(exc, RateLimited):
        return OpenAIError(
            exc.detail,
            status=429,
            type_="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, ModerationError):
        return OpenAIError(exc.detail, status=exc.status_code, param=exc.field, code=exc.code)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        if first.get("type") == "json_invalid":  # its loc holds the byte offset, not a param
            param = None
        return OpenAIError(_first_problem(exc), param=param)
    if isinstance(exc, StarletteHTTPException):
        return OpenAIError(str(exc.detail), status=exc.status_code)
    if isinstance(exc, OperationalError):
        return OpenAIError("The service is unavailable; retry shortly.", status=503)
    log.error("unhandled_error", error=repr(exc))
    return OpenAIError("The server had an error.", status=500, type_="server_error")


def _first_problem(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first: dict[str, Any] = errors[0]
    if first.get("type") == "json_invalid":
        return "the body is not valid JSON"
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = str(first.get("msg", "invalid value"))
    return f"{field}: {message}" if field else message


def _guarded(
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
    render: Callable[[Exception], Response],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return render(exc)

    return guarded


def google_response(exc: Exception) -> Response:
    error = as_google(exc)
    return ORJSONResponse(error.body(), status_code=error.code, headers=error.headers)


def openai_response(exc: Exception) -> Response:
    error = _as_openai(exc)
    return ORJSONResponse(error.body(), status_code=error.status, headers=error.headers)


class GoogleRoute(APIRoute):
    """A Perspective route: every failure in Google's error format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return _guarded(super().get_route_handler(), google_response)


class OpenAIRoute(APIRoute):
    """An OpenAI-compatible route: every failure in OpenAI's error format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return _guarded(super().get_route_handler(), openai_response)


def too_large_body(path: str, detail: str) -> tuple[bytes, str] | None:
    """The 413 body (and its content type) for a compatibility path; None for the others."""
    if path.startswith(PERSPECTIVE_PREFIXES):
        error = GoogleError(detail, code=413, error_type="COMMENT_TOO_LONG")
        return orjson.dumps(error.body()), "application/json"
    if path.startswith(OPENAI_PREFIXES):
        return orjson.dumps(OpenAIError(detail, status=413).body()), "application/json"
    return None
