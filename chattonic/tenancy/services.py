"""Writes for tenants, staff and API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.text import slugify

from chattonic.core.errors import Conflict, PermissionDenied, ValidationFailed
from chattonic.tenancy.models import ApiKey, Membership, Tenant

User = get_user_model()

API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def tenant_create(
    *, name: str, owner_email: str, owner_password: str | None = None, slug: str = ""
) -> Tenant:
    """Create a tenant and its owner account."""
    name = name.strip()
    if not name:
        raise ValidationFailed.for_field("name", "A tenant needs a name.")
    slug = slug or slugify(name)[:80] or "tenant"
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict.for_field("slug", f"The slug {slug!r} is taken.")
    tenant = Tenant.objects.create(name=name, slug=slug)
    user = _user_for_email(owner_email)
    if owner_password:
        user.set_password(owner_password)
        user.save(update_fields=["password"])
    _membership_add(tenant=tenant, user=user, role=Membership.Role.OWNER, invited_by=None)
    return tenant


def _user_for_email(email: str):
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed.for_field("email", "Enter a valid email address.") from None
    user = User.objects.filter(username=email).first()
    if user is None:
        user = User(username=email, email=email)
        user.set_unusable_password()
        user.save()
    return user


def _membership_add(*, tenant: Tenant, user, role: str, invited_by) -> Membership:
    if Membership.objects.filter(user=user).exists():
        raise Conflict.for_field("email", "This person is already a member of a tenant.")
    if role not in Membership.Role.values:
        raise ValidationFailed.for_field("role", f"Unknown role {role!r}.")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                tenant=tenant, user=user, role=role, invited_by=invited_by
            )
    except IntegrityError:
        raise Conflict.for_field("email", "This person is already a member of a tenant.") from None
    # Owners and admins sign in to the dashboard (Django admin needs is_staff).
    user.is_staff = membership.is_staff_role
    user.save(update_fields=["is_staff"])
    return membership


@transaction.atomic
def membership_invite(*, tenant: Tenant, email: str, role: str, invited_by) -> Membership:
    """Add a person to the tenant and email them a link to set their password."""
    user = _user_for_email(email)
    membership = _membership_add(tenant=tenant, user=user, role=role, invited_by=invited_by)
    membership_send_invitation(membership=membership)
    return membership


def membership_send_invitation(*, membership: Membership) -> None:
    """Email the member a one-time link to set their password, once the write commits."""
    user = membership.user
    context = {
        "tenant_name": membership.tenant.name,
        "username": user.get_username(),
        "link": settings.PUBLIC_BASE_URL.rstrip("/")
        + reverse(
            "password_reset_confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        ),
    }
    subject = render_to_string("tenancy/invitation_subject.txt", context).strip()
    body = render_to_string("tenancy/invitation_email.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, None, [user.email]))


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    """Change a member's role; a tenant always keeps at least one owner."""
    if role not in Membership.Role.values:
        raise ValidationFailed.for_field("role", f"Unknown role {role!r}.")
    current = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if current.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
        _ensure_another_owner(current)
    current.role = role
    current.save(update_fields=["role"])
    current.user.is_staff = current.is_staff_role
    current.user.save(update_fields=["is_staff"])
    return current


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Remove a person from the tenant; their account can no longer sign in."""
    if membership.role == Membership.Role.OWNER:
        _ensure_another_owner(membership)
    user = membership.user
    membership.delete()
    user.is_staff = False
    user.is_active = False
    user.save(update_fields=["is_staff", "is_active"])


def _ensure_another_owner(membership: Membership) -> None:
    others = (
        Membership.objects.for_tenant(membership.tenant_id)
        .select_for_update()
        .filter(role=Membership.Role.OWNER)
        .exclude(pk=membership.pk)
    )
    if not others.exists():
        raise PermissionDenied.for_field("role", "A tenant must keep at least one owner.")


@transaction.atomic
def api_key_create(
    *, tenant: Tenant, name: str, scopes: list[str], created_by=None
) -> tuple[ApiKey, str]:
    """Create an API key; returns the key and its full secret, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed.for_field("name", "An API key needs a name.")
    unknown = [s for s in scopes if s not in ApiKey.Scope.values]
    if unknown or not scopes:
        raise ValidationFailed.for_field(
            "scopes", f"Choose scopes among {', '.join(ApiKey.Scope.values)}."
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=prefix,
        secret_hash=api_key_hash(secret),
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    return api_key, f"ct_{prefix}_{secret}"


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke an API key at once; requests with it get 401 from now on."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use of a key, at most once a minute, so a busy key does not write per request."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < API_KEY_TOUCH_INTERVAL:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
