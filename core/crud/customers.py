"""Customers known by an id in another system (a widget visitor, the tenant's own user id)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

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
