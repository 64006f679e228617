"""Shared dependencies: the engine from app state, settings, and the admin-key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from scimatch.engine.engine import Engine
from scimatch.settings import Settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_admin(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(description="Admin key for writes.")] = None,
) -> None:
    """401 without a key, 403 with a wrong one (or when writes are not enabled at all)."""
    if x_api_key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header",
                            headers={"WWW-Authenticate": "APIKey"})
    if not settings.admin_key:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "writes are disabled: no admin key is configured")
    if not hmac.compare_digest(x_api_key.encode(), settings.admin_key.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key may not write")


AdminDep = Depends(require_admin)
