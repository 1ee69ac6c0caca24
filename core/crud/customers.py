"""Customers known by an id in another system (a widget visitor, the tenant's own user id)."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.models import Customer, CustomerExternalId


def customer_for_identity(
    *,
    session: Session,
    tenant_id: int,
    source: str,
    external_id: str,
    verified: bool,
    display_name: str = "",
    email: str | None = None,
    tier: str | None = None,
) -> Customer:
    """The customer behind (source, external_id), created on first sight. A verified identity
    marks the customer verified and refreshes the name and email the tenant vouched for."""

    def find() -> Customer | None:
        return session.exec(
            select(Customer)
            .join(CustomerExternalId, CustomerExternalId.customer_id == Customer.id)  # type: ignore[arg-type]
            .where(
                CustomerExternalId.tenant_id == tenant_id,
                CustomerExternalId.source == source,
                CustomerExternalId.external_id == external_id,
            )
        ).first()

    customer = find()
    if customer is None:
        try:
            with session.begin_nested():  # two tabs of one visitor may race here
                customer = Customer(tenant_id=tenant_id)
                session.add(customer)
                session.flush()
                assert customer.id is not None
                session.add(
                    CustomerExternalId(
                        tenant_id=tenant_id,
                        customer_id=customer.id,
                        source=source,
                        external_id=external_id,
                    )
                )
                session.flush()
        except IntegrityError:
            customer = find()
            assert customer is not None
    if verified:
        customer.verified = True
        customer.display_name = display_name or customer.display_name
        customer.email = email or customer.email
        customer.tier = tier or customer.tier
        session.add(customer)
    return customer


def customer_for_requester(
    *,
    session: Session,
    tenant_id: int,
    source: str,
    external_id: str | None,
    email: str | None,
    name: str | None,
) -> Customer | None:
    """The customer behind a CRM requester: by the provider's person id (created on first
    sight), else by email within the tenant. A CRM record identifies the person, so the customer
    is verified (their conversations train like any agent-handled record)."""
    if external_id:
        return customer_for_identity(
            session=session,
            tenant_id=tenant_id,
            source=source,
            external_id=external_id,
            verified=True,
            display_name=name or "",
            email=email,
        )
    if not email:
        return None
    found = session.exec(
        select(Customer).where(
            Customer.tenant_id == tenant_id, func.lower(Customer.email) == email.strip().lower()
        )
    ).first()
    if found is not None:
        return found
    customer = Customer(tenant_id=tenant_id, display_name=name or "", email=email, verified=True)
    session.add(customer)
    session.flush()
    return customer


def customers_matching(
    *, session: Session, tenant_id: int, email: str | None = None, external: str | None = None
) -> list[Customer]:
    """Everyone an erasure request names: by email (any case), or by ``PROVIDER:ID``."""
    query = select(Customer).where(Customer.tenant_id == tenant_id)
    if email is not None:
        query = query.where(func.lower(Customer.email) == email.strip().lower())
    if external is not None:
        source, _, external_id = external.partition(":")
        query = query.join(
            CustomerExternalId,
            CustomerExternalId.customer_id == Customer.id,  # type: ignore[arg-type]
        ).where(CustomerExternalId.source == source, CustomerExternalId.external_id == external_id)
    return list(session.exec(query).all())


def external_ids_of(*, session: Session, customer_ids: list[int]) -> list[CustomerExternalId]:
    return list(
        session.exec(
            select(CustomerExternalId).where(col(CustomerExternalId.customer_id).in_(customer_ids))
        ).all()
    )
