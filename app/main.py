"""create_app(): settings, database, scenarios, routers, error handlers and security headers."""

import gc
import logging
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import i18n
from app.auth.pages import router as auth_pages_router
from app.auth.ratelimit import EditRateLimiter, FailureLimiter, JoinGuard
from app.auth.views import router as auth_router
from app.config import Settings, get_settings
from app.db import make_engine, reading
from app.debrief.pages import router as debrief_pages_router
from app.debrief.views import router as debrief_router
from app.errors import install_error_handlers
from app.exercises.pages import LoginRequired, login_redirect
from app.exercises.pages import router as exercises_pages_router
from app.exercises.views import router as exercises_router
from app.export.views import MAX_ARCHIVE_BYTES
from app.export.views import router as export_router
from app.export.worker import ExportWorker
from app.live.broker import make_broker
from app.live.frames import KeepServerSend
from app.live.hub import Hub
from app.live.scheduler import FollowupScheduler
from app.live.views import router as live_router
from app.logs import AccessLog
from app.responses.views import router as responses_router
from app.scenarios import importer
from app.scenarios.import_views import pages as scenario_import_pages
from app.scenarios.import_views import router as scenario_import_router
from app.scenarios.loader import ScenarioLibrary, load_scenario_dir
from app.scenarios.views import router as scenarios_router
from app.web.limits import BodyLimits

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The interactive API docs load their own scripts; they get a policy that allows exactly that.
DOCS_PATHS = ("/docs", "/redoc")
GIL_SWITCH_INTERVAL_S = 0.001
# Python's defaults are (700, 10, 10): a young collection every 700 net allocations.
GC_THRESHOLDS = (50_000, 20, 100)


class SecurityHeaders:
    """Adds the hardening headers to every HTTP answer, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or scope["path"].startswith(DOCS_PATHS):
            # Handed on as the inner app's own coroutine: a websocket's chain of coroutines
            # lives as long as the socket, and a frame of ours would, once per participant.
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _build_route_tables(app: FastAPI) -> None:
    """Walk every router once, so that each builds its route table before the first request.

    FastAPI builds an included router's table on the first request that walks it (0.1 s on a
    2-core machine); after a restart that request is one of hundreds of returning sockets.
    """
    scope: Scope = {"type": "http", "method": "GET", "path": "/", "root_path": "", "headers": []}
    for route in app.router.routes:
        route.matches(scope)


def create_app(
    settings: Settings | None = None, *, scenarios: ScenarioLibrary | None = None
) -> FastAPI:
    """The application, ready to serve; refuses to build on a broken scenario file."""
    settings = settings or get_settings()
    library = scenarios or load_scenario_dir(settings.scenarios_dir)
    engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The event loop gives up the GIL on every socket send and then waits for a busy worker
        # thread (a batch of edits, a snapshot) to hand it back, by default after 5 ms, send after
        # send. A shorter interval makes fan-out beside database work several times faster.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        # Python's full garbage collections walk every live object: with the app's modules,
        # 500 sockets and their state they took 100-200 ms, and everything waited (the edit
        # latency's p99 was 150 ms instead of 60). What exists at start-up lives as long as the
        # process, so it is set aside for good (freeze); young collections run less often. It is
        # not collected first: that took 0.1 s of every start to find a few hundred objects.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        gc.enable()  # `tabletop serve` starts with the collector off (app/cli.py)
        _build_route_tables(app)
        await hub.start()
        followups.start()
        try:
            yield
        finally:
            await followups.stop()
            await hub.stop()
            exports.shutdown()
            engine.dispose()

    app = FastAPI(
        title="Tabletop",
        summary="Live incident-response tabletop exercises (JNSA CISO handbook workshop)",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.scenarios = importer.with_imports(library, engine=engine)
    hub = Hub(engine=engine, broker=make_broker(settings.broker_url))
    followups = FollowupScheduler(library=app.state.scenarios, session_factory=hub.session)
    app.state.hub = hub
    exports = ExportWorker(
        database_url=settings.database_url, separate_process=settings.export_worker
    )
    app.state.exports = exports
    app.state.followups = followups
    app.state.on_events = hub.on_events
    app.state.login_limiter = FailureLimiter(
        limit=settings.failed_login_limit, window_s=settings.failure_window_s, what="login"
    )
    app.state.edit_limiter = EditRateLimiter(
        rate_per_s=settings.edits_per_second, burst=settings.edit_burst
    )
    app.state.join_limiter = JoinGuard(
        per_client=FailureLimiter(
            limit=settings.failed_join_limit,
            window_s=settings.failure_window_s,
            lockout_s=settings.join_lockout_s,
            what="join",
        ),
        overall=FailureLimiter(
            limit=settings.failed_join_global_limit, window_s=settings.failure_window_s, what="join"
        ),
    )

    install_error_handlers(app)
    app.include_router(auth_router)
    app.include_router(scenarios_router)
    app.include_router(scenario_import_router)
    app.include_router(exercises_router)
    app.include_router(responses_router)
    app.include_router(debrief_router)
    app.include_router(export_router)
    app.include_router(live_router)
    app.include_router(auth_pages_router)
    app.include_router(exercises_pages_router)
    app.include_router(debrief_pages_router)
    app.include_router(scenario_import_pages)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    i18n.install_html_error_pages(app)
    app.add_exception_handler(LoginRequired, login_redirect)

    @app.get("/healthz", tags=["operations"])
    def healthz(request: Request) -> dict[str, str]:
        """200 once the database answers and the scenarios are loaded."""
        with reading(request.app.state.engine).connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok"}

    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        larger={
            "/api/scenarios/import": importer.MAX_FILE_BYTES + 64 * 1024,
            "/api/exercises/import": MAX_ARCHIVE_BYTES,
        },
    )
    app.add_middleware(SecurityHeaders)
    # Outside the others, so refusals by the other middleware are logged with their status too.
    app.add_middleware(AccessLog)
    # Outermost: it must see the server's own send (see app/live/frames.py).
    app.add_middleware(KeepServerSend)
    return app
