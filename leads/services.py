"""Leads: created by the flow's capture node (``services.lead_capture``), an agent or the API;
their status; the CSV export (streamed); the tenant's optional signed lead webhook."""

from __future__ import annotations

import csv
import json
import logging
import secrets
import time
from collections.abc import Iterator

from django.db import transaction
from django.utils import timezone

from chattonic.core import outbound
from chattonic.core.credentials import decrypt_secret, encrypt_secret
from chattonic.core.errors import NotFound, ValidationFailed
from chattonic.core.redact import redact
from chattonic.core.signing import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_VERSION,
    TIMESTAMP_HEADER,
    USER_AGENT,
    sign,
)
from chattonic.tenancy.models import Tenant
from contacts.models import Contact
from contacts.services import (
    contact_fill_blanks,
    contact_for_details,
    normalize_email,
    normalize_phone,
)
from conversations.models import Conversation
from leads.models import Lead, LeadWebhook

logger = logging.getLogger(__name__)

MAX_FIELDS = 50
CSV_COLUMNS = [
    "id",
    "created_at",
    "status",
    "source",
    "bot_id",
    "bot_name",
    "channel_kind",
    "conversation_id",
    "contact_id",
    "contact_name",
    "contact_email",
    "contact_phone",
    "fields",
]


def clean_fields(fields) -> dict[str, str]:
    if not isinstance(fields, dict):
        raise ValidationFailed.for_field("fields", "An object of names and values.")
    if len(fields) > MAX_FIELDS:
        raise ValidationFailed.for_field("fields", f"At most {MAX_FIELDS} fields.")
    clean = {}
    for key, value in fields.items():
        if not str(key).strip() or len(str(key)) > 100:
            raise ValidationFailed.for_field("fields", "Field names have 1 to 100 characters.")
        if isinstance(value, dict | list):
            raise ValidationFailed.for_field("fields", f"{key}: a text or a number, not a list.")
        if value is None or value == "":
            continue
        if len(str(value)) > 1000:
            raise ValidationFailed.for_field("fields", f"{key}: at most 1000 characters.")
        clean[str(key)] = str(value)
    return clean


def lead_created(*, lead: Lead) -> None:
    """After the commit, the tenant's lead webhooks hear of the new lead."""
    if not LeadWebhook.objects.for_tenant(lead.tenant_id).filter(is_active=True).exists():
        return
    from leads.tasks import lead_webhook_deliver  # the tasks import this module

    lead_id = lead.pk
    transaction.on_commit(lambda: lead_webhook_deliver.delay(lead_id), robust=True)


@transaction.atomic
def lead_create(
    *,
    tenant: Tenant,
    fields: dict,
    contact: Contact | None = None,
    conversation: Conversation | None = None,
    name: str = "",
    email: str = "",
    phone: str = "",
    status: str = Lead.Status.NEW,
    source: str = Lead.Source.API,
) -> Lead:
    """A lead recorded by an agent or the tenant's system (sandbox conversations: none).

    Its contact is ``contact``; without one, the conversation's own contact unless an email
    or a phone is given; else the tenant's contact with that email or phone, or a new one."""
    if contact is None:
        if conversation is not None and not (email or phone):
            contact = conversation.contact
        else:
            contact = contact_for_details(tenant_id=tenant.pk, name=name, email=email, phone=phone)
    if contact.tenant_id != tenant.pk:
        raise NotFound("No such contact.")
    if conversation is not None:
        if conversation.tenant_id != tenant.pk:
            raise NotFound("No such conversation.")
        if conversation.is_sandbox:
            raise ValidationFailed.for_field("conversation", "The sandbox records no leads.")
        if conversation.contact_id != contact.pk:
            raise ValidationFailed.for_field(
                "conversation", "This conversation is with another contact."
            )
    if status not in Lead.Status.values:
        raise ValidationFailed.for_field("status", "Not a lead status.")
    lead = Lead.objects.create(
        tenant=tenant,
        contact=contact,
        conversation=conversation,
        bot_id=conversation.bot_id if conversation else None,
        channel_kind=conversation.channel_kind if conversation else "",
        fields=clean_fields(fields),
        status=status,
        source=source,
    )
    lead_created(lead=lead)
    return lead


@transaction.atomic
def lead_update(*, lead: Lead, status: str | None = None, fields: dict | None = None) -> Lead:
    """Move a lead along (new, contacted, qualified, won, lost) or correct its fields."""
    changed = []
    if status is not None:
        if status not in Lead.Status.values:
            raise ValidationFailed.for_field("status", "Not a lead status.")
        lead.status = status
        changed.append("status")
    if fields is not None:
        lead.fields = clean_fields(fields)
        changed.append("fields")
    if changed:
        lead.updated_at = timezone.now()
        lead.save(update_fields=[*changed, "updated_at"])
    return lead


