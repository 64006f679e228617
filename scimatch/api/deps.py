"""Shared dependencies: the engine from app state, settings, and who is calling (API key → role)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from scimatch.api.auth import ANONYMOUS, KeyRing, Principal, Role
from scimatch.engine.engine import Engine
from scimatch.settings import Settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def current_keyring(request: Request) -> KeyRing:
    """The configured keys, re-read when the key file changes (``scimatch keys add`` while serving)."""
    settings: Settings = request.app.state.settings
    path = settings.key_file()
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    cached = getattr(request.app.state, "keyring", None)
    if cached is None or cached[0] != stamp:
        cached = (stamp, KeyRing.load(path, settings.api_keys, settings.admin_key))
        request.app.state.keyring = cached
    return cached[1]


def get_principal(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="API key: officer for proposals, admin for writes.")] = None,
) -> Principal:
    """Anonymous without a key; 401 for a key that matches no configured key."""
    if x_api_key is None:
        return ANONYMOUS
    principal = current_keyring(request).identify(x_api_key)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key", headers={"WWW-Authenticate": "APIKey"})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(role: Role) -> Callable[[Principal], Principal]:
    """401 without a key (authenticate first), 403 with a valid key whose role is too low."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.role >= role:
            return principal
        if principal is ANONYMOUS:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"this needs an {role.name} API key in the X-API-Key header",
                                headers={"WWW-Authenticate": "APIKey"})
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the key {principal.name!r} ({principal.role.name}) "
                                                       f"may not do this: it needs the {role.name} role")

    return check


AdminDep = Depends(require(Role.admin))
OfficerDep = Depends(require(Role.officer))
Officer = Annotated[Principal, Depends(require(Role.officer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
