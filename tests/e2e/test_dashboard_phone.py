"""The dashboard on a phone (375 x 812), page after page as its navigation leads: each scrolls
only downwards (a wide table scrolls in its own box), no button or field is cut at the
screen's edge, and axe-core finds no WCAG 2.1 A/AA violation (a conversation's transcript
with a private note and a change of hands among its messages, the Agents list's intro, a
support ticket's page among them)."""

from __future__ import annotations

import pytest

from conversations.models import Message
from tests.e2e.conftest import axe_violations, controls_off_screen
from tests.e2e.test_bot_pages import sign_in
from tests.factories import (
    AgentProfileFactory,
    CannedResponseFactory,
    ContactFactory,
    ConversationFactory,
    HandoffEventFactory,
    LeadFactory,
    MembershipFactory,
    MessageFactory,
    NoteFactory,
    TeamFactory,
    TicketCommentFactory,
    TicketFactory,
    launched_bot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "Conversations",
    "Contacts",
    "Leads",
    "Handoff log",
    "Statistics",
    "Bots",
    "Channels",
    "Delivery log",
    "Agents",
    "Teams",
    "Canned responses",
    "Staff members",
    "Invitations",
    "Tickets",
    "Company",
]


def test_every_dashboard_page_fits_a_phone(new_context, tenant):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    agent = AgentProfileFactory(tenant=tenant).user
    agent.first_name, agent.last_name = "Maya", "Lopez"
    agent.save()
    TeamFactory(tenant=tenant, name="Billing")
    CannedResponseFactory(tenant=tenant, shortcut="thanks")
    bot = launched_bot(tenant=tenant, name="Shop helper")
    contact = ContactFactory(tenant=tenant, name="Vera Visitor", email="vera@example.com")
    conversation = ConversationFactory(
        tenant=tenant, bot=bot, contact=contact, assigned_agent=agent, status="assigned"
    )
    # The transcript: messages, a change of hands and a private note among them.
    MessageFactory(tenant=tenant, conversation=conversation, text="Can I talk to a person?")
    HandoffEventFactory(tenant=tenant, conversation=conversation, to_status="assigned", agent=agent)
    NoteFactory(tenant=tenant, conversation=conversation, author=agent, text="Asked twice.")
    MessageFactory(
        tenant=tenant,
        conversation=conversation,
        sender=Message.Sender.AGENT,
        direction="out",
        agent=agent,
        status="delivered",
        text="Maya here: how can I help?",
    )
    fields = {"email": "vera.visitor.with.a.rather.long.address@example.com", "message": "x" * 80}
    LeadFactory(tenant=tenant, contact=contact, conversation=conversation, fields=fields)
    ticket = TicketFactory(tenant=tenant, reporter=owner, title="The widget does not open")
    TicketCommentFactory(tenant=tenant, ticket=ticket, body="Since this morning.")

    page = new_context(viewport={"width": 375, "height": 812}, is_mobile=True).new_page()
    sign_in(page, owner.username, "/dashboard/")
    problems = {}
    for name in PAGES:
        page.goto("/dashboard/")  # the home, whose navigation leads to each page
        page.get_by_role("link", name=name, exact=True).first.click()
        page.wait_for_load_state()
        expect(page.locator("#content")).to_be_visible()
        _look(page, name, problems)
        # A page's first row, where the list has one (its change form, a lead's fields...).
        first = page.locator("#result_list tbody tr th a").first
        if first.count():
            first.click()
            page.wait_for_load_state()
            _look(page, f"{name}: first row", problems)
            if name == "Conversations":  # its note and change of hands were looked at too
                expect(page.locator("li.ct-sender-note")).to_contain_text("Asked twice.")
                expect(page.locator("li.ct-sender-handoff")).to_have_count(1)
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


def _look(page, name: str, problems: dict) -> None:
    found = []
    if not page.evaluate("document.documentElement.scrollWidth <= innerWidth"):
        found.append("the page scrolls sideways")
    found += controls_off_screen(page)
    for violation in axe_violations(page):
        where = [node["target"] for node in violation["nodes"][:5]]
        found.append(f"axe-core: {violation['id']}: {violation['help']} at {where}")
    if found:
        problems[f"{name} ({page.url})"] = found