@transaction.atomic
def lead_delete(*, lead: Lead) -> None:
    lead.delete()


# --- CSV export -------------------------------------------------------------------------------


class _Echo:
    def write(self, value):
        return value


def _safe_cell(value) -> str:
    """Spreadsheets run cells that start with = + - @ (or a tab or CR) as formulas: quote
    them, every one alike. A number-looking one too: "+34612345678" as a contact's phone and
    "+34 612 345 678" as a field must read the same, and the JSON column keeps the raw value
    for programs. The one guard for every CSV the project writes."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def leads_csv(queryset) -> Iterator[str]:
    """The CSV lines of the leads of ``queryset`` (the test chats' left out), one at a time
    (a generator for a streaming response). Each field a lead holds has a column of its own,
    ``fields.<name>`` (one JSON cell of them all was unreadable in a spreadsheet), after the
    fixed columns; the JSON stays, last, for programs. The field names are read first, in a
    pass over the fields alone (memory: the names only)."""
    names: set[str] = set()
    for fields in _exported(queryset).values_list("fields", flat=True).iterator(chunk_size=2000):
        if isinstance(fields, dict):
            names.update(fields)
    field_names = sorted(names)
    writer = csv.writer(_Echo())
    yield writer.writerow([*CSV_COLUMNS[:-1], *(f"fields.{n}" for n in field_names), "fields"])
    for lead in leads_for_export(queryset):
        contact = lead.contact
        fields = lead.fields if isinstance(lead.fields, dict) else {}
        yield writer.writerow(
            [
                _safe_cell(v)
                for v in (
                    lead.pk,
                    lead.created_at.isoformat(),
                    lead.status,
                    lead.source,
                    lead.bot_id or "",
                    lead.bot.name if lead.bot_id else "",
                    lead.channel_kind,
                    lead.conversation_id or "",
                    lead.contact_id,
                    contact.name,
                    contact.email,
                    contact.phone,
                    *(fields.get(n, "") for n in field_names),
                    json.dumps(fields, ensure_ascii=False, sort_keys=True),
                )
            ]
        )


def _exported(queryset):
    return queryset.exclude(conversation__is_sandbox=True)


def leads_for_export(queryset):
    """The leads, with their contacts and bots, read in chunks so memory stays flat."""
    return (
        _exported(queryset)
        .select_related("contact", "bot")
        .order_by("-created_at", "-id")
        .iterator(chunk_size=2000)
    )


# --- The lead webhook -------------------------------------------------------------------------


def lead_payload(lead: Lead) -> dict:
    contact = lead.contact
    return {
        "id": lead.pk,
        "status": lead.status,
        "source": lead.source,
        "bot": lead.bot_id,
        "channel_kind": lead.channel_kind,
        "conversation": lead.conversation_id,
        "fields": lead.fields,
        "contact": {
            "id": contact.pk,
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
        },
        "created_at": lead.created_at.isoformat(),
    }


def lead_webhook_url_clean(url: str) -> str:
    """The URL, or ValidationFailed naming ``url`` when it can only be refused (not
    http(s), a private or loopback address written in it). Names are checked when the
    request connects (chattonic/core/outbound.py): that is the real guard."""
    url = (url or "").strip()
    if not url:
        raise ValidationFailed.for_field("url", "A lead webhook needs a URL.")
    if len(url) > 500:
        raise ValidationFailed.for_field("url", "At most 500 characters.")
    problem = outbound.url_problem(url)
    if problem:
        raise ValidationFailed.for_field("url", problem)
    return url


def _url_taken(tenant_id: int, url: str, exclude: int | None = None) -> bool:
    return LeadWebhook.objects.for_tenant(tenant_id).filter(url=url).exclude(pk=exclude).exists()


@transaction.atomic
def lead_webhook_create(
    *, tenant: Tenant, url: str, is_active: bool = True
) -> tuple[LeadWebhook, str]:
    """A lead webhook with a new signing secret, stored encrypted. Returns the webhook and
    the secret, which is shown once and never again."""
    url = lead_webhook_url_clean(url)
    if _url_taken(tenant.pk, url):
        raise ValidationFailed.for_field("url", "A lead webhook with this URL exists.")
    secret = secrets.token_urlsafe(32)
    webhook = LeadWebhook.objects.create(
        tenant=tenant, url=url, is_active=is_active, signing_secret_encrypted=encrypt_secret(secret)
    )
    return webhook, secret


@transaction.atomic
def lead_webhook_update(
    *, webhook: LeadWebhook, url: str | None = None, is_active: bool | None = None
) -> LeadWebhook:
    """Change a lead webhook's URL or switch it on or off (its secret stays)."""
    changed = []
    if url is not None:
        url = lead_webhook_url_clean(url)
        if _url_taken(webhook.tenant_id, url, exclude=webhook.pk):
            raise ValidationFailed.for_field("url", "A lead webhook with this URL exists.")
        webhook.url = url
        changed.append("url")
    if is_active is not None:
        webhook.is_active = bool(is_active)
        changed.append("is_active")
    if changed:
        webhook.save(update_fields=changed)
    return webhook


@transaction.atomic
def lead_webhook_secret_renew(*, webhook: LeadWebhook) -> str:
    """Give the webhook a new signing secret (the old one stops at once); returns it, to be
    shown once."""
    secret = secrets.token_urlsafe(32)
    webhook.signing_secret_encrypted = encrypt_secret(secret)
    webhook.save(update_fields=["signing_secret_encrypted"])
    return secret


def lead_webhook_signing_secret(webhook: LeadWebhook) -> str:
    """The webhook's signing secret, decrypted (CredentialsUnreadable without the key)."""
    return decrypt_secret(webhook.signing_secret_encrypted)


def lead_webhook_post(*, webhook: LeadWebhook, lead: Lead, timeout: float = 10.0) -> int:
    """POST the ``lead.created`` event to one webhook, signed like the API channel's
    deliveries (``X-ChatTonic-Signature: v1=<HMAC-SHA256 of "<timestamp>.<body>">``); the
    event id is the same on every retry. Returns the HTTP status; raises on a network error,
    and OutboundRefused (nothing sent) when the address is not allowed."""
    event_id = f"lead-{lead.pk}-{webhook.pk}"
    body = json.dumps(
        {
            "id": event_id,
            "type": "lead.created",
            "created": int(lead.created_at.timestamp()),
            "data": lead_payload(lead),
        },
        separators=(",", ":"),
    ).encode()
    timestamp = int(time.time())
    signature = sign(lead_webhook_signing_secret(webhook), timestamp, body)
    response = outbound.request(
        "POST",
        webhook.url,
        data=body,
        timeout=timeout,
        allow_redirects=False,
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: "lead.created",
            EVENT_ID_HEADER: event_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={signature}",
        },
    )
    LeadWebhook.objects.filter(pk=webhook.pk).update(
        last_status=f"HTTP {response.status_code}", last_delivery_at=timezone.now()
    )
    return response.status_code


