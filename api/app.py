"""The FastAPI application: REST under /api/v1, the inbox UI, health and metrics.

Run alone against an existing database and cluster (the production shape, N replicas):
    DATABASE_URL=... TEMPORAL_ADDRESS=... uvicorn api.app:app_from_env --factory
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.errors import ApiError, Message, joined
from api.input_guard import RequestInputGuard
from api.metrics import Metrics
from api.routes import (
    audit,
    auth,
    changes,
    dashboard,
    delegations,
    lots,
    ops,
    outbox,
    processes,
    quality,
    recall,
    reports,
    tasks,
    users,
    webhooks,
)
from api.validation_problems import FieldKey, problem_of
from erp.db import make_engine, make_session_factory
from settings import Settings
from ui import i18n
from ui import routes as ui_routes

log = logging.getLogger("lotline.api")
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
# The docs page starts Swagger UI with an inline script; it shows no user data.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_BODY_BYTES = 1_000_000
# pydantic's error types for a body that is no JSON object (e.g. raw text under another type)
NOT_AN_OBJECT = ("model_attributes_type", "dict_type")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def create_app(settings: Settings, *, temporal_client: Client | None = None) -> FastAPI:
    """Build the app. Tests pass their own Temporal client; otherwise it connects lazily."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.require_database_url())
        app.state.sessions = make_session_factory(engine)
        app.state.temporal = temporal_client or await Client.connect(
            settings.require_temporal_address(),
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            lazy=True,
        )
        yield
        await engine.dispose()

    app = FastAPI(
        title="Lotline",
        version="0.1.0",
        description="Workflow-engine BPM for medical-device manufacturers. REST for external "
        "systems and the task inbox. Authenticate with `Authorization: Bearer <token>` "
        "(POST /api/v1/auth/token) or `X-API-Key`.",
        lifespan=lifespan,
        docs_url=None,  # served below from installed assets, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    for router in (
        auth.router,
        tasks.router,
        processes.router,
        changes.router,
        audit.router,
        delegations.router,
        users.router,
        lots.router,
        quality.router,
        recall.router,
        reports.router,
        dashboard.router,
        webhooks.router,
        outbox.router,
    ):
        app.include_router(router)
    app.include_router(ops.router)
    app.include_router(ui_routes.router)
    ui_routes.mount_static(app)
    _install_docs(app)
    _install_error_handlers(app)
    _install_middleware(app)
    return app


def _install_docs(app: FastAPI) -> None:
    """Swagger UI from the fastapi-offline package's assets, so /docs works with no internet."""
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Lotline API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )


