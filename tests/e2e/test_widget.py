"""The web chat widget in a real browser, on the demo page, against a real server process.

A visitor opens the launcher from the keyboard, walks a flow with quick replies and a
validated email question (a wrong email first), reloads and finds the history; a host page
stylesheet that restyles ``div`` and ``button`` changes nothing inside the widget. On a phone
the chat fills the window and keeps the focus; a connection cut by a proxy, the browser going
offline and a hanging attempt all come back at once with every message once; a site the bot
does not allow shows the chat unavailable and names its origin in the console. The pre-chat
form closes the message box until it is done; both forms word their errors in the page's
language; an answered or stale away form does not come back on a reload; a reopened chat
shows its newest message.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conversations.models import Message
from leads.models import Lead
from tests.e2e.conftest import assert_accessible
from tests.e2e.proxy import CuttableProxy
from tests.factories import launched_bot
from tests.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GREETING = "What can I do for you?"
ASK_EMAIL = "What's your email?"
RETRY = "That doesn't look like an email address. Please try again."
BYE = "Thanks, we'll write to ana@example.com."
PRICES = "Plans start at $10."

# A host page at its worst: every div and button restyled (with !important), and the
# inheritable properties of the page changed at the root.
HOSTILE_CSS = """
html, body {
  font: italic 700 27px/3 "Courier New", monospace !important; color: #f0f !important;
  letter-spacing: 5px !important; word-spacing: 11px !important;
  text-transform: uppercase !important; text-align: right !important;
  direction: rtl !important; writing-mode: vertical-rl !important;
  visibility: visible !important; cursor: wait !important;
}
div, button {
  all: unset !important; display: inline !important; box-sizing: content-box !important;
  position: static !important; width: 13px !important; height: 13px !important;
  padding: 31px !important; margin: 17px !important; border: 7px dotted #0f0 !important;
  border-radius: 0 !important; background: #ff0 !important; color: red !important;
  font: italic 30px/4 serif !important; opacity: .5 !important; transform: rotate(3deg) !important;
}
"""

PROPERTIES = [
    "display", "position", "visibility", "opacity", "transform", "box-sizing", "width",
    "height", "padding-top", "padding-right", "padding-bottom", "padding-left", "margin-top",
    "margin-right", "margin-bottom", "margin-left", "border-top-width", "border-top-style",
    "border-top-color", "border-radius", "background-color", "color", "font-family",
    "font-size", "font-style", "font-weight", "line-height", "letter-spacing", "word-spacing",
    "text-transform", "text-align", "cursor", "flex-direction", "direction", "writing-mode",
]  # fmt: skip

# Computed styles of the widget's parts, without and then with the hostile stylesheet, in one
# synchronous task (so no socket frame changes the widget between the two).
COMPARE_STYLES = """([css, properties]) => {
  const host = document.querySelector("chattonic-widget");
  const root = host.shadowRoot;
  const parts = [".ct", ".launcher", ".panel", ".header", ".title", ".close", ".log", ".msg.out",
                 ".msg.out .meta", ".replies", ".reply", ".typing", ".composer", ".input", ".send"];
  const probe = document.createElement("button");
  probe.textContent = "page button";
  document.body.appendChild(probe);
  const snapshot = () => {
    const result = {};
    for (const [name, element] of [["host", host], ...parts.map(p => [p, root.querySelector(p)])]) {
      if (!element) { result[name] = null; continue; }
      const style = getComputedStyle(element);
      const box = element.getBoundingClientRect();
      result[name] = Object.fromEntries(properties.map(p => [p, style.getPropertyValue(p)]));
      result[name]["box"] = [box.width, box.height].join("x");
    }
    result.probe = getComputedStyle(probe).color;
    return result;
  };
  const before = snapshot();
  const sheet = document.createElement("style");
  sheet.textContent = css;
  document.head.appendChild(sheet);
  const after = snapshot();
  sheet.remove();
  probe.remove();
  return {before, after};
}"""


def _widget_input(page):
    return page.locator("chattonic-widget textarea.input")


def _say(page, text: str) -> None:
    box = _widget_input(page)
    box.fill(text)
    box.press("Enter")


def _transcript(page) -> list[tuple[str, str]]:
    """(direction, text) of every message in the widget's log, without times and receipts."""
    messages = page.evaluate(
        """() => [...document.querySelector("chattonic-widget").shadowRoot
                 .querySelectorAll(".log .msg")].map(node => {
            const copy = node.cloneNode(true);
            copy.querySelectorAll(".meta, .who").forEach(part => part.remove());
            return [node.classList.contains("in") ? "in" : "out", copy.textContent];
        })"""
    )
    return [tuple(message) for message in messages]


