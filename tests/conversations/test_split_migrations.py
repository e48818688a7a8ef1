"""The split of the conversations app (migrations conversations 0012-0013 and the first ones of
contacts, leads, stats, privacy and messaging): the models change apps in Django's state only,
so a database holding rows from before the split keeps every one of them, with its relations,
and the dashboard's history (content types) follows the models."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType

from contacts.models import Contact, ContactIdentity
from conversations.models import Conversation, Message
from leads.models import Lead, LeadWebhook
from messaging.models import Channel, DeliveryAttempt
from privacy.models import PrivacyAudit
from stats.models import DailyStat
from support.models import Ticket
from tests.factories import (
    BotFactory,
    ChannelFactory,
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    DailyStatFactory,
    DeliveryAttemptFactory,
    LeadFactory,
    MessageFactory,
    PrivacyAuditFactory,
    TenantFactory,
    TicketFactory,
)
from tests.migrations import migrate

BEFORE = [("conversations", "0011_privacy_audit_restore_door")]
MOVED = {
    "contact": "contacts",
    "contactidentity": "contacts",
    "lead": "leads",
    "leadwebhook": "leads",
    "dailystat": "stats",
    "privacyaudit": "privacy",
    "channel": "messaging",
    "deliveryattempt": "messaging",
}


@pytest.mark.django_db(transaction=True)
def test_rows_from_before_the_split_are_all_there_after_it():
    tenant = TenantFactory()
    bot = BotFactory(tenant=tenant)
    channel = ChannelFactory(tenant=tenant, bot=bot)
    contact = ContactFactory(tenant=tenant, email="ana@example.com")
    identity = ContactIdentityFactory(tenant=tenant, contact=contact, channel=channel)
    conversation = ConversationFactory(tenant=tenant, bot=bot, contact=contact, channel=channel)
    message = MessageFactory(tenant=tenant, conversation=conversation, channel=channel)
    attempt = DeliveryAttemptFactory(tenant=tenant, channel=channel, message=message)
    lead = LeadFactory(tenant=tenant, contact=contact, conversation=conversation, bot=bot)
    stat = DailyStatFactory(tenant=tenant, bot=bot)
    audit = PrivacyAuditFactory(tenant=tenant)
    ticket = TicketFactory(tenant=tenant, lead=lead)
    types = {
        model: ContentType.objects.get(app_label=app, model=model).pk
        for model, app in MOVED.items()
    }
    try:
        old = migrate(BEFORE)
        # Before the split, every model is the conversations app's, and it reads the rows.
        OldLead = old.get_model("conversations", "Lead")
        assert OldLead.objects.get(pk=lead.pk).contact.email == "ana@example.com"
        assert (
            old.get_model("conversations", "ContactIdentity").objects.get(pk=identity.pk).channel_id
            == channel.pk
        )
        for model in MOVED:
            assert ContentType.objects.get(pk=types[model]).app_label == "conversations"
        # A row written by the code of the time.
        webhook = old.get_model("conversations", "LeadWebhook").objects.create(
            tenant_id=tenant.pk, url="https://crm.example.com/leads", signing_secret_encrypted="x"
        )
        later = OldLead.objects.create(
            tenant_id=tenant.pk, contact_id=contact.pk, conversation_id=conversation.pk, fields={}
        )
    finally:
        migrate()

    assert Contact.objects.get(pk=contact.pk).email == "ana@example.com"
    assert ContactIdentity.objects.get(pk=identity.pk).channel == Channel.objects.get(pk=channel.pk)
    moved = Conversation.objects.get(pk=conversation.pk)
    assert (moved.contact_id, moved.channel_id) == (contact.pk, channel.pk)
    assert Message.objects.get(pk=message.pk).channel_id == channel.pk
    assert DeliveryAttempt.objects.get(pk=attempt.pk).message_id == message.pk
    assert set(Lead.objects.filter(contact=contact).values_list("pk", flat=True)) == {
        lead.pk,
        later.pk,
    }
    assert Lead.objects.get(pk=later.pk).conversation == moved
    assert LeadWebhook.objects.get(pk=webhook.pk).url == "https://crm.example.com/leads"
    assert DailyStat.objects.get(pk=stat.pk).bot_id == bot.pk
    assert PrivacyAudit.objects.get(pk=audit.pk).action == audit.action
    assert Ticket.objects.get(pk=ticket.pk).lead_id == lead.pk
    # The same content types, under their new apps: the dashboard's history still opens.
    for model, app in MOVED.items():
        assert ContentType.objects.get(pk=types[model]).app_label == app
