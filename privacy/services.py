"""Privacy: export everything held about a contact (JSON), and erase a contact.

Erasing deletes the contact (and contacts merged into it), its identities, conversations,
messages and leads, has the apps above delete or scrub what they hold about it (agents' notes
and handoff history, support's tickets: ``privacy.hooks.contact_erasing``), and drops
the dashboard's change log of those objects. What the contact added to the
statistics moves into ``erased`` aggregate rows first, so the numbers stay. Both leave a
``PrivacyAudit`` record that holds the contact's former id only.
"""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from contacts.models import Contact
from conversations.models import Conversation, Message
from leads.models import Lead
from privacy import hooks
from privacy.hooks import ContactErasing, Erasure
from privacy.models import PrivacyAudit
from stats.services import stats_keep_erased, stats_rebuild

__all__ = ["ERASED", "Erasure", "contact_erase", "contact_export", "contact_export_data"]

#: What erased text is replaced with (here and by the apps that listen to the erase).
ERASED = "[erased]"


def _merged_family(contact: Contact) -> list[int]:
    """The contact and every contact merged into it, directly or through others."""
    ids = [contact.pk]
    frontier = [contact.pk]
    while frontier:
        frontier = list(
            Contact.objects.for_tenant(contact.tenant_id)
            .filter(merged_into_id__in=frontier)
            .exclude(pk__in=ids)
            .values_list("pk", flat=True)
        )
        ids.extend(frontier)
    return ids


def _iso(value):
    return value.isoformat() if value else None


def contact_export_data(*, contact: Contact) -> dict:
    """Everything we hold about the contact, as JSON-ready data (what the apps above hold
    about its conversations, such as agents' notes, through ``hooks.contact_exporting``)."""
    tenant_id = contact.tenant_id
    family = _merged_family(contact)
    conversations = list(
        Conversation.objects.for_tenant(tenant_id)
        .filter(contact_id__in=family)
        .select_related("bot")
        .order_by("created_at", "pk")
    )
    conversation_ids = [c.pk for c in conversations]
    messages: dict[int, list] = {pk: [] for pk in conversation_ids}
    for m in (
        Message.objects.for_tenant(tenant_id)
        .filter(conversation_id__in=conversation_ids)
        .order_by("created_at", "id")
    ):
        messages[m.conversation_id].append(
            {
                "id": m.pk,
                "direction": m.direction,
                "sender": m.sender,
                "kind": m.kind,
                "text": m.text,
                "data": m.data,
                "status": m.status,
                "created_at": _iso(m.created_at),
            }
        )
    elsewhere = hooks.contact_exporting(tenant_id=tenant_id, conversation_ids=conversation_ids)
    return {
        "contact": {
            "id": contact.pk,
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "attributes": contact.attributes,
            "created_at": _iso(contact.created_at),
            "merged_contacts": [pk for pk in family if pk != contact.pk],
        },
        "identities": [
            {
                "kind": i.kind,
                "channel": i.channel_id,
                "external_id": i.external_id,
                "created_at": _iso(i.created_at),
            }
            for i in contact.identities.for_tenant(tenant_id).order_by("created_at", "pk")
        ],
        "conversations": [
            {
                "id": c.pk,
                "bot": c.bot.name,
                "channel_kind": c.channel_kind,
                "recipient_id": c.recipient_id,
                "status": c.status,
                "language": c.language,
                "csat": c.csat,
                "variables": (c.engine_state or {}).get("variables", {}),
                "created_at": _iso(c.created_at),
                "resolved_at": _iso(c.resolved_at),
                "messages": messages[c.pk],
                **elsewhere[c.pk],
            }
            for c in conversations
        ],
        "leads": [
            {
                "id": lead.pk,
                "status": lead.status,
                "source": lead.source,
                "fields": lead.fields,
                "conversation": lead.conversation_id,
                "created_at": _iso(lead.created_at),
            }
            for lead in Lead.objects.for_tenant(tenant_id)
            .filter(contact_id__in=family)
            .order_by("created_at", "pk")
        ],
    }