def test_widget_flow_keyboard_history_and_host_css(new_context, tenant):
    from playwright.sync_api import expect

    bot = launched_bot(tenant=tenant, title="Acme help")
    page = new_context().new_page()
    page.goto(f"/demo/{bot.public_key}/")

    # Keyboard: the launcher is the first stop of the tab order; Enter opens the chat and
    # puts the focus in the message box.
    launcher = page.locator("chattonic-widget button.launcher")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    # A drawn picture, white on the theme colour, not an emoji (an empty box without an emoji
    # font, as on this machine).
    expect(launcher).to_have_text("")
    chat_icon = launcher.locator("svg[data-icon=chat]")
    expect(chat_icon).to_be_visible()
    assert chat_icon.evaluate("e => getComputedStyle(e.firstChild).fill") == "rgb(255, 255, 255)"
    page.keyboard.press("Tab")
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(launcher.locator("svg[data-icon=close]")).to_be_visible()
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(_widget_input(page)).to_be_focused()
    expect(page.locator("chattonic-widget .title")).to_have_text("Acme help")
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(GREETING)
    replies = page.locator("chattonic-widget .replies button.reply")
    expect(replies).to_have_text(["Prices", "Email me"])
    assert_accessible(page)  # WCAG 2.1 A and AA, the chat open with its quick replies

    # The host page's stylesheet reaches the page's own buttons, and nothing in the widget.
    styles = page.evaluate(COMPARE_STYLES, [HOSTILE_CSS, PROPERTIES])
    assert styles["before"]["probe"] != styles["after"]["probe"] == "rgb(255, 0, 0)"
    for part, before in styles["before"].items():
        if part == "probe":
            continue
        assert before is not None, f"the widget has no {part}"
        changed = {
            name: (value, styles["after"][part][name])
            for name, value in before.items()
            if styles["after"][part][name] != value
        }
        assert not changed, f"the host page's CSS changed the widget's {part}: {changed}"

    # The rest of the visit happens with that stylesheet on the page.
    page.add_style_tag(content=HOSTILE_CSS)
    replies.filter(has_text="Email me").click()
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(ASK_EMAIL)
    expect(replies).to_have_count(0)
    _say(page, "ana at example dot com")
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(RETRY)
    expect(page.locator("chattonic-widget .msg.in[data-pending]")).to_have_count(0)
    walked = _transcript(page)
    assert walked == [
        ("out", bot.welcome_text),
        ("out", GREETING),
        ("in", "Email me"),
        ("out", ASK_EMAIL),
        ("in", "ana at example dot com"),
        ("out", RETRY),
    ]

    # A reload resumes the same conversation from the session kept in localStorage.
    page.reload()
    launcher.click()
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(RETRY)
    assert _transcript(page) == walked
    expect(replies).to_have_count(0)
    _say(page, "ana@example.com")
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(BYE)
    expect(page.locator("chattonic-widget .msg.in[data-pending]")).to_have_count(0)
    assert _transcript(page) == [*walked, ("in", "ana@example.com"), ("out", BYE)]
    # Escape closes the chat and gives the focus back to the launcher.
    expect(_widget_input(page)).to_be_focused()
    page.keyboard.press("Escape")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()

    assert list(Lead.objects.for_tenant(tenant).values_list("fields", flat=True)) == [
        {"email": "ana@example.com"}
    ]


def resolve_and_close(conversation, actor):
    from django.db import connection

    from agents.services import conversation_resolve

    try:
        conversation_resolve(conversation=conversation, actor=actor)
    finally:
        connection.close()


def claim_and_close(conversation, agent):
    from django.db import connection

    from agents.services import conversation_claim

    try:
        conversation_claim(conversation=conversation, agent=agent)
    finally:
        connection.close()


