"""The interactive API docs (Swagger UI) served from the package, not a CDN: the portal runs offline.

FastAPI's default ``/docs`` page loads Swagger UI's script and style from cdn.jsdelivr.net, which leaves
it blank on a machine without internet. The ``swagger-ui-bundle`` package (PyPI, Apache-2.0) carries the
same files; they are mounted under ``/docs-static``. ReDoc has no such package, so ``/redoc`` is off.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC = "/docs-static"


def add_offline_docs(app: FastAPI, docs_url: str = "/docs") -> None:
    """Serve Swagger UI at ``docs_url`` from local files (create the app with ``docs_url=None``)."""
    app.mount(STATIC, StaticFiles(directory=str(swagger_ui_path)), name="docs-static")
    redirect_url = f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            oauth2_redirect_url=redirect_url, swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css", swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
