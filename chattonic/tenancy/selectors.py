"""Reads for tenants, staff and API keys."""

from __future__ import annotations

import hashlib
import hmac

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from chattonic.tenancy.models import ApiKey, Invitation, Membership

User = get_user_model()


def secret_hash(secret: str) -> str:
    """What is stored of an API key's secret or an invitation link's token: its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_from_token(token: str) -> ApiKey | None:
    """The active key for ``ct_<prefix>_<secret>``, or None; compares in constant time."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "ct" or not parts[1] or not parts[2]:
        return None
    api_key = ApiKey.objects.select_related("tenant").filter(prefix=parts[1]).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, secret_hash(parts[2])):
        return None
    return api_key


def membership_for_user(user) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.select_related("tenant").filter(user=user).first()


def invitation_from_token(token: str) -> Invitation | None:
    """The pending, unexpired invitation whose emailed link carries ``token``, or None."""
    if not token or len(token) > 100:
        return None
    return (
        Invitation.objects.select_related("tenant")
        .filter(token_hash=secret_hash(token), expires_at__gt=timezone.now())
        .first()
    )


def staff_public_name(user) -> str | None:
    """How a staff member is named to visitors and to the tenant's own systems: the first
    name they chose when they joined, or None (the widget then says "Agent"). Never the
    email or username, which are for the staff side only."""
    if user is None:
        return None
    return (user.first_name or "").strip() or None


def staff_display_name(user) -> str:
    """How the dashboard and the console name a staff member to their colleagues: their full
    name, else the first name they set (``staff_public_name``), else their sign-in's part
    before the "@" (never the whole address on a page: "maya", not "maya@acme.example")."""
    if user is None:
        return "-"
    named = (user.get_full_name() or "").strip() or staff_public_name(user)
    if named:
        return named
    return user.get_username().split("@", 1)[0] or user.get_username()


def account_for_email(email: str):
    """The account whose username or email is this address, whoever it belongs to, or None."""
    return User.objects.filter(Q(username__iexact=email) | Q(email__iexact=email)).first()
