"""The web chat widget in a real browser, on the demo page, against a real server process.

A visitor opens the launcher from the keyboard, walks a flow with quick replies and a
validated email question (a wrong email first), reloads and finds the history; a host page
stylesheet that restyles ``div`` and ``button`` changes nothing inside the widget.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from conversations.models import Lead
from tests.factories import launched_bot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GREETING = "What can I do for you?"
ASK_EMAIL = "What's your email?"
RETRY = "That doesn't look like an email address. Please try again."
BYE = "Thanks, we'll write to ana@example.com."

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
    page.keyboard.press("Tab")
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(_widget_input(page)).to_be_focused()
    expect(page.locator("chattonic-widget .title")).to_have_text("Acme help")
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(GREETING)
    replies = page.locator("chattonic-widget .replies button.reply")
    expect(replies).to_have_text(["Prices", "Email me"])

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
    _say(page, "ana@example.com")
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(BYE)
    expect(page.locator("chattonic-widget .msg.in[data-pending]")).to_have_count(0)
    walked = _transcript(page)
    assert walked == [
        ("out", bot.welcome_text),
        ("out", GREETING),
        ("in", "Email me"),
        ("out", ASK_EMAIL),
        ("in", "ana at example dot com"),
        ("out", RETRY),
        ("in", "ana@example.com"),
        ("out", BYE),
    ]

    # A reload resumes the same conversation from the session kept in localStorage.
    page.reload()
    launcher.click()
    expect(page.locator("chattonic-widget .msg.out").last).to_contain_text(BYE)
    assert _transcript(page) == walked
    expect(replies).to_have_count(0)
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
    form.locator("input[name=name]").fill("Ana")
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_be_visible()  # an email or a phone is needed
    form.locator("input[name=email]").fill("ana@example.com")
    form.locator("button[type=submit]").click()
    expect(form).to_have_count(0)
    expect(page.locator("chattonic-widget .log")).to_contain_text("We will get back to you")
    lead = Lead.objects.for_tenant(tenant).get()
    assert (lead.source, lead.fields["email"]) == ("away_form", "ana@example.com")

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