def transfer_to_team_and_close(conversation, agent, team):
    from django.db import connection

    from agents.services import conversation_transfer

    try:
        conversation_transfer(conversation=conversation, actor=agent, to_team=team)
    finally:
        connection.close()


def test_the_away_form_goes_when_an_agent_joins_after_all(new_context, tenant):
    """An agent claims the conversation while the away form waits: the form (which the server
    no longer takes) leaves, and the visitor reads who joined (its Send sat beside the chat's
    own, under "Maya joined the conversation")."""
    from playwright.sync_api import expect

    from conversations.models import Conversation
    from tests.factories import AgentProfileFactory, TeamFactory

    bot = launched_bot(tenant=tenant)
    page = new_context().new_page()
    page.goto(f"/demo/{bot.public_key}/")
    page.locator("chattonic-widget button.launcher").click()
    _say(page, "talk to a person")
    form = page.locator("chattonic-widget form.away-form")
    expect(form).to_be_visible()

    maya = AgentProfileFactory(tenant=tenant).user
    maya.first_name = "Maya"
    maya.save(update_fields=["first_name"])
    conversation = Conversation.objects.for_tenant(tenant).get()
    with ThreadPoolExecutor(1) as other_thread:  # see test_away_form_then_rating...
        other_thread.submit(claim_and_close, conversation, maya).result()
    expect(page.locator("chattonic-widget .notice").last).to_have_text(
        "Maya joined the conversation"
    )
    expect(form).to_have_count(0)

    # Nor does a reload bring it back under the away message (it did, blank, and sending it
    # got "Leaving your details is for when nobody can answer.").
    page.reload()
    page.locator("chattonic-widget button.launcher").click()
    expect(page.locator("chattonic-widget .log")).to_contain_text(bot.away_message)
    expect(form).to_have_count(0)

    # Passed on to a team's queue: the visitor is told (they believed Maya still there).
    billing = TeamFactory(tenant=tenant, name="Billing")
    with ThreadPoolExecutor(1) as other_thread:
        other_thread.submit(transfer_to_team_and_close, conversation, maya, billing).result()
    expect(page.locator("chattonic-widget .notice").last).to_have_text(
        "You were passed on to another team: someone will be with you soon"
    )


def test_away_form_then_rating_after_the_agent_resolves(new_context, tenant):
    """Nobody online: the away message comes with a form whose details become a lead; once an
    agent resolves the conversation, the widget asks for a rating from 1 to 5."""
    from playwright.sync_api import expect

    from conversations.models import Conversation
    from tests.factories import MembershipFactory

    bot = launched_bot(tenant=tenant)
    page = new_context().new_page()
    page.goto(f"/demo/{bot.public_key}/")
    page.locator("chattonic-widget button.launcher").click()
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(GREETING)
    _say(page, "talk to a person")

    form = page.locator("chattonic-widget form.away-form")
    expect(form).to_be_visible()
    # Its button reads whole: tall enough, its word inside it (it was 14 px high, "Send"
    # spilling out of it).
    button = form.locator("button[type=submit]")
    box = button.bounding_box()
    assert box["height"] >= 32, box
    assert button.evaluate(
        "b => b.scrollWidth <= b.clientWidth && b.scrollHeight <= b.clientHeight"
    )
    form.locator("input[name=name]").fill("Ana")
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_be_visible()  # an email or a phone is needed
    form.locator("input[name=email]").fill("ana@example.com")
    form.locator("button[type=submit]").click()
    expect(form).to_have_count(0)
    thanks = page.locator("chattonic-widget .notice", has_text="We will get back to you")
    expect(thanks).to_have_count(1)
    lead = Lead.objects.for_tenant(tenant).get()
    assert (lead.source, lead.fields["email"]) == ("away_form", "ana@example.com")

    # A reload shows it answered (the thanks under the away message), not a blank form.
    page.reload()
    page.locator("chattonic-widget button.launcher").click()
    expect(thanks).to_have_count(1)
    expect(form).to_have_count(0)
    assert bot.away_message in thanks.evaluate("n => n.previousElementSibling.textContent")

    owner = MembershipFactory(tenant=tenant, role="owner").user
    conversation = Conversation.objects.for_tenant(tenant).get()
    # An agent's resolve, off Playwright's thread (whose running loop forbids async_to_sync,
    # which the broadcast after the commit uses).
    with ThreadPoolExecutor(1) as other_thread:
        other_thread.submit(resolve_and_close, conversation, owner).result()
    rating = page.locator("chattonic-widget .rating button.reply")
    expect(rating).to_have_count(5)
    rating.nth(3).click()
    expect(page.locator("chattonic-widget .log")).to_contain_text("Thanks for your rating!")
    conversation.refresh_from_db()
    assert conversation.csat == 4

    # Back another day: the resolved chat is there to read, above a new one and its greeting.
    page.reload()
    page.locator("chattonic-widget button.launcher").click()
    divider = page.locator("chattonic-widget .notice.earlier")
    expect(divider).to_have_text("Your earlier conversation ended here")
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(GREETING)
    expect(form).to_have_count(0)  # the earlier conversation's form is of no more use
    parts = page.locator("chattonic-widget .log > *").evaluate_all(
        "nodes => nodes.map(n => n.className + ': ' + n.textContent)"
    )
    ended = next(i for i, part in enumerate(parts) if "notice earlier" in part)
    assert any("talk to a person" in part for part in parts[:ended]), parts
    assert any(GREETING in part for part in parts[ended + 1 :]), parts
    assert Conversation.objects.for_tenant(tenant).count() == 2
    assert_accessible(page, "chattonic-widget")


