"""Console sign-in: a session cookie, and CSRF protection for everything that changes state.

The cookie (HttpOnly, SameSite=Strict, Secure) holds a random session token whose hash is in
the database. Every state-changing request must also carry ``X-CSRF-Token``: an HMAC of the
session token under the server key, which the console page fetches from /console/api/me. A
cross-site page can make the browser send the cookie, but it cannot read that value. Requests
whose Origin header names another site are refused outright as a second line.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from starlette.requests import HTTPConnection

from chat_service.services import Services
from core.crud.agents import agent_for_session
from core.db import read_scope

COOKIE_NAME = "supportloop_console"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class AgentContext:
    agent_id: int
    name: str
    email: str
    tenant_id: int
    tenant_slug: str
    session_token: str


def csrf_token(services: Services, session_token: str) -> str:
    return hmac.new(services.secret_key, session_token.encode(), hashlib.sha256).hexdigest()


def same_origin(connection: HTTPConnection) -> bool:
    """True when the request comes from this service's own pages (or carries no Origin)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    host = connection.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def load_agent(connection: HTTPConnection) -> AgentContext | None:
    token = connection.cookies.get(COOKIE_NAME)
    if not token:
        return None
    services: Services = connection.app.state.services
    with read_scope(services.db) as session:
        found = agent_for_session(session=session, token=token)
        if found is None:
            return None
        agent, tenant = found
        assert agent.id is not None and tenant.id is not None
        return AgentContext(
            agent.id, agent.display_name, agent.email, tenant.id, tenant.slug, token
        )


def current_agent(request: Request) -> AgentContext:
    agent = load_agent(request)
    if agent is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="sign in at /console/login")
    return agent


def current_agent_checked(request: Request) -> AgentContext:
    """For state-changing requests: signed in, same origin, valid CSRF token."""
    agent = current_agent(request)
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="cross-site request refused")
    sent = request.headers.get(CSRF_HEADER, "")
    expected = csrf_token(request.app.state.services, agent.session_token)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"missing or wrong {CSRF_HEADER} header (reload the console)",
        )
    return agent


Agent = Annotated[AgentContext, Depends(current_agent)]
CheckedAgent = Annotated[AgentContext, Depends(current_agent_checked)]
