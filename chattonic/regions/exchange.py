"""What the regions' deployments exchange, and how: identity rows only, over signed HTTPS.

Each deployment keeps the identity of the tenants whose home region it is (``Tenant.region``):
the tenant, its staff's accounts and memberships. Every other deployment pulls a copy of them
(``identities_pull``: ``GET /regions/identity/`` on the home deployment), so that staff sign
in to the dashboard of each region and a bot can be created or moved there. API keys belong
to the region that made them (their prefix names it); only their public parts are copied, so
a key lists everywhere and authenticates in its own region only.

Nothing else crosses: no conversation, contact, message, lead or ticket, no bot (a draft that
moves, ``bots.services.bot_move``, is copied by the same signed channel and deleted at once
where it was). ``IDENTITY_FIELDS`` is the whole of what an export holds.

Both ways are signed with CHATTONIC_REGIONS_SECRET (HMAC-SHA256): the request over its method,
path, time, sending region and body; the answer over the request's signature and its own body.
A request older than ``MAX_SKEW`` seconds, of an unknown region or badly signed is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chattonic.core.errors import PermissionDenied, ServiceError
from chattonic.regions import SEPARATOR, Region, here, region_named, regions
from chattonic.tenancy.models import ApiKey, Membership, Tenant

logger = logging.getLogger(__name__)
User = get_user_model()

MAX_SKEW = 300  # seconds a signed request stays valid
TIMEOUT = 15
HEADER_REGION = "X-Chattonic-Region"
HEADER_TIME = "X-Chattonic-Timestamp"
HEADER_SIGNATURE = "X-Chattonic-Signature"

# The rows and columns an identity export holds: nothing else is read or written by it.
IDENTITY_FIELDS = {
    "tenants": ("slug", "name", "assignment_policy", "created_at"),
    "users": (
        "username",
        "email",
        "first_name",
        "last_name",
        "password",
        "is_active",
        "is_staff",
        "date_joined",
    ),
    "memberships": ("tenant", "user", "role", "owns_account", "created_at"),
    # An API key's public parts: never its secret's hash.
    "api_keys": ("tenant", "prefix", "name", "scopes", "created_at", "revoked_at"),
}


class ExchangeFailed(ServiceError):
    """The other region's deployment could not be reached, or its answer was refused."""

    status = 502
    code = "region_unreachable"


# --- Signatures -----------------------------------------------------------------------------


def _secret() -> bytes:
    secret = settings.CHATTONIC_REGIONS_SECRET
    if not secret:
        raise PermissionDenied(
            "The regions' exchange is off: CHATTONIC_REGIONS_SECRET is not set.",
            code="exchange_off",
        )
    return secret.encode()


