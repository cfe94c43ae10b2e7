"""``create_app(settings)``: the FastAPI application behind `ekspresi serve`.

Everything the pages need (CSS, JS, the Swagger UI of ``/docs``) is served by the app
itself, so it works on a machine with no internet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ekspresi._version import __version__
from ekspresi.web.engine import Engine
from ekspresi.web.middleware import install as install_middleware
from ekspresi.web.settings import WebSettings

log = logging.getLogger("ekspresi.web")

STATIC_DIR = Path(__file__).parent / "static"
#: Where the pages' Content-Security-Policy lets scripts and connections go: here only.
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: "
            "mediastream:; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

DESCRIPTION = """Facial expression recognition: send an image, get every face with its
emotion probabilities. The real-time page uses the WebSocket `/api/v1/stream` (send binary
JPEG frames, one at a time; each gets one JSON answer shaped like `/api/v1/analyze`'s)."""


def _swagger_static() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:
        return None
    path = Path(fastapi_offline.__file__).parent / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/healthz", "/openapi.json")):
        return True
    return "text/html" not in request.headers.get("accept", "").lower()


def create_app(settings: WebSettings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``engine`` may be passed in to share one loaded model between apps
    (tests); by default it is loaded from ``settings``."""
    settings = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # uvicorn stops on SIGTERM through here, then re-raises the signal, so atexit
            # handlers never run: the Video page's temporary clips go now.
            store = getattr(app.state, "videos", None)
            if store is not None:
                store.close()

    app = FastAPI(title="ekspresi", version=__version__, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  lifespan=lifespan)
    app.state.streams = 0   # open WebSockets of /api/v1/stream
    app.state.settings = settings
    app.state.engine = engine or Engine(settings)

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    swagger = _swagger_static()
    if swagger is not None:
        app.mount("/docs-static", StaticFiles(directory=str(swagger)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if swagger is None:
            return HTMLResponse("<h1>API docs</h1><p>Install <code>fastapi-offline</code> for "
                                "the interactive docs; the schema is at "
                                "<a href='/openapi.json'>/openapi.json</a>.</p>")
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ekspresi API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response((STATIC_DIR / "favicon.svg").read_bytes(), media_type="image/svg+xml")

    from ekspresi.web import api, pages, schemas

    app.include_router(api.router)
    app.include_router(pages.router)
    schemas.document_stream(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)
        return pages.render(request, "error.html", "", status_code=exc.status_code,
                            status=exc.status_code, message=exc.detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return JSONResponse({"detail": problems or "invalid request"}, 422)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # The traceback goes to the server log only; clients get a generic message.
        log.error("unhandled error on %s %s", request.method, request.url.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
        if _wants_json(request):
            return JSONResponse({"detail": "internal server error"}, 500)
        return pages.render(request, "error.html", "", status_code=500, status=500,
                            message="Something went wrong on the server. The error was "
                                    "logged; please try again or report it.")

    install_middleware(app, settings, page_csp=PAGE_CSP, csp_exempt=("/docs",),
                       error_handler=server_error)
    return app