def contact_export(*, contact: Contact, door: str, actor=None, api_key=None) -> dict:
    """The export, recorded in the privacy audit."""
    data = contact_export_data(contact=contact)
    PrivacyAudit.objects.create(
        tenant_id=contact.tenant_id,
        action=PrivacyAudit.Action.EXPORT,
        contact_ref=contact.pk,
        door=door,
        actor=actor,
        api_key=api_key,
        summary={
            "conversations": len(data["conversations"]),
            "messages": sum(len(c["messages"]) for c in data["conversations"]),
            "leads": len(data["leads"]),
        },
    )
    return data


@transaction.atomic
def contact_erase(
    *, contact: Contact, door: str, actor=None, api_key=None, recorded: bool = False
) -> PrivacyAudit:
    """Delete the contact and everything personal about it; keep the statistics. The erase
    is recorded (``hooks.erasure_recorded``: the erasure ledger) unless it is ``recorded``
    already (re-applied from the ledger after a restore); the apps above delete or scrub
    what they hold about it (``hooks.contact_erasing``: notes, handoff history, tickets)."""

    tenant_id = contact.tenant_id
    contact = Contact.objects.select_for_update().get(pk=contact.pk, tenant_id=tenant_id)
    family = _merged_family(contact)
    contacts = list(Contact.objects.for_tenant(tenant_id).filter(pk__in=family))
    conversations = Conversation.objects.for_tenant(tenant_id).filter(contact_id__in=family)
    conversation_ids = list(conversations.values_list("pk", flat=True))
    lead_ids = list(
        Lead.objects.for_tenant(tenant_id)
        .filter(contact_id__in=family)
        .values_list("pk", flat=True)
    )
    summary = {
        "contacts": len(family),
        "conversations": len(conversation_ids),
        "messages": Message.objects.for_tenant(tenant_id)
        .filter(conversation_id__in=conversation_ids)
        .count(),
        "leads": len(lead_ids),
    }
    erasure = Erasure(
        tenant_id=tenant_id,
        # The erased contact first: erasing it again takes the ones merged into it along.
        contacts=[(c.pk, c.created_at) for c in sorted(contacts, key=lambda c: c.pk != contact.pk)],
        erased_at=timezone.now(),
    )
    if not recorded:
        hooks.erasure_recorded(erasure)
    days = stats_keep_erased(
        tenant_id=tenant_id, conversation_ids=conversation_ids, lead_ids=lead_ids
    )

    # What the apps above hold about these conversations and leads (notes, handoff history,
    # tickets that quote the contact) goes first: it may point to the rows deleted below.
    hooks.contact_erasing(
        erasing=ContactErasing(
            tenant_id=tenant_id,
            contacts=contacts,
            conversation_ids=conversation_ids,
            lead_ids=lead_ids,
        )
    )
    Message.objects.for_tenant(tenant_id).filter(conversation_id__in=conversation_ids).delete()
    Lead.objects.for_tenant(tenant_id).filter(pk__in=lead_ids).delete()
    Conversation.objects.for_tenant(tenant_id).filter(pk__in=conversation_ids).delete()
    # Contacts point to each other (merged_into): cut the links, then delete them all.
    Contact.objects.for_tenant(tenant_id).filter(pk__in=family).update(merged_into=None)
    Contact.objects.for_tenant(tenant_id).filter(pk__in=family).delete()

    # The live numbers of those days no longer count what the erased rows now hold.
    for day in sorted(days):
        stats_rebuild(tenant_id=tenant_id, start=day, end=day)

    # The dashboard's history shows objects by name ("Ann <ann@example.com>"): drop it.
    for model, ids in ((Contact, family), (Lead, lead_ids), (Conversation, conversation_ids)):
        if ids:
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(model),
                object_id__in=[str(pk) for pk in ids],
            ).delete()

    return PrivacyAudit.objects.create(
        tenant_id=tenant_id,
        action=PrivacyAudit.Action.ERASE,
        contact_ref=contact.pk,
        door=door,
        actor=actor,
        api_key=api_key,
        summary=summary,
    )
