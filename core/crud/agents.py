"""Console agents: accounts, password checks and sign-in sessions."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from core.errors import ConflictError, InvalidError
from core.models import Agent, AgentSession, Tenant, utcnow
from core.secrets import hash_token, new_token

MIN_PASSWORD_CHARS = 10
SESSION_TOKEN_PREFIX = "sla"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the email is unknown, so a wrong email costs as long as a wrong
# password and response times do not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("no such agent, but take the same time")


class AgentExistsError(ConflictError):
    pass


def create_agent(
    *, session: Session, tenant_id: int, email: str, password: str, display_name: str = ""
) -> Agent:
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidError(f"not an email address: {email!r}")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidError(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    existing = session.exec(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.email == email)
    ).first()
    if existing is not None:
        raise AgentExistsError(f"agent {email} already exists")
    agent = Agent(
        tenant_id=tenant_id,
        email=email,
        display_name=display_name or email.split("@")[0],
        password_hash=_hasher.hash(password),
    )
    session.add(agent)
    session.flush()
    return agent


def authenticate_agent(
    *, session: Session, tenant_id: int, email: str, password: str
) -> Agent | None:
    agent = session.exec(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.email == email.strip().lower())
    ).first()
    try:
        _hasher.verify(agent.password_hash if agent else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if agent is None or agent.disabled:
        return None
    if _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = _hasher.hash(password)
        session.add(agent)
    return agent


def start_agent_session(*, session: Session, agent: Agent, hours: int) -> str:
    """Returns the cookie value; only its hash is stored."""
    assert agent.id is not None
    token = new_token(SESSION_TOKEN_PREFIX)
    session.add(
        AgentSession(
            agent_id=agent.id,
            token_hash=hash_token(token),
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    return token


def agent_for_session(*, session: Session, token: str) -> tuple[Agent, Tenant] | None:
    row = session.exec(
        select(AgentSession, Agent, Tenant)
        .join(Agent, Agent.id == AgentSession.agent_id)  # type: ignore[arg-type]
        .join(Tenant, Tenant.id == Agent.tenant_id)  # type: ignore[arg-type]
        .where(AgentSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    agent_session, agent, tenant = row
    if agent_session.expires_at <= utcnow() or agent.disabled:
        return None
    return agent, tenant


def end_agent_session(*, session: Session, token: str) -> None:
    row = session.exec(
        select(AgentSession).where(AgentSession.token_hash == hash_token(token))
    ).first()
    if row is not None:
        session.delete(row)
