"""Refuse request bodies over the configured size before anything reads them."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import orjson
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ADMIN_BODY_PATHS", "BodySizeLimit", "ErrorBody"]

# A site's word lists (10,000 entries of up to 100 characters) and policy bodies (an allow-list
# of 1,000 domains) are far larger than a comment: their routes take `max_admin_body_bytes`.
ADMIN_BODY_PATHS = re.compile(
    r"^/v1/sites/[^/]+/(?:lists/[^/]+|policy|(?:sections|articles)/.+/policy)$"
    r"|^/moderate/admin/(?:lists/[^/]+|policy|(?:sections|articles)/.+)$"
)


# A path's own 413 body and content type (the compatibility routes speak their callers'
# formats), or None for the service's own.
ErrorBody = Callable[[str, str], tuple[bytes, str] | None]


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        error_body: ErrorBody | None = None,
        larger: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.error_body = error_body
        self.larger = larger

    def _limit(self, path: str) -> int:
        return next((n for pattern, n in self.larger if pattern.match(path)), self.max_bytes)

    @staticmethod
    def _detail(limit: int) -> str:
        return f"the request body is over the limit of {limit} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        detail = self._detail(limit)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                own = self.error_body(scope["path"], detail) if self.error_body else None
                body, content_type = own or (
                    orjson.dumps({"error": "body_too_large", "detail": detail, "field": None}),
                    "application/json",
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [(b"content-type", content_type.encode())],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return

        received = 0

        async def limited_receive() -> Message:
            # A chunked body has no length up front: count it as it streams in. The route's
            # body reader re-raises HTTPException, and the error handler renders it.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(status_code=413, detail=detail)
            return message

        await self.app(scope, limited_receive, send)
