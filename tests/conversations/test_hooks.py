"""What conversations asks of the apps above it goes through the hooks they registered at
start-up (conversations/hooks.py), and reaches their real rows: agents' handoff, notes and
history, support's tickets, the away form's lead and ticket."""

from __future__ import annotations

import pytest

from agents.models import HandoffEvent, Note
from conversations import hooks
from conversations.models import Conversation, Message
from leads.models import Lead
from privacy import hooks as privacy_hooks
from privacy import services as privacy
from privacy.models import PrivacyAudit
from support.models import Ticket, TicketComment
from tests.factories import (
    AgentProfileFactory,
    ContactFactory,
    ConversationFactory,
    NoteFactory,
    TeamFactory,
    TicketCommentFactory,
    TicketFactory,
    launched_bot,
)

pytestmark = pytest.mark.django_db
ALWAYS_OPEN = {
    day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@pytest.fixture
def conversation(tenant):
    bot = launched_bot(tenant=tenant, business_hours=ALWAYS_OPEN, ticket_after_hours=True)
    contact = ContactFactory(tenant=tenant, name="Hugo Hook", email="hugo@example.com")
    return ConversationFactory(
        tenant=tenant, bot=bot, bot_version=bot.published_version, contact=contact
    )


def test_a_hand_off_reaches_the_agents_queue_and_its_team(conversation, tenant):
    billing = TeamFactory(tenant=tenant, name="Billing")
    AgentProfileFactory(tenant=tenant)  # someone online: no away message

    returned = hooks.hand_off(conversation=conversation, reason="flow", team="billing")

    assert returned is conversation
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.QUEUED
    assert conversation.team == billing
    assert list(
        HandoffEvent.objects.filter(conversation=conversation).values_list(
            "from_status", "to_status", "reason"
        )
    ) == [("bot", "queued", "flow")]


def test_the_away_form_leaves_a_lead_and_a_ticket(conversation):
    hooks.hand_off(conversation=conversation, reason="visitor_request")  # nobody online
    assert Message.objects.filter(conversation=conversation, data__away=True).exists()

    lead = hooks.away_contact_leave(
        conversation=conversation, fields={"name": "Hugo", "email": "hugo@example.com"}
    )

    assert Lead.objects.get(pk=lead.pk).source == Lead.Source.AWAY_FORM
    assert Ticket.objects.filter(conversation=conversation, lead=lead).count() == 1


def test_an_export_holds_the_agents_notes_and_handoffs(conversation, tenant):
    hooks.hand_off(conversation=conversation, reason="visitor_request")
    NoteFactory(tenant=tenant, conversation=conversation, text="Prefers email")

    data = privacy.contact_export_data(contact=conversation.contact)

    (exported,) = data["conversations"]
    assert [n["text"] for n in exported["notes"]] == ["Prefers email"]
    assert [(h["from"], h["to"], h["reason"]) for h in exported["handoffs"]] == [
        ("bot", "queued", "visitor_request")
    ]


def test_an_erase_reaches_notes_history_and_tickets(conversation, tenant):
    hooks.hand_off(conversation=conversation, reason="visitor_request")
    NoteFactory(tenant=tenant, conversation=conversation, text="Hugo Hook called")
    ticket = TicketFactory(
        tenant=tenant, conversation=conversation, title="Hugo Hook's order", description="x"
    )
    comment = TicketCommentFactory(
        tenant=tenant, ticket=ticket, body="Wrote to HUGO@example.com today"
    )
    other = TicketFactory(tenant=tenant, title="Someone else's")

    privacy.contact_erase(contact=conversation.contact, door=PrivacyAudit.Door.API)

    assert not Note.objects.filter(tenant=tenant).exists()
    assert not HandoffEvent.objects.filter(tenant=tenant).exists()
    ticket.refresh_from_db()
    assert (ticket.title, ticket.description) == (
        f"Request from an {privacy.ERASED} contact",
        privacy.ERASED,
    )
    assert TicketComment.objects.get(pk=comment.pk).body == f"Wrote to {privacy.ERASED} today"
    assert Ticket.objects.get(pk=other.pk).title == "Someone else's"


def test_an_erase_fails_whole_when_a_listener_fails(conversation, tenant, monkeypatch):
    """The listeners run inside the erase's transaction: one that fails undoes the erase."""
    NoteFactory(tenant=tenant, conversation=conversation)

    def broken(*, erasing):
        raise RuntimeError("support is down")

    listeners = [*privacy_hooks._contact_erasing.listeners, broken]
    monkeypatch.setattr(privacy_hooks._contact_erasing, "_listeners", listeners)
    with pytest.raises(RuntimeError, match="support is down"):
        privacy.contact_erase(contact=conversation.contact, door=PrivacyAudit.Door.API)

    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert Note.objects.filter(conversation=conversation).count() == 1
    assert not PrivacyAudit.objects.exists()
