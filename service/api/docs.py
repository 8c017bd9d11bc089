"""/docs: Swagger UI served from the fastapi-swagger package, never from a CDN.

The page shares its origin with the moderators' pages (/moderate), so it loads nothing from
elsewhere and runs under a CSP that allows scripts from this origin and the page's one inline
bootstrap script (by its hash), nothing else. Swagger UI 5 reads FastAPI's OpenAPI 3.1 as is.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from service.http.deps import Anonymous

__all__ = ["install_docs"]

ASSETS = "/docs/static"
# Only what the page loads.
_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})


class _SwaggerAssets(StaticFiles):
    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        return super().lookup_path(path) if path in _FILES else ("", None)

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _inline_script_hash(html: str) -> str:
    """The CSP source that lets the page's one inline bootstrap script run, and nothing else."""
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    if len(scripts) != 1:
        raise RuntimeError("FastAPI's Swagger UI page changed: expected one inline script")
    digest = hashlib.sha256(scripts[0].encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def install_docs(app: FastAPI) -> None:
    """Serve /docs and its assets on `app` (made with docs_url=None, redoc_url=None)."""
    directory = str(files("fastapi_swagger") / "resources")
    app.mount(ASSETS, _SwaggerAssets(directory=directory), name="swagger-ui")
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},  # never send the schema to swagger.io
    )
    body = bytes(page.body)
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'self' {_inline_script_hash(body.decode())}; "
            "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }

    @app.get("/docs", include_in_schema=False, dependencies=[Anonymous])
    def docs() -> HTMLResponse:
        return HTMLResponse(body, headers=headers)
