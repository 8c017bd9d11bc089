"""Refuse request bodies over the configured size before anything reads them."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "ErrorBody"]


# A path's own 413 body and content type (the compatibility routes speak their callers'
# formats), or None for the service's own.
ErrorBody = Callable[[str, str], tuple[bytes, str] | None]


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, error_body: ErrorBody | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.error_body = error_body

    def _detail(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                own = self.error_body(scope["path"], self._detail()) if self.error_body else None
                body, content_type = own or (
                    orjson.dumps(
                        {"error": "body_too_large", "detail": self._detail(), "field": None}
                    ),
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
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=self._detail())
            return message

        await self.app(scope, limited_receive, send)
