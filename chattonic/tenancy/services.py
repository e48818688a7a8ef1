"""Writes for tenants, staff and API keys."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from chattonic.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from chattonic.core.public_urls import public_base_url
from chattonic.regions import token_new
from chattonic.tenancy.models import ApiKey, Invitation, Membership, Tenant
from chattonic.tenancy.selectors import account_for_email, secret_hash

User = get_user_model()

API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)

INVITATION_LIFETIME = timedelta(days=7)
NAME_MAX = 150  # the user model's first_name and last_name
ACCOUNT_EXISTS = (
    "This address already has a Chat-Tonic account, and an account belongs to one team. "
    "Ask whoever invited you to invite another address."
)


@transaction.atomic
def tenant_create(
    *,
    name: str,
    owner_email: str,
    owner_password: str | None = None,
    slug: str = "",
    base_url: str | None = None,
) -> Tenant:
    """Create a tenant and its owner: with ``owner_password`` a new account at once (commands,
    the demo), without it an invitation to own the tenant, emailed once the write commits
    (its link on ``base_url``, as for :func:`invitation_create`). An address that already
    has an account is refused: an account belongs to one tenant."""
    name = name.strip()
    if not name:
        raise ValidationFailed.for_field("name", "A tenant needs a name.")
    email = _clean_email(owner_email, field="owner_email")
    if account_for_email(email) is not None:
        raise Conflict.for_field(
            "owner_email",
            "This address already has an account, and an account belongs to one tenant: "
            "choose another address.",
        )
    slug = slug or slugify(name)[:80] or "tenant"
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict.for_field("slug", f"The slug {slug!r} is taken.")
    tenant = Tenant.objects.create(name=name, slug=slug)
    if owner_password:
        _account_create(
            tenant=tenant,
            email=email,
            role=Membership.Role.OWNER,
            password=owner_password,
            first_name="",
            invited_by=None,
        )
    else:
        invitation_create(
            tenant=tenant,
            email=email,
            role=Membership.Role.OWNER,
            invited_by=None,
            base_url=base_url,
        )
    return tenant


def _clean_email(email: str, *, field: str = "email") -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed.for_field(field, "Enter a valid email address.") from None
    return email


def _clean_role(role: str) -> str:
    if role not in Membership.Role.values:
        raise ValidationFailed.for_field("role", f"Unknown role {role!r}.")
    return role


def _account_create(
    *, tenant: Tenant, email: str, role: str, password: str, first_name: str, invited_by
) -> Membership:
    """A new account for ``email`` and its membership, which owns it."""
    user = User(
        username=email,
        email=email,
        first_name=first_name,
        # Owners and admins sign in to the dashboard (Django admin needs is_staff).
        is_staff=Membership(role=role).is_staff_role,
    )
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            return Membership.objects.create(
                tenant=tenant, user=user, role=role, invited_by=invited_by, owns_account=True
            )
    except IntegrityError:
        raise Conflict(ACCOUNT_EXISTS, code="account_exists") from None


def _owned_account(membership: Membership):
    """The member's account if this membership may change it (it made the account, and the
    account is no operator's), else None: a tenant never edits an account it does not own."""
    user = membership.user
    if membership.owns_account and not user.is_superuser:
        return user
    return None


# --- Invitations ------------------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, email: str, role: str, invited_by, base_url: str | None = None
) -> Invitation:
    """Invite ``email`` to the tenant's staff (again: a new link) and email the link once the
    write commits. Whether the address has an account elsewhere changes nothing here: the
    tenant gets the same answer, and no account is touched. The link is on ``base_url``
    (the door's ``public_base_url(request)``), else on this deployment's configured one."""
    email = _clean_email(email)
    role = _clean_role(role)
    if Membership.objects.for_tenant(tenant).filter(user__username__iexact=email).exists():
        raise Conflict.for_field("email", "This person is already on your team.")
    invitation = (
        Invitation.objects.for_tenant(tenant).select_for_update().filter(email=email).first()
    ) or Invitation(tenant=tenant, email=email)
    invitation.role = role
    invitation.invited_by = invited_by
    try:
        with transaction.atomic():
            _invitation_send(invitation, base_url)
    except IntegrityError:
        raise Conflict.for_field("email", "This address was just invited.") from None
    return invitation


@transaction.atomic
def invitation_resend(*, invitation: Invitation, base_url: str | None = None) -> Invitation:
    """Email the invitation again with a new link (the old one stops working), valid anew;
    the link on ``base_url`` as for :func:`invitation_create`."""
    invitation = (
        Invitation.objects.select_for_update().select_related("tenant").get(pk=invitation.pk)
    )
    _invitation_send(invitation, base_url)
    return invitation


