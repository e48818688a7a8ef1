"""A tenant owner's conversation, contact and support ticket pages in a real browser, through
their visible controls only (clicks and typing; no form posted and no API called by hand): sign in,
read a conversation's whole transcript; add a contact's attribute as a new row (adding a
channel: test_channel_pages.py); close their own support ticket. axe-core finds nothing on
these pages."""

from __future__ import annotations

import re

import pytest

from conversations.models import Message
from support.models import Ticket
from tests.e2e.conftest import assert_accessible
from tests.e2e.test_bot_pages import sign_in
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MembershipFactory,
    MessageFactory,
    TicketFactory,
    launched_bot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINES = [
    (Message.Sender.CONTACT, "Hello, where is my order 1042?"),
    (Message.Sender.BOT, "Let me look that up for you."),
    (Message.Sender.CONTACT, "It was due on Monday.\nIt is Thursday now."),
    (Message.Sender.AGENT, "Sorry for the wait: it ships today, tracking by email."),
]


def open_list(page, app: str, model: str) -> None:
    """Follow the dashboard's link to a model's list (wherever the navigation puts it)."""
    page.locator(f'a[href$="/dashboard/{app}/{model}/"]').first.click()


def test_an_owner_reads_a_conversations_whole_transcript(new_context, tenant):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    agent = MembershipFactory(tenant=tenant, role="agent").user
    agent.first_name, agent.last_name = "Maya", "Lopez"
    agent.save()
    bot = launched_bot(tenant=tenant, name="Acme assistant")
    contact = ContactFactory(tenant=tenant, name="Zoe Visitor")
    conversation = ConversationFactory(
        tenant=tenant, bot=bot, contact=contact, assigned_agent=agent, status="assigned"
    )
    for sender, text in LINES:
        MessageFactory(
            tenant=tenant,
            conversation=conversation,
            sender=sender,
            direction="in" if sender == Message.Sender.CONTACT else "out",
            agent=agent if sender == Message.Sender.AGENT else None,
            status="received" if sender == Message.Sender.CONTACT else "delivered",
            text=text,
        )

    page = new_context().new_page()
    sign_in(page, owner.username, "/dashboard/")
    open_list(page, "conversations", "conversation")
    page.get_by_role("link", name=f"Conversation #{conversation.pk} with Zoe Visitor").click()

    transcript = page.get_by_role("region", name="Transcript (4 messages)")
    expect(transcript).to_be_visible()
    items = transcript.get_by_role("listitem")
    expect(items).to_have_count(len(LINES))
    for index, (_, text) in enumerate(LINES):
        bubble = items.nth(index)
        body = bubble.locator(".ct-line-text")
        expect(body).to_be_visible()
        expect(body).to_have_text(text)
        # Not clipped: the whole text fits its box.
        assert body.evaluate("e => e.scrollHeight <= e.clientHeight + 1")
    for index, name in enumerate(["Zoe Visitor", "Acme assistant", "Zoe Visitor", "Maya Lopez"]):
        expect(items.nth(index).locator("strong")).to_have_text(name)
    expect(page.get_by_text("Web chat", exact=True)).to_be_visible()  # the channel
    expect(page.locator(".field-agent .readonly")).to_have_text("Maya Lopez")
    expect(page.get_by_text(conversation.recipient_id)).to_have_count(0)
    assert_accessible(page)


def test_an_owner_adds_a_contacts_attribute_as_a_row(new_context, tenant):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    contact = ContactFactory(tenant=tenant, name="Zoe Visitor", attributes={"plan": "gold"})
    page = new_context().new_page()
    sign_in(page, owner.username, "/dashboard/")
    open_list(page, "contacts", "contact")
    page.get_by_role("link", name="Zoe Visitor").click()
    expect(page.get_by_label("Value of attribute 1")).to_have_value("gold")

    page.get_by_role("button", name="Add a row").click()  # the empty row takes the focus
    page.keyboard.type("company")
    page.get_by_label("Value of attribute 2").fill("Acme")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    expect(page.get_by_label("Name of attribute 2")).to_have_value("company")
    contact.refresh_from_db()
    assert contact.attributes == {"plan": "gold", "company": "Acme"}
    assert_accessible(page)


def test_an_owner_closes_their_support_ticket(new_context, tenant):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    ticket = TicketFactory(tenant=tenant, reporter=owner, title="The widget does not open")
    page = new_context().new_page()
    sign_in(page, owner.username, "/dashboard/")
    open_list(page, "support", "ticket")
    page.get_by_role("link", name="The widget does not open", exact=True).click()
    expect(page.locator(".field-status .readonly")).to_have_text("Open")
    assert_accessible(page)

    page.get_by_label("Add a comment").fill("Solved it myself.")
    page.get_by_label("Close this ticket").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()

    # Its page again: closed, and read-only (no comment box, no checkbox, no Save).
    page.get_by_role("link", name="The widget does not open", exact=True).click()
    expect(page.locator(".field-status .readonly")).to_have_text("Closed")
    expect(page.locator("#ticket-thread")).to_contain_text("Solved it myself.")
    expect(page.get_by_label("Add a comment")).to_have_count(0)
    expect(page.get_by_label("Close this ticket")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Save"))).to_have_count(0)
    assert_accessible(page)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.CLOSED