def _digest(*parts: str) -> str:
    return hmac.new(_secret(), "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_signature(method: str, path: str, timestamp: str, region: str, body: bytes) -> str:
    return _digest("request", method.upper(), path, timestamp, region, _body_hash(body))


def response_signature(request_sig: str, body: bytes) -> str:
    return _digest("response", request_sig, _body_hash(body))


def request_verify(request) -> Region:
    """The region that sent this signed request; PermissionDenied (403) when it is not one
    of the other regions, too old, or its signature is wrong."""
    region = region_named(request.headers.get(HEADER_REGION, ""))
    timestamp = request.headers.get(HEADER_TIME, "")
    signature = request.headers.get(HEADER_SIGNATURE, "")
    if region is None or region.is_here:
        raise PermissionDenied("Unknown region.", code="bad_signature")
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        raise PermissionDenied("A signed time is needed.", code="bad_signature") from None
    expected = request_signature(request.method, request.path, timestamp, region.name, request.body)
    if age > MAX_SKEW or not hmac.compare_digest(expected, signature):
        raise PermissionDenied("The request's signature is wrong or old.", code="bad_signature")
    return region


def peer_call(
    region: Region, method: str, path: str, payload: dict | None = None, *, timeout=TIMEOUT
) -> dict:
    """A signed request to another region's deployment; its signed JSON answer. ServiceError
    with the peer's own status and code when it refused; ExchangeFailed when it could not be
    reached or its answer was not signed by it."""
    body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
    timestamp = str(int(time.time()))
    signature = request_signature(method, path, timestamp, here().name, body)
    headers = {
        HEADER_REGION: here().name,
        HEADER_TIME: timestamp,
        HEADER_SIGNATURE: signature,
        "Content-Type": "application/json",
    }
    with requests.Session() as session:
        session.trust_env = False  # the regions' own URLs, never a proxy from the environment
        try:
            response = session.request(
                method, region.url + path, data=body, headers=headers, timeout=timeout
            )
        except requests.RequestException as exc:
            raise ExchangeFailed(f"{region.name} could not be reached: {exc}") from None
    expected = response_signature(signature, response.content)
    if not hmac.compare_digest(expected, response.headers.get(HEADER_SIGNATURE, "")):
        raise ExchangeFailed(
            f"{region.name} answered {response.status_code} without a valid signature."
        )
    answer = response.json()
    if response.status_code >= 400:
        error = answer.get("error", {})
        raise ServiceError(
            f"{region.name}: {error.get('message', 'refused')}",
            code=error.get("code"),
            fields=error.get("fields"),
            status=response.status_code,
        )
    return answer


def signed_response_headers(request, body: bytes) -> dict[str, str]:
    return {HEADER_SIGNATURE: response_signature(request.headers.get(HEADER_SIGNATURE, ""), body)}


# --- Export and import ----------------------------------------------------------------------


def _when(value) -> str | None:
    return value.isoformat() if value is not None else None


def identity_export(*, tenants: list[Tenant] | None = None) -> dict[str, Any]:
    """The identity rows this deployment is the home of (of ``tenants``, or of all its
    tenants), and the public parts of the API keys made here: IDENTITY_FIELDS, nothing else."""
    region = here()
    homed = Tenant.objects.filter(region=region.name)
    if tenants is not None:
        homed = homed.filter(pk__in=[t.pk for t in tenants])
    homed = list(homed)
    memberships = list(Membership.objects.filter(tenant__in=homed).select_related("tenant", "user"))
    keys = ApiKey.objects.filter(prefix__startswith=region.code + SEPARATOR).select_related(
        "tenant"
    )
    if tenants is not None:
        keys = keys.filter(tenant__in=[t.pk for t in tenants])
    return {
        "region": region.name,
        "tenants": [
            {
                "slug": t.slug,
                "name": t.name,
                "assignment_policy": t.assignment_policy,
                "created_at": _when(t.created_at),
            }
            for t in homed
        ],
        "users": [
            {
                "username": m.user.username,
                "email": m.user.email,
                "first_name": m.user.first_name,
                "last_name": m.user.last_name,
                "password": m.user.password,
                "is_active": m.user.is_active,
                "is_staff": m.user.is_staff,
                "date_joined": _when(m.user.date_joined),
            }
            for m in memberships
            if not m.user.is_superuser  # operators are each deployment's own
        ],
        "memberships": [
            {
                "tenant": m.tenant.slug,
                "user": m.user.username,
                "role": m.role,
                "owns_account": m.owns_account,
                "created_at": _when(m.created_at),
            }
            for m in memberships
            if not m.user.is_superuser
        ],
        "api_keys": [
            {
                "tenant": k.tenant.slug,
                "prefix": k.prefix,
                "name": k.name,
                "scopes": k.scopes,
                "created_at": _when(k.created_at),
                "revoked_at": _when(k.revoked_at),
            }
            for k in keys
        ],
    }


def _parsed(value, default=None):
    """A datetime from an export's ISO text; ``default`` for none or a malformed one."""
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    return parsed or default


def _rows(data: dict, kind: str) -> list[dict]:
    rows = data.get(kind, [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ExchangeFailed(f"The export's {kind} is not a list of rows.")
    return [{field: row.get(field) for field in IDENTITY_FIELDS[kind]} for row in rows]


@transaction.atomic
def identity_import(data: dict, *, source: Region) -> dict[str, int]:
    """Bring in a copy of ``source``'s identity rows: its tenants (never over a tenant of
    another home with the same slug), their staff and memberships (those gone at home are
    removed here, and their copied accounts closed), and the public parts of its API keys.
    Writes only tenants, users, memberships and API keys; returns counts of what it wrote."""
    counts = {"tenants": 0, "users": 0, "memberships": 0, "api_keys": 0, "skipped": 0}
    tenants: dict[str, Tenant] = {}
    for row in _rows(data, "tenants"):
        tenant = Tenant.objects.filter(slug=row["slug"]).first()
        if tenant is not None and tenant.region != source.name:
            counts["skipped"] += 1  # a tenant of another home took this slug
            continue
        tenant = tenant or Tenant(slug=row["slug"], region=source.name)
        tenant.name = row["name"]
        tenant.assignment_policy = row["assignment_policy"]
        tenant.created_at = _parsed(row["created_at"], tenant.created_at)
        tenant.save()
        tenants[tenant.slug] = tenant
        counts["tenants"] += 1

    users: dict[str, Any] = {}
    for row in _rows(data, "users"):
        user = User.objects.filter(username=row["username"]).first()
        if user is not None and not _copied_account(user, source):
            counts["skipped"] += 1  # an account of this deployment's own
            continue
        user = user or User(username=row["username"])
        for field in ("email", "first_name", "last_name", "password", "is_active", "is_staff"):
            setattr(user, field, row[field])
        user.date_joined = _parsed(row["date_joined"], user.date_joined)
        user.save()
        users[user.username] = user
        counts["users"] += 1

    kept: set[int] = set()
    for row in _rows(data, "memberships"):
        tenant, user = tenants.get(row["tenant"]), users.get(row["user"])
        if tenant is None or user is None:
            counts["skipped"] += 1
            continue
        membership, _ = Membership.objects.update_or_create(
            user=user,
            defaults={
                "tenant": tenant,
                "role": row["role"],
                "owns_account": bool(row["owns_account"]),
                "created_at": _parsed(row["created_at"], timezone.now()),
            },
        )
        kept.add(membership.pk)
        counts["memberships"] += 1
    gone = Membership.objects.filter(tenant__in=tenants.values()).exclude(pk__in=kept)
    User.objects.filter(pk__in=gone.values("user_id"), is_superuser=False).update(is_active=False)
    gone.delete()

    for row in _rows(data, "api_keys"):
        tenant = Tenant.objects.filter(slug=row["tenant"]).first()
        prefix = str(row["prefix"] or "")
        if tenant is None or not prefix.startswith(source.code + SEPARATOR):
            counts["skipped"] += 1  # a key names the region that made it
            continue
        ApiKey.objects.update_or_create(
            prefix=prefix,
            defaults={
                "tenant": tenant,
                "name": row["name"],
                "scopes": row["scopes"],
                "secret_hash": "",  # never authenticates here: a key works in its region
                "created_at": _parsed(row["created_at"], timezone.now()),
                "revoked_at": _parsed(row["revoked_at"]),
            },
        )
        counts["api_keys"] += 1
    return counts


def _copied_account(user, source: Region) -> bool:
    """An account that is a copy of ``source``'s: a member of one of its tenants, or a closed
    account without membership (a member removed there, then back). Never an operator's."""
    if user.is_superuser:
        return False
    membership = Membership.objects.filter(user=user).select_related("tenant").first()
    return membership.tenant.region == source.name if membership else not user.is_active


def identities_pull(region: Region) -> dict[str, int]:
    """Copy ``region``'s identity rows here (its signed export)."""
    data = peer_call(region, "GET", "/regions/identity/")
    return identity_import(data, source=region)


def identities_pull_all() -> dict[str, dict[str, int] | str]:
    """Pull every other region's identity rows; a region that fails is logged and reported,
    the others are still pulled."""
    results: dict[str, dict[str, int] | str] = {}
    for region in regions().values():
        if region.is_here:
            continue
        try:
            results[region.name] = identities_pull(region)
        except ServiceError as exc:
            logger.warning("regions: pulling %s's identities failed: %s", region.name, exc)
            results[region.name] = str(exc)
    return results
