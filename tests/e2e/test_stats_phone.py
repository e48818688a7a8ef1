"""The statistics page on a phone, as an owner reads it there: the page does not scroll
sideways, each chart's words are drawn at least 9 pixels high (the desktop's drawing, shrunk
to the phone, drew them 5 pixels high), and no chart's legend covers its values (it sat over
the 100 % points), on the phone and on a desktop; axe-core finds nothing."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from stats.services import stats_rebuild
from tests.e2e.conftest import assert_accessible
from tests.e2e.test_bot_pages import sign_in
from tests.factories import ConversationFactory, MembershipFactory, launched_bot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_statistics_read_on_a_phone(new_context, tenant):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    bot = launched_bot(tenant=tenant, name="Shop helper")
    now = timezone.now()
    for days_ago in range(6):
        for _ in range(days_ago + 1):
            ConversationFactory(tenant=tenant, bot=bot, created_at=now - timedelta(days=days_ago))
    today = now.astimezone(UTC).date()
    stats_rebuild(tenant_id=tenant.pk, start=today - timedelta(days=7), end=today)

    page = new_context(viewport={"width": 375, "height": 812}, is_mobile=True).new_page()
    sign_in(page, owner.username, "/dashboard/")
    page.get_by_role("link", name="Statistics").first.click()
    expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
    # The last six days, each with conversations (all contained: the 100 % line runs from
    # one side to the other, under wherever a legend could be).
    page.get_by_label("Start").fill((today - timedelta(days=5)).isoformat())
    page.get_by_label("End").fill(today.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#stats-totals td").first).to_have_text("21")
    # No agent answered yet: a dash, not "— s / — s" (a unit with no number).
    response_times = page.locator("#stats-totals tr").nth(3).locator("td")
    expect(response_times).to_have_text(["—", "—"])
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    _assert_charts_readable(page, expect, smallest_px=9)
    assert_accessible(page)

    page.set_viewport_size({"width": 1280, "height": 900})
    _assert_charts_readable(page, expect, smallest_px=9)


TITLES = [
    "Conversations per day",
    "Messages in and out per day",
    "Contained and handoff rates (%)",
    "Leads per day",
]


def _assert_charts_readable(page, expect, smallest_px: float) -> None:
    for title in TITLES:
        chart = page.get_by_role("img", name=title)  # the drawing shown: one
        expect(chart).to_be_visible()
        boxes = chart.evaluate(
            """svg => {
                const box = e => { const r = e.getBoundingClientRect();
                                   return [r.left, r.top, r.right, r.bottom]; };
                return {
                    svg: box(svg),
                    texts: [...svg.querySelectorAll("text")].map(t => [t.textContent, box(t)]),
                    legend: [...svg.querySelectorAll(".ct-legend")].map(box),
                    points: [...svg.querySelectorAll("circle, rect")].map(box),
                };
            }"""
        )
        heights = {text: b[3] - b[1] for text, b in boxes["texts"]}
        assert min(heights.values()) >= smallest_px, (title, heights)
        for _, b in boxes["texts"]:  # inside the chart, not cut off
            assert boxes["svg"][0] <= b[0] and b[2] <= boxes["svg"][2] + 0.5, (title, b)
        for number, legend in enumerate(boxes["legend"]):
            assert not any(_overlap(legend, point) for point in boxes["points"]), title
            assert not any(_overlap(legend, other) for other in boxes["legend"][number + 1 :])
    # The line charts have legends; both names are there.
    assert page.get_by_role("img", name=TITLES[2]).locator(".ct-legend").count() == 2


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
