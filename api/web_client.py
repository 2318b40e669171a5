"""The browser client and the API docs, served from the project's own files.

`/` and every client route (`/rooms/{id}`, `/settings/...`) answer with the same index.html, so
a deep link or a reload lands in the client, which then reads the path. Everything the pages
load comes from `/web/`; the docs use vendored Swagger UI and Redoc, so they work offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent / "web"

# No inline script or style, nothing from another origin. The client sets CSS custom
# properties through the CSSOM (element.style), which style-src does not govern.
CLIENT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and Redoc inject <style> elements at run time (React / styled-components), and
# Redoc runs its search index in a worker it builds from a blob.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


# Paths the client routes itself (api/web/js/router.js); the server answers them with index.html.
CLIENT_ROUTES = (
    "/",
    "/rooms/{room_id}",
    "/rooms/{room_id}/{panel}",
    "/settings",
    "/settings/{section}",
    "/confirm-email",
)

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · API docs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/web/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec_url}"></div>
<script src="/web/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/web/docs/swagger-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · API reference</title>
<link rel="icon" href="data:,">
</head>
<body>
<div id="redoc" data-spec-url="{spec_url}"></div>
<script src="/web/vendor/redoc/redoc.standalone.js"></script>
<script src="/web/docs/redoc-init.js"></script>
</body>
</html>
"""


def install_web_client(app: FastAPI) -> None:
    """Routes for the client's pages and the docs, and /web/ for their files."""
    if not (WEB_DIR / "index.html").exists():
        return
    index = WEB_DIR / "index.html"

    async def client_page() -> FileResponse:
        return FileResponse(index, headers=_headers(CLIENT_CSP))

    for path in CLIENT_ROUTES:
        app.add_api_route(path, client_page, methods=["GET"], include_in_schema=False)

    spec_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = SWAGGER_PAGE.format(title=app.title, spec_url=spec_url)
        return HTMLResponse(page, headers=_headers(DOCS_CSP))

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = REDOC_PAGE.format(title=app.title, spec_url=spec_url)
        return HTMLResponse(page, headers=_headers(DOCS_CSP))

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