def test_the_pre_chat_form_is_asked_once(new_context, tenant):
    """A bot with the pre-chat form: a new visitor fills it in and chats; back after the chat
    was resolved, they read it above the new greeting and are not asked again."""
    from playwright.sync_api import expect

    from conversations.models import Conversation
    from tests.factories import MembershipFactory

    bot = launched_bot(tenant=tenant, prechat_form=True)
    page = new_context().new_page()
    page.goto(f"/demo/{bot.public_key}/")
    page.locator("chattonic-widget button.launcher").click()
    form = page.locator("chattonic-widget form.form")
    # Until the form is done the message box is closed, and says why (a message sent before
    # it started the chat without the details, as the answer to the flow's first question).
    box, send = _widget_input(page), page.locator("chattonic-widget .composer .send")
    expect(box).to_be_disabled()
    expect(send).to_be_disabled()
    expect(box).to_have_attribute("placeholder", "Fill in the form above to start the chat.")
    # Sent empty, it says what to do (it showed the consent's own label as the error).
    form.get_by_role("button", name="Start chat").click()
    consent = form.get_by_label("I agree that my data is used to answer me.")
    expect(form.get_by_role("alert")).to_have_text(
        "To start the chat, tick the box to agree that your data is used to answer you."
    )
    expect(consent).to_be_focused()
    form.get_by_label("Your name").fill("Ana")
    form.get_by_label("Your email").fill("ana@example.com")
    consent.check()
    form.get_by_role("button", name="Start chat").click()
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(GREETING)
    expect(form).to_have_count(0)
    expect(box).to_be_enabled()
    expect(box).to_have_attribute("placeholder", "Type a message…")
    _say(page, "how much is it")
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(PRICES)

    owner = MembershipFactory(tenant=tenant, role="owner").user
    conversation = Conversation.objects.for_tenant(tenant).get()
    with ThreadPoolExecutor(1) as other_thread:
        other_thread.submit(resolve_and_close, conversation, owner).result()
    expect(page.locator("chattonic-widget .rating button.reply")).to_have_count(5)

    page.reload()
    page.locator("chattonic-widget button.launcher").click()
    expect(page.locator("chattonic-widget .notice.earlier")).to_be_visible()
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(GREETING)
    expect(page.locator("chattonic-widget form.form")).to_have_count(0)
    assert Conversation.objects.for_tenant(tenant).count() == 2