def app_from_env() -> FastAPI:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s api %(levelname)s %(message)s")
    return create_app(Settings.from_env())


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics", "/openapi.json")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> Response:
        if _is_api(request):
            # English unless the caller asks for Chinese (Accept-Language: zh-CN, …)
            asked = i18n.preferred(request.headers.get("accept-language"))
            detail = i18n.translate_message(asked, err.detail)
            return JSONResponse(
                {"detail": detail}, status_code=err.status_code, headers=err.headers
            )
        return ui_routes.error_page(request, err.status_code, err.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> Response:
        content_type = request.headers.get("content-type")
        problems = [_validation_problem(e, content_type) for e in err.errors()]
        detail = Message("the request is not valid: %(problems)s", problems=joined(problems))
        if _is_api(request):
            return JSONResponse(
                {
                    "detail": _in_asked_language(request, detail),
                    "errors": [_in_asked_language(request, p) for p in problems],
                },
                status_code=422,
            )
        return ui_routes.error_page(request, 422, detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        detail = err.detail if isinstance(err.detail, str) else "request refused"
        if err.status_code == 404 and detail == "Not Found":
            detail = Message("no such address: %(path)s", path=request.url.path)
        if err.status_code == 405:
            detail = Message(
                "%(method)s is not allowed on %(path)s",
                method=request.method,
                path=request.url.path,
            )
        if err.status_code == 400 and detail == "There was an error parsing the body":
            detail = "the request body cannot be read: send a JSON object as UTF-8 text"
        if _is_api(request):
            return JSONResponse(
                {"detail": _in_asked_language(request, detail)},
                status_code=err.status_code,
                headers=err.headers,
            )
        return ui_routes.error_page(request, err.status_code, detail)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_down(request: Request, err: Exception) -> Response:
        log.warning("database unreachable on %s: %s", request.url.path, err)
        detail = "the database is not reachable right now; nothing was changed. Try again shortly."
        if _is_api(request):
            return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})
        return ui_routes.error_page(request, 503, detail)

    @app.exception_handler(DataError)
    async def unusable_value(request: Request, err: DataError) -> Response:
        """PostgreSQL refused a value the request carried (a NUL character in a text, a number
        out of range): the caller's input, not a fault. The transaction rolled back."""
        log.info("value refused by the database on %s: %s", request.url.path, err.orig)
        detail = Message(
            "a value in the request cannot be used: %(problem)s; nothing was changed",
            problem=_data_problem(err),
        )
        return _refusal(request, 422, detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> Response:
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s on %s %s", reference, request.method, request.url.path)
        detail = Message(
            "an unexpected error occurred (reference %(reference)s); check whether the request "
            "took effect before repeating it, and quote the reference to support",
            reference=reference,
        )
        if _is_api(request):
            return JSONResponse({"detail": detail}, status_code=500)
        return ui_routes.error_page(request, 500, detail)


def _validation_problem(error: Mapping[str, Any], content_type: str | None) -> str:
    """One validation error as `where: what`, a `Message` (the field's path as code, pydantic's
    English worded by `api.validation_problems`, so a Chinese caller reads it translated); for a
    body that is no JSON, or not sent as JSON, it says so instead of FastAPI's bare "JSON decode
    error" at a character position."""
    location = tuple(error.get("loc", ()))
    where = ".".join(str(p) for p in location if p != "body") or "body"
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "JSON decode error")
        return Message(
            "body: not valid JSON (%(reason)s at character %(position)s)",
            reason=str(reason),
            position=location[-1],
        )
    sent_as = (content_type or "").split(";")[0].strip().lower()
    not_json = sent_as and sent_as != "application/json" and not sent_as.endswith("+json")
    if location == ("body",) and not_json and error.get("type") in NOT_AN_OBJECT:
        return Message(
            "body: send a JSON object with Content-Type: application/json, not %(sent_as)s",
            sent_as=FieldKey(sent_as),
        )
    return problem_of(where, error)


def _data_problem(err: DataError) -> str:
    """The database's words for a refused value, made plain for the usual NUL character."""
    message = str(err.orig).splitlines()[0] if err.orig is not None else "invalid value"
    if "NUL (0x00)" in message:
        return "a text contains the NUL character (\\u0000), which no text field may hold"
    return message


def _in_asked_language(request: Request, detail: str) -> str:
    """English unless the caller asks for Chinese (Accept-Language: zh-CN, …)."""
    return i18n.translate_message(i18n.preferred(request.headers.get("accept-language")), detail)


def _refusal(request: Request, status_code: int, detail: str) -> Response:
    """A refusal before any route ran: JSON for the API, the error page for people."""
    if _is_api(request):
        return JSONResponse(
            {"detail": _in_asked_language(request, detail)}, status_code=status_code
        )
    return ui_routes.error_page(request, status_code, detail)


def _install_middleware(app: FastAPI) -> None:
    # added before `guard`, so it runs inside it: its refusals get the headers and metrics too
    app.add_middleware(RequestInputGuard, refuse=_refusal, max_body_bytes=MAX_BODY_BYTES)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            too_large = JSONResponse(
                {
                    "detail": _in_asked_language(
                        request,
                        Message(
                            "the request body is larger than %(limit)s bytes",
                            limit=MAX_BODY_BYTES,
                        ),
                    )
                },
                status_code=413,
            )
            return _with_security_headers(request, too_large)
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        metrics: Metrics = request.app.state.metrics
        metrics.requests.labels(request.method, name, str(response.status_code)).inc()
        metrics.latency.labels(name).observe(time.perf_counter() - started)
        return _with_security_headers(request, response)


def _with_security_headers(request: Request, response: Response) -> Response:
    """Every answer, refusals before the app included, carries them; only static files may be
    cached (the Swagger assets are static files too)."""
    if request.url.path == "/docs":
        response.headers["Content-Security-Policy"] = DOCS_CSP
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    if not request.url.path.startswith(("/static/", "/docs-assets/")):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
