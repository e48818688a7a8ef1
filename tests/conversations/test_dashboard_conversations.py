"""A tenant's staff read their conversations in the dashboard: each conversation's page shows
its details and its transcript (every message, its sender's name, its time and delivery), and
hides what is internal (the recipient's id on the platform)."""

from __future__ import annotations

import re

import pytest

from conversations.models import ChannelKind, Message
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    MembershipFactory,
    MessageFactory,
)

pytestmark = pytest.mark.django_db


def page_of(client, conversation):
    return client.get(f"/dashboard/conversations/conversation/{conversation.pk}/change/")


@pytest.fixture
def conversation(tenant):
    agent = MembershipFactory(tenant=tenant, role="agent").user
    agent.first_name, agent.last_name = "Maya", "Lopez"
    agent.save()
    channel = ChannelFactory(tenant=tenant, kind=ChannelKind.TELEGRAM, name="Support line")
    contact = ContactFactory(tenant=tenant, name="Zoe Visitor")
    conversation = ConversationFactory(
        tenant=tenant,
        contact=contact,
        channel=channel,
        channel_kind=ChannelKind.TELEGRAM,
        recipient_id="50bb02c0ffee",
        assigned_agent=agent,
        status="assigned",
    )
    conversation.bot.name = "Acme assistant"
    conversation.bot.save()
    MessageFactory(tenant=tenant, conversation=conversation, channel=channel, text="Hi, my order?")
    out = {"tenant": tenant, "conversation": conversation, "direction": Message.Direction.OUT}
    MessageFactory(
        **out,
        sender=Message.Sender.BOT,
        text="Shall I find it?",
        status=Message.Status.READ,
        data={"quick_replies": [{"title": "Yes", "payload": "YES"}, {"title": "No"}]},
    )
    MessageFactory(
        **out,
        sender=Message.Sender.AGENT,
        agent=agent,
        text="Found it: it ships today.",
        status=Message.Status.FAILED,
        error="blocked by the user",
    )
    return conversation


def test_an_owner_reads_every_message_with_its_sender_time_channel_and_agent(
    owner, owner_client, conversation
):
    assert not owner.is_superuser
    page = page_of(owner_client, conversation)
    assert page.status_code == 200
    lines = page.context["transcript"]
    assert [(line.sender_name, line.text) for line in lines] == [
        ("Zoe Visitor", "Hi, my order?"),
        ("Acme assistant", "Shall I find it?"),
        ("Maya Lopez", "Found it: it ships today."),
    ]
    html = page.content.decode()
    for text in ["Hi, my order?", "Shall I find it?", "Found it: it ships today."]:
        assert text in html
    assert "Transcript (3 messages)" in html
    assert "Support line (Telegram)" in html  # the channel
    assert "Maya Lopez" in html  # the agent
    assert "Options offered: Yes · No" in html
    assert "Read" in html and "Not delivered: blocked by the user" in html
    first = lines[0].created_at.isoformat()
    assert f'datetime="{first}"' in html


def test_internal_values_are_not_shown(owner_client, conversation):
    html = page_of(owner_client, conversation).content.decode()
    assert "50bb02c0ffee" not in html and "Recipient id" not in html
    assert "YES" not in html  # a quick reply's payload is the bot's, not the reader's


def test_the_page_is_read_only(owner_client, conversation):
    page = page_of(owner_client, conversation)
    assert b'name="_save"' not in page.content
    response = owner_client.post(
        f"/dashboard/conversations/conversation/{conversation.pk}/change/", {"status": "resolved"}
    )
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.status == "assigned"


def test_an_admin_of_the_tenant_reads_it_too_and_another_tenant_gets_a_404(
    client, tenant, other_tenant, conversation
):
    client.force_login(MembershipFactory(tenant=tenant, role="admin").user)
    assert "Found it: it ships today." in page_of(client, conversation).content.decode()
    client.force_login(MembershipFactory(tenant=other_tenant, role="owner").user)
    assert page_of(client, conversation).status_code == 404