def test_the_forms_speak_the_widgets_language(new_context, tenant):
    """A Spanish page (``<html lang="es">``): what the pre-chat and away forms say of a
    mistake is in Spanish, whether the widget finds it (no consent) or the server (an email
    it does not take, neither an email nor a phone), and so is the thanks."""
    from playwright.sync_api import expect

    from conversations.models import Conversation

    bot = launched_bot(tenant=tenant, prechat_form=True)
    page = new_context().new_page()
    page.goto(f"/demo/{bot.public_key}/?lang=es")
    assert page.evaluate("document.documentElement.lang") == "es"
    page.locator("chattonic-widget button.launcher").click()
    prechat = page.locator("chattonic-widget form.form")
    expect(_widget_input(page)).to_have_attribute(
        "placeholder", "Completa el formulario de arriba para iniciar el chat."
    )
    start = prechat.get_by_role("button", name="Iniciar chat")
    start.click()
    expect(prechat.get_by_role("alert")).to_have_text(
        "Para iniciar el chat, marca la casilla y acepta que usemos tus datos para responderte."
    )
    # An address the browser would take and the server does not: the form stays, and says so.
    email = prechat.get_by_label("Tu correo")
    email.fill("ana@example")
    prechat.get_by_label("Acepto que usen mis datos para responderme.").check()
    start.click()
    expect(prechat.get_by_role("alert")).to_have_text("Escribe un correo electrónico válido.")
    expect(email).to_be_focused()
    assert not Conversation.objects.for_tenant(tenant).exists()
    email.fill("ana@example.com")
    start.click()
    expect(prechat).to_have_count(0)
    expect(_widget_input(page)).to_be_enabled()

    _say(page, "talk to a person")
    away = page.locator("chattonic-widget form.away-form")
    send = away.get_by_role("button", name="Enviar")
    send.click()
    expect(away.get_by_role("alert")).to_have_text("Déjanos un correo o un teléfono.")
    assert_accessible(page, "chattonic-widget")  # the form with its error
    away.get_by_label("Tu correo").fill("ana@")
    send.click()
    expect(away.get_by_role("alert")).to_have_text("Escribe un correo electrónico válido.")
    away.get_by_label("Tu correo").fill("ana@example.com")
    send.click()
    expect(away).to_have_count(0)
    expect(page.locator("chattonic-widget .log")).to_contain_text(
        "¡Gracias! Te responderemos pronto."
    )


# The widget's log: how far it is scrolled, and how far it can be.
LOG_SCROLL = """() => { const log = document.querySelector("chattonic-widget").shadowRoot
                                  .querySelector(".log");
                       return [log.scrollTop, log.scrollHeight - log.clientHeight]; }"""


def test_a_reopened_chat_shows_its_newest_message(new_context, tenant):
    """After a reload the history is scrolled to its newest message, not its oldest, on a
    desktop and on a phone (the history came while the panel was hidden, and the log kept
    scrollTop 0 when it opened)."""
    from playwright.sync_api import expect

    bot = launched_bot(tenant=tenant)
    desktop = new_context()
    page = desktop.new_page()
    page.goto(f"/demo/{bot.public_key}/")
    page.locator("chattonic-widget button.launcher").click()
    replies = page.locator("chattonic-widget .msg.out")
    expect(replies.last).to_contain_text(GREETING)
    for n in range(1, 7):  # a history taller than the phone's window
        _say(page, f"how much is it {n}")
        expect(replies).to_have_count(2 + n)
    messages = page.locator("chattonic-widget .msg")
    count = messages.count()

    phone = new_context(**PHONE, storage_state=desktop.storage_state())
    for reopened in (page, phone.new_page()):
        reopened.goto(f"/demo/{bot.public_key}/")
        messages = reopened.locator("chattonic-widget .msg")
        expect(messages).to_have_count(count)  # the history came, the chat still closed
        reopened.locator("chattonic-widget button.launcher").click()
        expect(messages.last).to_be_in_viewport()
        top, bottom = reopened.evaluate(LOG_SCROLL)
        assert bottom > 0 and abs(top - bottom) <= 1, (top, bottom)


# --- A phone ----------------------------------------------------------------------------------

PHONE = {"viewport": {"width": 375, "height": 667}, "is_mobile": True, "has_touch": True}

# The open chat's geometry on the page as it is now.
LAYOUT = """() => {
  const root = document.querySelector("chattonic-widget").shadowRoot;
  const box = node => { const r = node.getBoundingClientRect();
                        return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
  const panel = root.querySelector(".panel"), input = root.querySelector("textarea.input");
  const send = root.querySelector(".send"), sendBox = box(send);
  return {
    page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
    window: [innerWidth, innerHeight],
    panel: box(panel), panelWidths: [panel.scrollWidth, panel.clientWidth],
    inputFont: getComputedStyle(input).fontSize,
    // Nothing (such as the launcher) lies over the send button.
    sendOnTop: root.elementFromPoint((sendBox.left + sendBox.right) / 2,
                                     (sendBox.top + sendBox.bottom) / 2) === send,
    bubbles: [...root.querySelectorAll(".log .msg")].map(node => ({
      text: node.textContent, box: box(node),
      heights: [node.scrollHeight, node.clientHeight], widths: [node.scrollWidth, node.clientWidth],
    })),
  };
}"""


