"""The FastAPI application: the engine is opened once in the lifespan and shared by all routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from scimatch.api.docs import add_offline_docs
from scimatch.api.ratelimit import RequestLimits
from scimatch.api.routes import documents, match, proposals, regions, search, system, web
from scimatch.engine.engine import Engine
from scimatch.errors import InputError, NotFoundError, ScimatchError
from scimatch.models import Encoder
from scimatch.settings import Settings


def create_app(settings: Settings | None = None, encoder: Encoder | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = Engine(settings, encoder=encoder)
        engine.encoder.encode_query("warm up")  # load the model now, not on the first query
        app.state.engine = engine
        app.state.settings = settings
        try:
            yield
        finally:
            engine.close()

    app = FastAPI(title="scimatch", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Hybrid search and matching over publications, projects, grants and organizations.")
    add_offline_docs(app)
    for module in (match, regions, search, documents, proposals, system, web):
        app.include_router(module.router)
    app.add_middleware(RequestLimits, settings=settings)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(InputError)
    async def bad_input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(ScimatchError)
    async def domain_error(_: Request, exc: ScimatchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)

    return app


def app_from_environment() -> FastAPI:
    """The app each worker process of ``scimatch serve --workers N`` builds (``uvicorn --factory``):
    its settings come from the ``SCIMATCH_*`` variables the serve command exported."""
    return create_app(Settings())
