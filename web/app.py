"""The Starlette application factory: routes, error handlers and the lifespan.

``create_app(settings)`` is the composition root. Its lifespan connects Redis and SQL, runs the
migrations, loads the platform key and starts the fan-out hub and the closer; on shutdown it
stops them. When ``settings.redis_url`` is None it starts the embedded Redis itself (tests, a
single process); the CLI starts it before the workers so they share one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from bidroom.config import Settings
from bidroom.stores.embedded import EmbeddedRedis, EmbeddedRedisWatchdog
from web.errors import exception_handlers
from web.services import SERVICES_STATE_KEY, build_services

__all__ = ["create_app"]

log = logging.getLogger("bidroom.web")


def _routes() -> list[BaseRoute]:
    from web.api import routes as api_routes
    from web.openapi import routes as openapi_routes
    from web.pages import routes as page_routes
    from web.ws import routes as ws_routes

    return [*api_routes(), *openapi_routes(), *ws_routes(), *page_routes()]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        embedded: EmbeddedRedis | None = None
        watchdog: EmbeddedRedisWatchdog | None = None
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir / "redis",
                                     appendfsync=settings.redis_appendfsync)
            redis_url = embedded.start()
            watchdog = EmbeddedRedisWatchdog(embedded)
            watchdog.start()
        services = await build_services(settings, redis_url=redis_url,
                                        database_url=settings.resolved_database_url())
        app.state.services = services
        try:
            yield {SERVICES_STATE_KEY: services}  # the lifespan state: web.wsproto reads it
        finally:
            await services.aclose()
            if watchdog is not None:
                watchdog.stop()
            if embedded is not None:
                embedded.stop()

    app = Starlette(routes=_routes(), exception_handlers=exception_handlers, lifespan=lifespan)
    app.state.settings = settings
    return app
