"""The dashboard's pages that moved out of `conversations` (contacts, leads, lead webhooks, the
statistics, data exports and erasures, channels, the delivery log), as a new tenant owner uses
them: signed in, each reached by its link in the dashboard's navigation (only the first one
typed). On each: the heading and the list are visible and named in plain words (the
navigation's, not the model's name), axe-core finds nothing, and on a 375 px phone the page
does not scroll sideways (a wide list scrolls in its own box, as every dashboard list does).
A web visitor's delete confirmation names the visitor in words, never by the browser's key."""

from __future__ import annotations

import pytest

from conversations.models import ChannelKind
from leads.models import Lead
from privacy.models import PrivacyAudit
from tests.e2e.conftest import assert_accessible
from tests.e2e.test_bot_pages import sign_in
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    DailyStatFactory,
    DeliveryAttemptFactory,
    LeadFactory,
    LeadWebhookFactory,
    MembershipFactory,
    PrivacyAuditFactory,
    launched_bot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
# A web visitor's id: the widget's random key for a browser (internal, never a name).
BROWSER_KEY = "0f3c9a7e5b2d4c6e8a1b3d5f7e9c2a4b"
# (the navigation's link, the page's heading, the name of its list, a row it shows)
PAGES = [
    ("Contacts", "Contacts", "Contacts", "Zoe Visitor"),
    ("Leads", "Leads", "Leads", "Zoe Visitor"),
    ("Lead webhooks", "Lead webhooks", "Lead webhooks", "https://crm.example.com/leads"),
    ("Statistics", "Statistics", "Per bot", "Acme assistant"),
    (
        "Data exports and erasures",
        "Data exports and erasures",
        "Data exports and erasures",
        "Export",
    ),
    ("Channels", "Channels", "Channels", "Support on Telegram"),
    ("Delivery log", "Delivery log", "Delivery attempts", "Support on Telegram (Telegram)"),
]
CRUMB = "\u203a"  # the breadcrumbs' separator
MODEL_NAMES = ["Dailystat", "Daily stat", "Privacyaudit", "Privacy audit", "Deliveryattempt"]


def populate(tenant):
    """A little of what a tenant has after its first days: the pages show rows, not blanks."""
    bot = launched_bot(tenant=tenant, name="Acme assistant")
    zoe = ContactFactory(tenant=tenant, name="Zoe Visitor", email="zoe@example.com")
    LeadFactory(tenant=tenant, contact=zoe, status=Lead.Status.NEW)
    LeadWebhookFactory(tenant=tenant, url="https://crm.example.com/leads")
    PrivacyAuditFactory(
        tenant=tenant,
        contact_ref=zoe.pk,
        action=PrivacyAudit.Action.EXPORT,
        summary={"messages": 4},
    )
    channel = ChannelFactory(
        tenant=tenant, bot=bot, kind=ChannelKind.TELEGRAM, name="Support on Telegram"
    )
    DeliveryAttemptFactory(tenant=tenant, channel=channel)
    DailyStatFactory(tenant=tenant, bot=bot, conversations=5, messages_in=12, messages_out=14)
    # A web chat visitor: no name, email or phone; the widget's key is all the widget knows.
    visitor = ContactFactory(tenant=tenant, name="", email="")
    ContactIdentityFactory(
        tenant=tenant, contact=visitor, kind=ChannelKind.WEBCHAT, external_id=BROWSER_KEY
    )
    ConversationFactory(tenant=tenant, bot=bot, contact=visitor, recipient_id=BROWSER_KEY)
    return visitor


def no_sideways_scroll(page) -> None:
    """On a phone the page's body does not scroll sideways (a wide list scrolls in its box)."""
    page.set_viewport_size(PHONE)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    page.set_viewport_size(DESKTOP)
    assert widths[0] <= widths[2] and widths[1] <= widths[2], f"{page.url}: {widths}"


def reads_as(page, heading: str, list_name: str, row: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page).to_have_title(f"{heading} | Chat-Tonic")
    crumbs = " ".join(page.locator(".breadcrumbs").inner_text().split())
    assert crumbs.startswith(f"Home {CRUMB}") and crumbs.endswith(f"{CRUMB} {heading}"), crumbs
    listed = page.get_by_role("table", name=list_name, exact=True)
    expect(listed).to_be_visible()
    expect(listed.get_by_text(row, exact=True).first).to_be_visible()
    text = page.locator("#content").inner_text()
    assert not [name for name in MODEL_NAMES if name.lower() in text.lower()], text
    assert_accessible(page)
    no_sideways_scroll(page)


def test_an_owner_walks_the_moved_pages_from_the_navigation(new_context, tenant):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    visitor = populate(tenant)
    page = new_context(viewport=DESKTOP).new_page()
    sign_in(page, owner.username, "/dashboard/contacts/contact/")

    for index, (link, heading, list_name, row) in enumerate(PAGES):
        if index:
            nav = page.locator("#nav-sidebar")
            nav.get_by_role("link", name=link, exact=True).click()
            expect(nav.get_by_role("link", name=link, exact=True)).to_have_attribute(
                "aria-current", "page"
            )
        reads_as(page, heading, list_name, row)

    # The web visitor's delete confirmation: named in words, never by the browser's key.
    nav = page.locator("#nav-sidebar")
    nav.get_by_role("link", name="Contacts", exact=True).click()
    label = f"Visitor #{visitor.pk}"
    page.get_by_role("link", name=label, exact=True).click()
    expect(page.get_by_role("heading", name=label, exact=True)).to_be_visible()
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete")
    expect(page.get_by_text(f'delete the contact "{label}"')).to_be_visible()
    expect(page.get_by_text("Contact identity: Web chat: a web browser")).to_be_visible()
    content = page.locator("#content").inner_text()
    assert BROWSER_KEY not in page.content(), content
    assert label in content
    assert_accessible(page)
    no_sideways_scroll(page)