def test_on_a_phone_the_chat_fills_the_window_and_keeps_the_focus(new_context, tenant):
    """375 x 667: the open chat covers the window without scrolling sideways, its inputs are
    16 px (smaller ones make iOS zoom in), every bubble shows all its text; it passes axe-core
    with quick replies showing; a pressed quick reply leaves the focus in the message box, and
    Escape closes the chat and gives the focus to the launcher, even when the focus was lost."""
    from playwright.sync_api import expect

    bot = launched_bot(
        tenant=tenant,
        welcome_text="Welcome to Acme! "
        + "We answer questions about orders, prices, " * 4
        + "and https://acme.example.com/a-very-long-address-that-has-no-space-to-break-at",
    )
    page = new_context(**PHONE).new_page()
    page.goto(f"/demo/{bot.public_key}/")
    launcher = page.locator("chattonic-widget button.launcher")
    launcher.tap()
    replies = page.locator("chattonic-widget .replies button.reply")
    expect(replies).to_have_text(["Prices", "Email me"])

    layout = page.evaluate(LAYOUT)
    assert layout["window"] == [375, 667]
    scroll_width, client_width = layout["page"]
    assert scroll_width <= client_width, layout["page"]
    assert layout["panel"] == {"left": 0, "top": 0, "right": 375, "bottom": 667}
    assert layout["panelWidths"][0] <= layout["panelWidths"][1]
    assert layout["inputFont"] == "16px"
    assert layout["sendOnTop"]
    assert [b["text"][: len(GREETING)] for b in layout["bubbles"]] == [
        bot.welcome_text[: len(GREETING)],
        GREETING,
    ]
    for bubble in layout["bubbles"]:
        assert bubble["heights"][0] <= bubble["heights"][1], bubble
        assert bubble["widths"][0] <= bubble["widths"][1], bubble
        assert bubble["box"]["left"] >= 0 and bubble["box"]["right"] <= 375, bubble
    assert_accessible(page)

    # A quick reply: the button goes, the focus stays in the chat, in the message box.
    replies.filter(has_text="Prices").tap()
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text("Plans start at $10.")
    expect(_widget_input(page)).to_be_focused()
    page.keyboard.press("Escape")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()

    # Open again, tap the chat's title (nothing there takes the focus: it falls to the page's
    # body), and Escape still closes the chat.
    launcher.tap()
    expect(_widget_input(page)).to_be_focused()
    page.locator("chattonic-widget .title").tap()
    expect(_widget_input(page)).not_to_be_focused()
    page.keyboard.press("Escape")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()


# --- Connection lost and back -----------------------------------------------------------------

NO_PENDING = """() => !document.querySelector("chattonic-widget").shadowRoot
                  .querySelector(".msg.in[data-pending]")"""
CONNECTED = """() => { const root = document.querySelector("chattonic-widget").shadowRoot;
                       return root.querySelector(".retry").hidden
                              && root.querySelector(".state").textContent === ""; }"""


def _seconds_until(page, condition: str, since: float) -> float:
    page.wait_for_function(condition, polling=20)
    return time.monotonic() - since


