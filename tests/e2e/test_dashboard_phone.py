"""The dashboard on a phone (375 x 812), page after page as its navigation leads: each scrolls
only downwards (a wide table scrolls in its own box) and no button or field is cut at the
screen's edge."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import controls_off_screen
from tests.e2e.test_bot_pages import sign_in
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    LeadFactory,
    MembershipFactory,
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
    bot = launched_bot(tenant=tenant, name="Shop helper")
    contact = ContactFactory(tenant=tenant, name="Vera Visitor", email="vera@example.com")
    conversation = ConversationFactory(tenant=tenant, bot=bot, contact=contact)
    fields = {"email": "vera.visitor.with.a.rather.long.address@example.com", "message": "x" * 80}
    LeadFactory(tenant=tenant, contact=contact, conversation=conversation, fields=fields)

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
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


def _look(page, name: str, problems: dict) -> None:
    found = []
    if not page.evaluate("document.documentElement.scrollWidth <= innerWidth"):
        found.append("the page scrolls sideways")
    found += controls_off_screen(page)
    if found:
        problems[f"{name} ({page.url})"] = found