def invitation_revoke(*, invitation: Invitation) -> None:
    """Withdraw an invitation: its link stops working."""
    Invitation.objects.filter(pk=invitation.pk).delete()


def _invitation_send(invitation: Invitation, base_url: str | None = None) -> None:
    token = token_new(32)  # the link names its region (chattonic.regions)
    now = timezone.now()
    invitation.token_hash = secret_hash(token)
    invitation.sent_at = now
    invitation.expires_at = now + INVITATION_LIFETIME
    invitation.save()
    context = {
        "tenant_name": invitation.tenant.name,
        "role": invitation.get_role_display().lower(),
        "link": (base_url.rstrip("/") if base_url else public_base_url())
        + reverse("invitation-accept", kwargs={"token": token}),
        "days": INVITATION_LIFETIME.days,
    }
    subject = render_to_string("tenancy/invitation_subject.txt", context).strip()
    body = render_to_string("tenancy/invitation_email.txt", context)
    email = invitation.email
    transaction.on_commit(lambda: send_mail(subject, body, None, [email]))


@transaction.atomic
def invitation_accept(*, invitation: Invitation, first_name: str, password: str) -> Membership:
    """Accept an invitation: a new account for its address (with this name and password) and
    its membership; the invitation is used up. An address that already has an account is
    refused (Conflict ``account_exists``) and that account is left as it is."""
    invitation = (
        Invitation.objects.select_for_update().select_related("tenant").filter(pk=invitation.pk)
    ).first()
    if invitation is None or invitation.is_expired:
        raise NotFound("This invitation is no longer valid: ask for a new one.")
    if account_for_email(invitation.email) is not None:
        raise Conflict(ACCOUNT_EXISTS, code="account_exists")
    first_name = _clean_first_name(first_name)
    try:
        validate_password(
            password,
            user=User(username=invitation.email, email=invitation.email, first_name=first_name),
        )
    except ValidationError as exc:
        raise ValidationFailed.for_field("password", " ".join(exc.messages)) from None
    membership = _account_create(
        tenant=invitation.tenant,
        email=invitation.email,
        role=invitation.role,
        password=password,
        first_name=first_name,
        invited_by=invitation.invited_by,
    )
    invitation.delete()
    return membership


def _clean_first_name(first_name: str) -> str:
    """The name visitors see beside a staff member's messages: required, and never an
    address (an email there would reach every visitor)."""
    first_name = " ".join((first_name or "").split())
    if not first_name:
        raise ValidationFailed.for_field("first_name", "Tell us the name visitors will see.")
    if len(first_name) > NAME_MAX:
        raise ValidationFailed.for_field("first_name", f"At most {NAME_MAX} characters.")
    if "@" in first_name:
        raise ValidationFailed.for_field(
            "first_name", "Your name, not an email address: visitors see it."
        )
    return first_name


@transaction.atomic
def staff_name_set(*, user, first_name: str, last_name: str = "") -> None:
    """A staff member changes their own name: the first name is what visitors see (required),
    the last name completes it for colleagues (optional). Nothing is saved if either is
    refused."""
    first_name = _clean_first_name(first_name)
    last_name = " ".join((last_name or "").split())
    if len(last_name) > NAME_MAX:
        raise ValidationFailed.for_field("last_name", f"At most {NAME_MAX} characters.")
    User.objects.filter(pk=user.pk).update(first_name=first_name, last_name=last_name)
    user.first_name, user.last_name = first_name, last_name


# --- Memberships ------------------------------------------------------------------------------


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    """Change a member's role; a tenant always keeps at least one owner. The account's
    dashboard access follows the role only if the membership owns the account."""
    role = _clean_role(role)
    current = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if current.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
        _ensure_another_owner(current)
    current.role = role
    current.save(update_fields=["role"])
    account = _owned_account(current)
    if account is not None:
        account.is_staff = current.is_staff_role
        account.save(update_fields=["is_staff"])
    return current


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Remove a person from the tenant. An account the membership owns is closed (it can no
    longer sign in); any other account is left as it is, only no longer in this tenant."""
    current = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if current.role == Membership.Role.OWNER:
        _ensure_another_owner(current)
    account = _owned_account(current)
    current.delete()
    if account is not None:
        account.is_staff = False
        account.is_active = False
        account.save(update_fields=["is_staff", "is_active"])


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
    prefix = token_new(6, hex_only=True)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=prefix,
        secret_hash=secret_hash(secret),
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