def lead_webhook_failure_record(*, webhook: LeadWebhook, error: str) -> None:
    """Note why a delivery failed, as the webhook's last status (the text redacted)."""
    LeadWebhook.objects.filter(pk=webhook.pk).update(
        last_status=redact(error)[:200], last_delivery_at=timezone.now()
    )


def lead_capture(
    *, conversation: Conversation, fields: dict, source: str = Lead.Source.BOT
) -> Lead | None:
    """Record a lead from the conversation's fields; sandbox conversations record none."""
    if conversation.is_sandbox:
        return None
    clean = {str(k)[:100]: str(v)[:1000] for k, v in (fields or {}).items() if v not in (None, "")}
    contact = conversation.contact
    # What a visitor types is a claim: it fills the contact's blank details and goes on the
    # lead, and never merges contacts (anyone can type anyone's email). Contacts merge only
    # on a proof: a staff member's merge (contacts.contact_merge).
    contact_fill_blanks(
        contact,
        name=clean.get("name", "").strip(),
        email=normalize_email(clean.get("email", "")),
        phone=normalize_phone(clean.get("phone", "")),
    )
    lead = Lead.objects.create(
        tenant_id=conversation.tenant_id,
        contact=contact,
        conversation=conversation,
        bot_id=conversation.bot_id,
        channel_kind=conversation.channel_kind,
        fields=clean,
        source=source,
    )
    lead_created(lead=lead)
    return lead


def leads_move_to_contact(*, tenant_id: int, source_id: int, target_id: int) -> None:
    """A merge of contacts (``contacts.hooks.contact_merging``): the merged contact's leads
    are the other's now."""
    Lead.objects.for_tenant(tenant_id).filter(contact_id=source_id).update(contact_id=target_id)
