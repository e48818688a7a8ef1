"""Reads for tenants, staff and API keys."""

from __future__ import annotations

import hmac

from chattonic.tenancy.models import ApiKey, Membership
from chattonic.tenancy.services import api_key_hash


def api_key_from_token(token: str) -> ApiKey | None:
    """The active key for ``ct_<prefix>_<secret>``, or None; compares in constant time."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "ct" or not parts[1] or not parts[2]:
        return None
    api_key = ApiKey.objects.select_related("tenant").filter(prefix=parts[1]).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, api_key_hash(parts[2])):
        return None
    return api_key


def membership_for_user(user) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.select_related("tenant").filter(user=user).first()