def test_a_dropped_connection_is_back_at_once_with_nothing_lost_or_doubled(
    new_context, tenant, live_server_url
):
    """Through a proxy that resets the connections as a network does: a message typed while
    cut is sent within 2 s of the network's return; going offline and online reconnects at
    once; Retry gives up an attempt that hangs. Every message is stored and shown once."""
    from playwright.sync_api import expect

    bot = launched_bot(tenant=tenant)
    with CuttableProxy(int(live_server_url.rsplit(":", 1)[1])) as proxy:
        context = new_context(base_url=proxy.url)
        page = context.new_page()
        page.goto(f"/demo/{bot.public_key}/")
        page.locator("chattonic-widget button.launcher").click()
        expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(GREETING)
        state = page.locator("chattonic-widget .state")
        retry = page.locator("chattonic-widget button.retry")
        pending = page.locator("chattonic-widget .msg.in[data-pending]")
        _say(page, "prices")
        expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(PRICES)

        # The connection is reset; the visitor writes meanwhile; the network comes back.
        proxy.cut()
        expect(state).to_have_text("Reconnecting…")
        expect(retry).to_be_visible()
        _say(page, "how much is it")
        expect(pending).to_have_count(1)
        restored = time.monotonic()
        proxy.restore()
        assert _seconds_until(page, NO_PENDING, restored) < 2
        expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(PRICES)
        expect(retry).to_be_hidden()

        # The browser goes offline (the widget drops its socket: it is dead, whether the
        # browser noticed or not) and waits for "online" rather than for its backoff.
        context.set_offline(True)
        expect(state).to_have_text("Reconnecting…")
        _say(page, "what does it cost")
        expect(pending).to_have_count(1)
        online = time.monotonic()
        context.set_offline(False)
        assert _seconds_until(page, NO_PENDING, online) < 2

        # An attempt that hangs (packets dropped): Retry gives it up and tries again.
        proxy.hold()
        wait_for(lambda: proxy.accepted["hold"] >= 1, what="the widget's attempt to reconnect")
        proxy.restore()
        expect(state).to_have_text("Reconnecting…")
        pressed = time.monotonic()
        retry.click()
        assert _seconds_until(page, CONNECTED, pressed) < 2
        expect(_widget_input(page)).to_be_focused()  # the pressed Retry is gone
        _say(page, "pricing plans")
        expect(page.locator("chattonic-widget .msg.out")).to_have_count(6)
        expect(pending).to_have_count(0)

        stored = list(
            Message.objects.for_tenant(tenant).order_by("pk").values_list("direction", "text")
        )
        inbound = [text for direction, text in stored if direction == "in"]
        assert inbound == ["prices", "how much is it", "what does it cost", "pricing plans"]
        assert _transcript(page) == stored


# --- A site the bot does not allow ------------------------------------------------------------


@contextmanager
def _one_page_site(address: str, html: str):
    """A web site of one page, on ``address``, for the length of the block."""

    class OnePage(BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((address, 0), OnePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_site_the_bot_does_not_allow_shows_the_chat_unavailable_and_tells_its_owner(
    new_context, tenant, live_server_url
):
    """A page of another origin embeds the widget: the visitor reads that the chat is not
    available, the widget stops trying, and the console names the origin to allow."""
    from playwright.sync_api import expect

    from conversations.models import Conversation

    bot = launched_bot(tenant=tenant, allowed_origins=["https://shop.example.com"])
    snippet = (
        f'<script src="{live_server_url}/static/chattonic/widget.js" data-bot="{bot.public_key}"'
        " async></script>"
    )
    page = new_context().new_page()
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.clock.install()  # time runs, and can be sped up below
    # Another loopback address: not one of the platform's hosts (and a page on a public
    # address may not load a script from a loopback one).
    with _one_page_site("127.0.0.2", f'<!doctype html><html lang="en">{snippet}') as shop:
        site = f"http://127.0.0.2:{shop.server_port}"
        with page.expect_console_message(lambda m: "Chat-Tonic" in m.text) as logged:
            page.goto(f"{site}/")
    assert logged.value.type == "error"
    assert f"origin {site} may not open this chat" in logged.value.text
    assert "Allowed origins" in logged.value.text

    page.locator("chattonic-widget button.launcher").click()
    state = page.locator("chattonic-widget .state")
    expect(state).to_have_text("Chat unavailable")
    expect(page.locator("chattonic-widget .log")).to_contain_text(
        "This chat is not available right now."
    )
    expect(_widget_input(page)).to_be_disabled()
    expect(page.locator("chattonic-widget button.retry")).to_be_hidden()

    # A minute later (every timer the widget may have set has fired), still one socket: a new
    # attempt would also have shown "Reconnecting…".
    page.clock.run_for(60_000)
    expect(state).to_have_text("Chat unavailable")
    assert len(sockets) == 1
    assert sockets[0].is_closed()
    assert not Conversation.objects.for_tenant(tenant).exists()
