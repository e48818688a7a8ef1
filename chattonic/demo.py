"""The demo tenant that ``make run`` loads, so a new user has something to open."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from chattonic.tenancy import services as tenancy_services
from chattonic.tenancy.models import Membership, Tenant

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.example"
DEMO_PASSWORD = "chattonic-demo"  # noqa: S105 - the local demo's printed sign-in


@dataclass
class Demo:
    tenant: Tenant
    owner_email: str
    password: str


@transaction.atomic
def demo_load() -> Demo:
    """Create the demo tenant and its owner, or bring them back to their known state."""
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        tenant = tenancy_services.tenant_create(
            name="Demo Company",
            slug=DEMO_SLUG,
            owner_email=DEMO_OWNER_EMAIL,
            owner_password=DEMO_PASSWORD,
        )
    owner = Membership.objects.for_tenant(tenant).get(user__username=DEMO_OWNER_EMAIL).user
    owner.set_password(DEMO_PASSWORD)
    owner.is_active = True
    owner.save(update_fields=["password", "is_active"])
    return Demo(tenant=tenant, owner_email=DEMO_OWNER_EMAIL, password=DEMO_PASSWORD)


def demo_urls(base_url: str, demo: Demo) -> list[tuple[str, str]]:
    """What ``make run`` prints: a label and a URL for each door."""
    base_url = base_url.rstrip("/")
    return [
        ("Dashboard", f"{base_url}/dashboard/"),
        ("API docs", f"{base_url}/api/docs/"),
        ("Readiness", f"{base_url}/readyz"),
    ]
