"""FastAPI dependencies: services, database sessions and bearer-token authentication."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from chat_service.services import Services
from core.crud.tenants import authenticate_api_key
from core.db import read_scope, session_scope
from core.models import Tenant

_bearer = HTTPBearer(auto_error=False, description="A tenant API key or the admin token.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with session_scope(services.db) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def get_current_tenant(services: ServicesDep, credentials: BearerDep) -> Tenant:
    """Authenticates in its own short read (no write lock), apart from the route's own work."""
    if credentials is None:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <tenant API key>'")
    with read_scope(services.db) as session:
        tenant = authenticate_api_key(session=session, key=credentials.credentials)
    if tenant is None:
        raise _unauthorized("invalid or revoked API key")
    return tenant


CurrentTenant = Annotated[Tenant, Depends(get_current_tenant)]


def require_admin(services: ServicesDep, credentials: BearerDep) -> None:
    expected = services.settings.admin_token
    if not expected:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="admin API disabled: set SUPPORTLOOP_ADMIN_TOKEN to enable it",
        )
    if credentials is None:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise _unauthorized("invalid admin token")


AdminDep = Annotated[None, Depends(require_admin)]
