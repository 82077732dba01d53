"""The API docs pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) with no CDN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a laptop without internet
(or an air-gapped server) ``/docs`` is blank. The same assets ship in the
``fastapi-offline`` package, a pinned dependency; they are served from its installed
folder under :data:`ASSETS_PATH`, so every URL in the pages is this server's own.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

__all__ = ["ASSETS_DIR", "ASSETS_PATH", "install_docs"]

#: URL prefix of the docs assets.
ASSETS_PATH = "/docs-assets"
#: Where the installed package keeps them: swagger-ui-bundle.js, swagger-ui.css,
#: redoc.standalone.js, favicon.png.
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"


def install_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the docs pages and their assets; ``app`` must be built with ``docs_url=None``
    and ``redoc_url=None`` so that FastAPI's CDN pages are not there too."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    oauth2_redirect = f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            oauth2_redirect_url=f"{root}{oauth2_redirect}",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            # Swagger UI would otherwise send the document to a public validator for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