def test_the_transcript_holds_only_this_conversations_messages(owner_client, tenant, conversation):
    MessageFactory(tenant=tenant, text="Another conversation's words")
    html = page_of(owner_client, conversation).content.decode()
    assert "Another conversation's words" not in html and "Transcript (3 messages)" in html


def test_the_list_links_each_conversation_by_its_contact(owner_client, conversation):
    page = owner_client.get("/dashboard/conversations/conversation/")
    assert page.status_code == 200
    link = f'href="/dashboard/conversations/conversation/{conversation.pk}/change/'
    assert link in page.content.decode()
    assert f"Conversation #{conversation.pk} with Zoe Visitor" in page.content.decode()
    # The agent by their name, as on the conversation's page, not their sign-in.
    agent = conversation.assigned_agent
    assert '<td class="field-agent">Maya Lopez</td>' in page.content.decode()
    assert agent.username not in page.content.decode()


def test_codes_read_as_words(owner_client, conversation):
    conversation.language, conversation.csat = "es", 4
    conversation.save()
    html = page_of(owner_client, conversation).content.decode()
    assert re.search(r"Language:</label>\s*<div class=\"readonly\">Spanish</div>", html)
    assert re.search(r"Satisfaction \(CSAT\):</label>\s*<div class=\"readonly\">4 / 5</div>", html)
    assert ">es<" not in html and "Csat" not in html


def test_an_owner_sees_a_contacts_identities(owner_client, tenant):
    contact = ContactFactory(tenant=tenant)
    ContactIdentityFactory(tenant=tenant, contact=contact, kind="whatsapp", external_id="4915112")
    page = owner_client.get(f"/dashboard/contacts/contact/{contact.pk}/change/")
    assert page.status_code == 200 and b"4915112" in page.content


def test_a_web_visitors_browser_key_is_not_shown(owner_client, tenant):
    contact = ContactFactory(tenant=tenant)
    ContactIdentityFactory(tenant=tenant, contact=contact, kind="webchat", external_id="9f" * 16)
    page = owner_client.get(f"/dashboard/contacts/contact/{contact.pk}/change/")
    assert b"a web browser" in page.content and b"9f" * 16 not in page.content


def test_the_transcript_shows_the_notes_and_each_change_of_hands_at_their_times(
    owner_client, tenant
):
    """The owner read the messages only: not the agents' private notes, nor who claimed,
    transferred or resolved it (a new agent's walk)."""
    from agents import services
    from tests.factories import AgentProfileFactory, TeamFactory, launched_bot

    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    bot = launched_bot(tenant=tenant, business_hours={day: [["00:00", "24:00"]] for day in days})
    conversation = ConversationFactory(tenant=tenant, bot=bot, bot_version=bot.published_version)
    maya = AgentProfileFactory(tenant=tenant).user
    maya.first_name, maya.last_name = "Maya", "Lopez"
    maya.save()
    billing = TeamFactory(tenant=tenant, name="Billing")
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    services.conversation_claim(conversation=conversation, agent=maya)
    services.agent_reply(conversation=conversation, agent=maya, text="Hello, I'm on it.")
    services.note_add(conversation=conversation, author=maya, text="VIP: refund at once")
    services.conversation_transfer(conversation=conversation, actor=maya, to_team=billing)
    page = page_of(owner_client, conversation)
    said = [
        (line.sender, line.sender_name, line.text)
        for line in page.context["transcript"]
        if line.sender in ("note", "handoff", "agent")
    ]
    assert said == [
        ("handoff", "", "Asked by the visitor"),
        ("handoff", "Maya Lopez", "Claimed from the queue · with Maya Lopez"),
        ("agent", "Maya Lopez", "Hello, I'm on it."),
        ("note", "Private note by Maya Lopez", "VIP: refund at once"),
        ("handoff", "Maya Lopez", "Transferred · to team Billing"),
    ]
    html = page.content.decode()
    assert "VIP: refund at once" in html and "Private note by Maya Lopez" in html
    assert "Transcript (1 message)" in html  # the messages; notes and changes apart
    assert re.search(r"Test chat:</label>\s*<div class=\"readonly\">No</div>", html)
