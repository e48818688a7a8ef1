"""The dashboard's home in a real browser, through its visible controls only: a tenant owner
signs in with the sign-in form, lands on the home with its figures and the setup checklist
(done steps marked), clicks "Statistics" in its navigation and reads the statistics; a
checklist link leads to the page that does the step; axe-core finds nothing on the home."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.utils import timezone

from stats.services import stats_rebuild
from tests.e2e.conftest import assert_accessible
from tests.factories import ConversationFactory, MembershipFactory, launched_bot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def test_an_owner_signs_in_reads_the_home_and_opens_the_statistics(
    new_context, live_server_url, tenant
):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    bot = launched_bot(tenant=tenant, name="Shop helper")
    for _ in range(3):
        ConversationFactory(tenant=tenant, bot=bot)
    today = timezone.now().astimezone(UTC).date()
    stats_rebuild(tenant_id=tenant.pk, start=today, end=today)

    page = new_context().new_page()
    page.goto("/dashboard/")
    page.get_by_label("Username").fill(owner.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")

    # The home: the day's figures and the checklist, the done steps marked as done.
    expect(page.get_by_role("heading", name="Today")).to_be_visible()
    today_figure = page.locator(".ct-figures li").filter(has_text="Conversations today")
    expect(today_figure.locator(".ct-figure-value")).to_have_text("3")
    expect(page.get_by_role("heading", name="Set up (4 of 5 done)")).to_be_visible()
    steps = page.locator(".ct-checklist > li")
    expect(steps).to_have_count(5)
    for index in (0, 1, 2, 4):
        expect(steps.nth(index).locator(".ct-step-state")).to_have_text("✓ Done:")
    embed = steps.nth(3)
    expect(embed.locator(".ct-step-state")).to_have_text("To do:")
    expect(embed).to_contain_text("Put it on your site or connect a channel")
    assert_accessible(page)
    # The header's regions: each name whole, no list marker drawn over the one before.
    regions = page.get_by_role("navigation", name="Regions").get_by_role("listitem")
    expect(regions).to_have_text(["US Central", "EU Frankfurt"])
    assert regions.evaluate_all("items => items.map(i => getComputedStyle(i).listStyleType)") == [
        "none",
        "none",
    ]

    # "Statistics" in the navigation: the statistics page, its totals and charts.
    navigation = page.get_by_role("navigation", name="Pages")
    navigation.get_by_role("link", name="Statistics").click()
    page.wait_for_url("**/dashboard/stats/dailystat/")
    expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
    totals = page.locator("#stats-totals")
    expect(totals.get_by_role("row").first).to_contain_text("Conversations")
    expect(totals.locator("td").first).to_have_text("3")
    expect(page.get_by_role("cell", name="Web chat", exact=True)).to_be_visible()
    assert_accessible(page)  # the breadcrumbs and the sidebar's groups too

    # Back home by the breadcrumbs; a step's link opens the page that does it.
    page.get_by_role("link", name="Home").click()
    page.wait_for_url("**/dashboard/")
    page.locator(".ct-checklist > li").nth(3).get_by_role("link", name="Connect a channel").click()
    page.wait_for_url("**/dashboard/messaging/channel/add/")
    expect(page.get_by_role("heading", name="Add channel")).to_be_visible()
