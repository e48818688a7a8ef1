"""Tenants, their staff and their API keys; the base of every tenant-owned model."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from chattonic.regions import this_region


class Tenant(models.Model):
    """A business using Chat-Tonic: it owns bots, channels, conversations and staff."""

    class AssignmentPolicy(models.TextChoices):
        CLAIM = "claim", "Agents claim conversations from the queue"
        ROUND_ROBIN = "round_robin", "Automatic round-robin (capacity and presence respected)"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    assignment_policy = models.CharField(
        max_length=12, choices=AssignmentPolicy.choices, default=AssignmentPolicy.CLAIM
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The region whose deployment keeps the tenant's identity (its staff and memberships):
    # the other regions hold copies of it from the exchange (chattonic.regions.exchange).
    region = models.CharField(max_length=40, default=this_region, editable=False)
    # Who Trello alerts of every change to this tenant's tickets (members of their cards);
    # blank: the deployment's TRELLO_DEVELOPER_ID / TRELLO_COORDINATOR_ID. Operators only.
    trello_developer_id = models.CharField(
        "developer's Trello member id",
        max_length=64,
        blank=True,
        help_text="The developer assigned to this tenant's project. Blank: the deployment's "
        "default (TRELLO_DEVELOPER_ID).",
    )
    trello_coordinator_id = models.CharField(
        "coordinator's Trello member id",
        max_length=64,
        blank=True,
        help_text="The project coordinator. Blank: the deployment's default "
        "(TRELLO_COORDINATOR_ID).",
    )

    class Meta:
        # Its staff call it their company (the dashboard's "Company"); "tenant" is our word.
        verbose_name = "company"
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant | int) -> TenantQuerySet:
        """The one way to read tenant data: rows of this tenant only."""
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        return self.filter(tenant_id=tenant_id)


class TenantOwned(models.Model):
    """Abstract base of every tenant-owned row: the tenant, its index, ``for_tenant``.

    Unique constraints of subclasses include the tenant, so that the data can be
    sharded by tenant (Citus) without rewriting them.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Membership(TenantOwned):
    """A user's place in a tenant. A user belongs to one tenant.

    A membership changes its user's account (staff flag, closing it on removal) only when it
    ``owns_account``: the account was made by accepting this tenant's invitation (or with the
    tenant) and is no operator's. Any other account is never touched by a tenant.
    """

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        AGENT = "agent", "Agent"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    owns_account = models.BooleanField(
        default=False,
        editable=False,
        help_text="The account was made for this membership: removing it closes the account.",
    )

    class Meta:
        verbose_name = "staff member"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_tenant_user_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"

    @property
    def is_staff_role(self) -> bool:
        """Owners and admins work in the dashboard; agents in the console."""
        return self.role in (self.Role.OWNER, self.Role.ADMIN)


class Invitation(TenantOwned):
    """A pending invitation to join the tenant's staff, sent by email.

    Accepting it (``/accounts/invitation/<token>/``) makes a new account and its membership;
    an address that already has an account cannot accept, and the tenant is never told
    either way. Only a SHA-256 of the link's token is stored.
    """

    email = models.EmailField(max_length=254)
    role = models.CharField(
        max_length=10, choices=Membership.Role.choices, default=Membership.Role.AGENT
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    sent_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(editable=False)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "email"], name="invitation_tenant_email_unique"
            )
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class ApiKey(TenantOwned):
    """A credential for the tenant's own systems. Only a SHA-256 of the secret is stored.

    The full key reads ``ct_<prefix>_<secret>``, the prefix starting with its region's code;
    the prefix is shown in the dashboard and used to find the key, the secret is shown once
    when the key is created.
    The prefix is unique on its own because a key is looked up before its tenant is
    known; like users and memberships, API keys are an identity table (a Citus
    reference table), not sharded data.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        ADMIN = "admin", "Admin"

    name = models.CharField(max_length=100)
    # ``<region code>.<hex>``: the key's region (where it authenticates) is in its prefix.
    prefix = models.CharField(max_length=24, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (ct_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        """``admin`` implies ``write``, which implies ``read``."""
        order = [self.Scope.READ, self.Scope.WRITE, self.Scope.ADMIN]
        needed = order.index(scope)
        return any(order.index(s) >= needed for s in self.scopes if s in order)
