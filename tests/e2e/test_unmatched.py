"""Unmatched phrases in a real browser: a visitor types something the live bot does not
understand in the widget; its owner finds it from the bot's page and adds it to an intent of
the draft with the visible controls; axe-core finds nothing on the page."""

from __future__ import annotations

import pytest

from bots.models import Bot, UnmatchedPhrase
from tests.bots.test_unmatched import PENGUINS, live_bot
from tests.e2e.conftest import assert_accessible
from tests.e2e.test_bot_pages import sign_in
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FALLBACK = "Sorry, I did not understand that."


def test_an_owner_adds_what_a_visitor_wrote_to_an_intent_in_one_click(new_context, tenant):
    from playwright.sync_api import expect

    bot = live_bot(tenant)
    visitor = new_context().new_page()
    visitor.goto(f"/demo/{bot.public_key}/")
    visitor.get_by_role("button", name="Open chat").click()
    expect(visitor.locator("chattonic-widget .msg.out").last).to_contain_text("Ask me.")
    box = visitor.locator("chattonic-widget textarea.input")
    box.fill(PENGUINS)
    box.press("Enter")
    expect(visitor.locator("chattonic-widget .msg.out").last).to_contain_text(FALLBACK)

    owner = MembershipFactory(tenant=tenant, role="owner").user
    page = new_context().new_page()
    sign_in(page, owner.username, f"/dashboard/bots/bot/{bot.pk}/change/")
    page.get_by_role("link", name="1 new message the bot did not understand").click()
    expect(page.get_by_role("cell", name=PENGUINS, exact=True)).to_be_visible()
    assert_accessible(page)
    page.get_by_label(f"Intent for “{PENGUINS}”").select_option("hours")
    page.get_by_role("button", name="Add to intent").click()
    expect(page.get_by_text(f"“{PENGUINS}” is now a training phrase of hours")).to_be_visible()
    expect(page.get_by_role("cell", name=PENGUINS, exact=True)).to_have_count(0)

    hours = next(
        i for i in Bot.objects.get(pk=bot.pk).draft_definition["intents"] if i["name"] == "hours"
    )
    assert hours["phrases"][-1] == PENGUINS
    assert UnmatchedPhrase.objects.get(bot=bot).status == UnmatchedPhrase.Status.ADDED
