"""/docs: Swagger UI served from the package under a strict CSP, rendered by a real Chromium."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.stack import Stack

pytestmark = pytest.mark.integration

# Filled in by the page itself: what the browser refused under the page's CSP.
_RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_docs_render_the_operations_from_this_origin_only(chromium: Browser, stack: Stack) -> None:
    context = chromium.new_context(base_url=stack.base_url)
    context.set_default_timeout(15_000)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    try:
        page = context.new_page()
        page.add_init_script(_RECORD_CSP_VIOLATIONS)
        response = page.goto("/docs")
        assert response is not None and response.status == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self' 'sha256-" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp

        comments = page.locator(".opblock-summary-path[data-path='/v1/comments']")
        expect(comments.first).to_be_visible()
        assert page.locator(".opblock").count() > 20, "every operation is listed"
        # Open one operation and run it from the page: its fetch goes to this origin.
        ready = page.locator(".opblock-get .opblock-summary-path[data-path='/readyz']")
        ready.click()
        page.locator(".opblock.is-open button.try-out__btn").click()
        page.locator(".opblock.is-open button.execute").click()
        status = page.locator(".opblock.is-open .live-responses-table tbody .response-col_status")
        expect(status).to_have_text("200")
        page.wait_for_load_state("networkidle")

        assert page.evaluate("() => window.cspViolations") == []
        elsewhere = [url for url in requested if not url.startswith(f"{stack.base_url}/")]
        assert elsewhere == [], "nothing is loaded from another origin"
        assert f"{stack.base_url}/docs/static/swagger-ui-bundle.js" in requested
    finally:
        context.close()


def test_docs_assets_are_the_packaged_ones_and_nothing_else(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        html = client.get("/docs").text
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
        script = client.get("/docs/static/swagger-ui-bundle.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.headers["x-content-type-options"] == "nosniff"
        # The bundle's demo page and OAuth2 redirect page are not served from this origin.
        for path in ("/docs/static/index.html", "/docs/static/oauth2-redirect.html", "/redoc"):
            assert client.get(path).status_code == 404, path
        # Swagger UI 5 reads the schema as FastAPI writes it: one document for every reader.
        assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
        assert "/openapi.json" in html
