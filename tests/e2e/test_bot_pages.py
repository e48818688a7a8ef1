"""A tenant owner's bot pages in a real browser, through their visible controls only (clicks
and typing; no form is posted and no API called by hand): sign in, make a bot, publish it,
see it live in the widget, change it, publish again, roll back; allow a site's origin and see
the widget work on that site and nowhere else; axe-core finds nothing on the pages."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bots.models import Bot
from tests.e2e.conftest import assert_accessible, controls_off_screen
from tests.factories import MembershipFactory, launched_bot
from tests.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
HELLO_V1 = "Hello from the first version!"
HELLO_V2 = "Welcome to version two!"


def sign_in(page, username: str, then: str) -> None:
    page.goto(f"/dashboard/login/?next={then}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{then}")


def status_panel_fits(page, status: str) -> None:
    """The status panel reads as label / value rows: each value beside its label and inside
    the panel (the status sentence among them), and the page does not scroll sideways."""
    from playwright.sync_api import expect

    panel = page.get_by_role("region", name="Status")
    expect(panel.get_by_text(status)).to_be_visible()
    rows = panel.evaluate(
        """panel => [...panel.querySelectorAll("dt")].map(dt => {
            const dd = dt.nextElementSibling, box = panel.getBoundingClientRect();
            const label = dt.getBoundingClientRect(), value = dd.getBoundingClientRect();
            return {label: dt.textContent.trim(),
                    beside: value.top < label.bottom && label.top < value.bottom
                            && value.left >= label.right,
                    inside: value.right <= box.right + 1};
        })"""
    )
    assert [r["label"] for r in rows][:2] == ["Status", "Live version"]
    assert [r for r in rows if not (r["beside"] and r["inside"])] == []
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def widget_greets(new_context, url: str, greeting: str) -> None:
    """A new visitor (a new browser context: a new conversation) opens the chat on ``url``
    and the bot greets them with ``greeting``."""
    from playwright.sync_api import expect

    page = new_context().new_page()
    page.goto(url)
    page.get_by_role("button", name="Open chat").click()
    expect(page.get_by_text(greeting).first).to_be_visible()
    page.context.close()


def test_an_owner_makes_a_bot_publishes_it_changes_it_and_rolls_back(
    new_context, live_server_url, tenant, worker
):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    page = new_context().new_page()
    sign_in(page, owner.username, "/dashboard/bots/bot/")

    # A new bot: its name and its welcome text, typed into the add form.
    page.get_by_role("link", name="Add bot").click()
    page.get_by_role("link", name="Start from “Blank bot”").click()
    page.get_by_label("Name").fill("Shop helper")
    page.get_by_label("Welcome text").fill(HELLO_V1)
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    assert_accessible(page)

    # Publish it with the visible button, then launch it.
    page.get_by_label("Note for the new version").fill("First words")
    page.get_by_role("button", name="Save and publish").click()
    expect(page.get_by_text("Published version 1: training…")).to_be_visible()
    # The worker trains it; the bot's page follows, and says when it is live.
    expect(page.locator("#ct-live")).to_contain_text("Version 1, published", timeout=60_000)
    expect(page.get_by_text("The same as the live version.")).to_be_visible()
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_text("The bot is live.")).to_be_visible()
    status_panel_fits(page, "Launched: answering on your sites and channels.")
    bot = Bot.objects.get(tenant=tenant, name="Shop helper")
    demo = f"/demo/{bot.public_key}/"
    widget_greets(new_context, demo, HELLO_V1)

    # Change the greeting and publish again: a new visitor gets the new one.
    page.get_by_label("Welcome text").fill(HELLO_V2)
    page.get_by_role("button", name="Save and publish").click()
    expect(page.get_by_text("Published version 2")).to_be_visible()
    expect(page.locator("#ct-live")).to_contain_text("Version 2, published", timeout=60_000)
    expect(page.get_by_text("The same as the live version.")).to_be_visible()
    widget_greets(new_context, demo, HELLO_V2)

    # Roll back to the first version from the versions page.
    page.get_by_role("link", name="Versions", exact=True).click()
    expect(page.get_by_role("cell", name="Version 2 (live)")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_text("Rolled back to version 1")).to_be_visible()
    # The versions page does not follow the training: reloaded once version 3 is live.
    wait_for(
        lambda: Bot.objects.get(pk=bot.pk).published_version.number == 3,
        60,
        interval=0.2,
        what="the worker to train version 3",
    )
    page.reload()
    expect(page.get_by_role("cell", name="Version 3 (live)")).to_be_visible()
    widget_greets(new_context, demo, HELLO_V1)

    # The bot's page shows the first version's greeting again, and axe finds nothing.
    page.get_by_role("link", name="Shop helper").click()
    expect(page.get_by_label("Welcome text")).to_have_value(HELLO_V1)
    assert_accessible(page)


@contextmanager
def site(host: str):
    """A tiny web site on ``host`` (another origin than the platform's), serving one page
    whose body is set later (``page["html"]``). Yields (origin, page)."""
    page = {"html": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = page["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", page
    finally:
        server.shutdown()
        server.server_close()


def test_an_allowed_origin_shows_the_widget_and_another_is_refused(
    new_context, live_server_url, tenant
):
    from playwright.sync_api import expect

    from conversations.models import Conversation

    owner = MembershipFactory(tenant=tenant, role="owner").user
    bot = launched_bot(tenant=tenant, name="Shop helper", welcome_text=HELLO_V1)
    with site("127.0.0.2") as (shop, shop_page), site("127.0.0.3") as (other, other_page):
        page = new_context().new_page()
        sign_in(page, owner.username, "/dashboard/bots/bot/")
        page.get_by_role("link", name="Shop helper").click()

        # The embed code names the address the platform really answers at.
        embed = page.locator("#ct-embed-code").inner_text()
        assert embed == (
            f'<script src="{live_server_url}/static/chattonic/widget.js" '
            f'data-bot="{bot.public_key}" async></script>'
        )
        host_page = f"<!doctype html><html lang='en'><title>Shop</title><h1>Shop</h1>{embed}"
        shop_page["html"] = other_page["html"] = host_page

        # A new row, typed, saved.
        page.get_by_role("button", name="Add an origin").click()
        page.keyboard.type(shop)
        page.get_by_role("button", name="Save and continue editing").click()
        expect(page.get_by_text("was changed successfully")).to_be_visible()
        expect(page.get_by_label("Allowed origin 1", exact=True)).to_have_value(shop)
        assert Bot.objects.get(pk=bot.pk).allowed_origins == [shop]

        # On the allowed site the widget greets and answers.
        visitor = new_context().new_page()
        visitor.goto(shop)
        visitor.get_by_role("button", name="Open chat").click()
        expect(visitor.get_by_text(HELLO_V1).first).to_be_visible()
        box = visitor.get_by_role("textbox", name="Type a message…")
        box.fill("how much is it")
        box.press("Enter")
        expect(visitor.get_by_text("Plans start at $10.").first).to_be_visible()
        chats = Conversation.objects.filter(bot=bot).count()
        assert chats == 1

        # On a site that was not added, the socket is refused at its handshake.
        stranger = new_context().new_page()
        with stranger.expect_websocket() as refused_socket:
            stranger.goto(other)
            stranger.get_by_role("button", name="Open chat").click()
        socket = refused_socket.value
        if not socket.is_closed():
            socket.wait_for_event("close")
        expect(stranger.get_by_text(HELLO_V1)).to_have_count(0)
        assert Conversation.objects.filter(bot=bot).count() == chats


def test_on_a_phone_a_bots_page_has_every_control_in_reach(new_context, tenant):
    """At 375 x 812: the bot's page (its settings, its opening hours a day a row) scrolls
    only downwards, and no button or field is cut at the screen's edge (the hours' Remove
    read "Rem"); axe-core finds nothing."""
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    launched_bot(tenant=tenant, name="Shop helper")
    page = new_context(viewport={"width": 375, "height": 812}, is_mobile=True).new_page()
    sign_in(page, owner.username, "/dashboard/bots/bot/")
    page.get_by_role("link", name="Shop helper").click()
    expect(page.get_by_role("group", name="Opening hours")).to_be_visible()
    monday = page.get_by_role("group", name="Monday")
    if not monday.get_by_role("button", name="Remove these hours of Monday").count():
        monday.get_by_role("button", name="Add hours on Monday").click()
    expect(monday.get_by_role("button", name="Remove these hours of Monday").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert controls_off_screen(page) == []
    assert_accessible(page)

    # Open round the clock: "All day", not a range a browser shows as 12:00 AM to 12:00 AM.
    sunday = page.get_by_role("group", name="Sunday")
    expect(sunday.get_by_role("checkbox", name="All day")).to_be_hidden()  # closed
    sunday.get_by_role("checkbox", name="Open").check()
    sunday.get_by_role("checkbox", name="All day").check()
    expect(sunday.get_by_label("From")).to_be_hidden()
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    sunday = page.get_by_role("group", name="Sunday")
    expect(sunday.get_by_role("checkbox", name="All day")).to_be_checked()
    expect(sunday.get_by_label("From")).to_be_hidden()
    assert Bot.objects.get(name="Shop helper").business_hours["sun"] == [["00:00", "24:00"]]


def test_a_wide_flows_diagram_fits_a_phone_and_shows_its_actual_size_on_demand(new_context, tenant):
    """At 375 px the diagram ran off the page's edge with nothing to say that it scrolls: it
    now fits the window, and "Actual size" shows it life-size, saying it scrolls sideways."""
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    launched_bot(tenant=tenant, name="Shop helper")
    page = new_context(viewport={"width": 375, "height": 812}, is_mobile=True).new_page()
    sign_in(page, owner.username, "/dashboard/bots/bot/")
    page.get_by_role("link", name="Shop helper").click()
    page.get_by_role("link", name="Diagram", exact=True).click()
    box = page.get_by_role("region", name="The flow's diagram")
    flow = page.get_by_role("img", name="Flow diagram")
    expect(flow).to_be_visible()
    assert box.evaluate("b => b.scrollWidth <= b.clientWidth"), "fitted"
    assert flow.bounding_box()["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")

    actual = page.get_by_role("button", name="Actual size")
    actual.click()
    expect(actual).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_text("Wider than the window: scroll it sideways")).to_be_visible()
    assert box.evaluate("b => b.scrollWidth > b.clientWidth"), "scrolls at actual size"
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")  # the box does
    assert_accessible(page)
    actual.click()
    expect(page.get_by_text("Wider than the window")).to_be_hidden()
