"""A visitor (the demo page) and an agent (the console) in two browser contexts, live.

Both drive the pages through their visible controls only: the visitor types in the widget,
the agent clicks and types in the console. Nothing is posted or sent by hand.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from agents import realtime as agents_realtime
from agents.models import AgentProfile, HandoffEvent
from chattonic.tenancy.models import Membership, Tenant
from conversations.models import Conversation, Message
from tests.e2e.conftest import assert_accessible
from tests.factories import (
    AgentProfileFactory,
    CannedResponseFactory,
    MembershipFactory,
    launched_bot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # the UserFactory's
ALWAYS_OPEN = {
    day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}
GREETING = "What can I do for you?"
HANDOFF = "I'm connecting you with a person from our team."
NOTE = "VIP customer: offer the express shipping"
PRICES = "Plans start at $10."

# Wraps the page's Notification and audio playing, so that the test sees what the console
# did (the browser itself shows nothing in a headless run).
OBSERVE_ALERTS = """
window.notificationsShown = [];
window.permissionRequests = 0;
window.soundsPlayed = [];
if (window.Notification) {
  const Real = window.Notification;
  const Observed = function (title, options) {
    window.notificationsShown.push({title: title, body: (options || {}).body || ""});
    return new Real(title, options);
  };
  Object.defineProperty(Observed, "permission", {get: () => Real.permission});
  Observed.requestPermission = (...args) => {
    window.permissionRequests += 1;
    return Real.requestPermission(...args);
  };
  window.Notification = Observed;
}
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  window.soundsPlayed.push(this.currentSrc || this.src);
  return play.call(this);
};
"""


def _widget(page, selector: str):
    return page.locator(f"chattonic-widget {selector}")


def _say(page, text: str) -> None:
    box = _widget(page, "textarea.input")
    box.fill(text)
    box.press("Enter")


def _agent(tenant, first_name="Maya", last_name="Lopez"):
    member = MembershipFactory(tenant=tenant, role=Membership.Role.AGENT)
    member.user.first_name, member.user.last_name = first_name, last_name
    member.user.save(update_fields=["first_name", "last_name"])
    AgentProfileFactory(tenant=tenant, user=member.user)
    return member.user


def _sign_in(page, user) -> None:
    from playwright.sync_api import expect

    page.goto("/console/")
    expect(page).to_have_url("/console/login/?next=/console/")
    page.get_by_label("Username (email)").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/console/")
    expect(page.locator("#connection")).to_have_text("Connected")


def _visitor(new_context, bot, received: list[str] | None = None, sent: list[str] | None = None):
    """The visitor on the demo page, the chat open; every socket frame they receive is kept
    in ``received``, every one they send in ``sent``."""
    from playwright.sync_api import expect

    page = new_context().new_page()
    if received is not None:
        page.on(
            "websocket",
            lambda socket: socket.on("framereceived", lambda frame: received.append(str(frame))),
        )
    if sent is not None:
        page.on(
            "websocket",
            lambda socket: socket.on("framesent", lambda frame: sent.append(str(frame))),
        )
    page.goto(f"/demo/{bot.public_key}/")
    _widget(page, "button.launcher").click()
    expect(_widget(page, ".msg.out").last).to_contain_text(GREETING)
    return page


def _claim_policy(tenant) -> None:
    tenant.assignment_policy = Tenant.AssignmentPolicy.CLAIM
    tenant.save(update_fields=["assignment_policy"])


def _handed_off(new_context, tenant):
    """An agent (claim policy) and a visitor who asked for a person: (agent, visitor page)."""
    from playwright.sync_api import expect

    _claim_policy(tenant)
    bot = launched_bot(tenant=tenant, title="Acme help", business_hours=ALWAYS_OPEN)
    maya = _agent(tenant)
    visitor = _visitor(new_context, bot)
    _say(visitor, "talk to a person")
    expect(_widget(visitor, ".msg.out").last).to_contain_text(HANDOFF)
    return maya, visitor


def _view(page, name: str):
    page.get_by_role("tab", name=re.compile(rf"^{name}")).click()
    return page.locator("#conversation-list li")


def test_visitor_and_agent_handoff_claim_chat_note_and_hand_back(new_context, tenant):
    from playwright.sync_api import expect

    _claim_policy(tenant)
    bot = launched_bot(tenant=tenant, title="Acme help", business_hours=ALWAYS_OPEN)
    maya = _agent(tenant)
    sam = _agent(tenant, "Sam", "Ortiz")
    AgentProfile.objects.filter(user=sam).update(presence=AgentProfile.Presence.OFFLINE)

    # The agent signs in; the console's socket connects and puts them online.
    agent = new_context().new_page()
    _sign_in(agent, maya)
    expect(agent.locator("#agents [data-agent]")).to_have_text(
        ["Maya Lopez — online", "Sam Ortiz — offline"]
    )
    expect(agent.locator("#count-unassigned")).to_have_text("0")
    agent.evaluate("() => { window.stillTheSamePage = true; }")

    # The visitor, whose every received socket frame is kept to prove what never reached them.
    received: list[str] = []
    sent: list[str] = []
    visitor = _visitor(new_context, bot, received, sent)
    _say(visitor, "talk to a person")
    expect(_widget(visitor, ".msg.out").last).to_contain_text(HANDOFF)

    # It arrives in the agent's Unassigned view, live.
    expect(agent.locator("#count-unassigned")).to_have_text("1")
    queued = _view(agent, "Unassigned")
    expect(queued).to_have_count(1)
    assert agent.evaluate("() => window.stillTheSamePage") is True  # no reload
    queued.get_by_role("button").click()
    timeline = agent.locator("#timeline")
    expect(timeline.locator(".bubble--contact")).to_contain_text(["talk to a person"])
    expect(timeline.locator(".bubble--bot").first).to_contain_text(bot.welcome_text)
    # A draft typed before the claim survives the view's redraw on the claim.
    agent.locator("#reply").fill("Hi, I'm Maya. How can I help?")
    agent.locator("#claim").click()
    expect(agent.locator("#conversation-status")).to_have_text("With you")
    expect(agent.locator("#count-unassigned")).to_have_text("0")
    expect(agent.locator("#count-mine")).to_have_text("1")
    expect(agent.locator("#reply")).to_have_value("Hi, I'm Maya. How can I help?")
    # The list follows the claimed conversation to Mine (not the now-empty Unassigned), open.
    expect(agent.get_by_role("tab", name=re.compile("^Mine"))).to_have_attribute(
        "aria-selected", "true"
    )
    expect(agent.locator("#conversation-list .conv-item--active")).to_have_count(1)
    # The contact panel says what we know of an anonymous web visitor.
    card = agent.locator("#contact")
    expect(card.locator(".contact-card__term")).to_have_text(
        ["Channel", "Language", "First seen", "Previous conversations"]
    )
    expect(card.locator(".contact-card__value")).to_contain_text(["Web chat", "English", "", "0"])

    # Transfer to: a colleague who is offline is shown so, and cannot be chosen (a visitor
    # was told "Sam joined" by an agent who was not there).
    transfer = agent.get_by_label("Transfer to")
    expect(transfer.locator("option", has_text="Sam Ortiz")).to_have_text("Sam Ortiz — offline")
    expect(transfer.locator("option", has_text="Sam Ortiz")).to_be_disabled()

    # Both ways.
    agent.locator("#reply").press("Enter")
    from_agent = _widget(visitor, ".msg.out").last
    expect(from_agent).to_contain_text("Hi, I'm Maya. How can I help?")
    # The visitor sees the first name only (never the email or the full name).
    expect(from_agent.locator(".who")).to_have_text("Maya")
    _say(visitor, "My parcel is late")
    expect(timeline.locator(".bubble--contact").last).to_contain_text("My parcel is late")
    # The agent has it in view: the visitor reads "Read" under it (it stayed "Sent").
    expect(_widget(visitor, ".msg.in").last.locator(".meta")).to_contain_text("Read")
    # Sent, so no longer typing: the widget says so with the message, not 1.5 s later (the
    # agent read "Visitor is typing…" under it meanwhile).
    frames = [json.loads(frame) for frame in sent]
    said = next(i for i, f in enumerate(frames) if f.get("text") == "My parcel is late")
    typing = [f["on"] for f in frames[:said] if f.get("type") == "typing"]
    assert typing and typing[-1] is False, frames[:said]
    expect(timeline.locator(".bubble--agent")).to_contain_text(["Hi, I'm Maya. How can I help?"])

    # A private note: in the console's timeline, nowhere near the visitor.
    # Note mode shows, and stays shown after the note went (a reply after a note became
    # another note: the box looked the same).
    agent.locator("#as-note").check()
    expect(agent.get_by_role("button", name="Add note")).to_be_visible()
    expect(agent.locator("#reply")).to_have_attribute(
        "placeholder", "Private note: only your team reads it"
    )
    agent.locator("#reply").fill(NOTE)
    agent.locator("#send").click()
    expect(timeline.locator(".bubble--note")).to_contain_text([NOTE])
    expect(timeline.locator(".bubble--agent")).to_have_count(1)
    expect(agent.locator("#send")).to_have_text("Add note")
    agent.locator("#as-note").uncheck()
    expect(agent.locator("#send")).to_have_text("Send")

    # Back to the bot, at the start of the flow: it greets again, and answers. The steps it
    # may resume at read as the flow editor names them, and what each says.
    steps = agent.get_by_label("Back to bot at")
    expect(steps.locator("option", has_text="Plans start at")).to_have_text(
        f"prices · Message · “{PRICES}”"
    )
    expect(steps).to_have_value("")  # the start
    agent.locator("#hand-back").click()
    expect(agent.locator("#conversation-status")).to_have_text("With the bot")
    expect(agent.locator("#count-mine")).to_have_text("0")
    expect(_widget(visitor, ".msg.out").last).to_contain_text(GREETING)
    _widget(visitor, ".replies button.reply").filter(has_text="Prices").click()
    expect(_widget(visitor, ".msg.out").last).to_contain_text(PRICES)
    expect(timeline.locator(".bubble--bot").last).to_contain_text(PRICES)

    widget_html = visitor.evaluate(
        "() => document.querySelector('chattonic-widget').shadowRoot.innerHTML"
    )
    assert PRICES in widget_html
    assert NOTE not in widget_html
    assert NOTE not in visitor.content()
    assert received and not [frame for frame in received if NOTE in frame]

    conversation = Conversation.objects.for_tenant(tenant).get()
    assert conversation.status == Conversation.Status.BOT
    assert list(
        HandoffEvent.objects.filter(conversation=conversation)
        .order_by("pk")
        .values_list("from_status", "to_status", "reason", "actor")
    ) == [
        ("bot", "queued", "visitor_request", None),
        ("queued", "assigned", "claim", maya.pk),
        ("assigned", "bot", "handback", maya.pk),
    ]


# Long enough that the conversation outgrows the pane, and each one wraps over lines.
LONG_MESSAGES = [
    f"Message {n}: I ordered the blue kettle on Monday, and the tracking page still says "
    "the parcel is waiting at the depot. Could you check where it is and when it will "
    "arrive? I need it before the weekend, thank you."
    for n in range(1, 6)
]


def test_an_agent_is_alerted_reads_every_message_answers_from_the_picker_and_resolves(
    new_context, tenant
):
    from playwright.sync_api import expect

    _claim_policy(tenant)
    bot = launched_bot(tenant=tenant, title="Acme help", business_hours=ALWAYS_OPEN)
    maya = _agent(tenant)
    CannedResponseFactory(tenant=tenant, shortcut="hours", text="We open at nine.")
    CannedResponseFactory(tenant=tenant, shortcut="refund", text="Your refund is on its way.")
    CannedResponseFactory(tenant=tenant, shortcut="returns", text="Returns are free for 30 days.")

    # The agent allowed notifications before (the permission is granted in the context).
    context = new_context()
    context.grant_permissions(["notifications"])
    context.add_init_script(OBSERVE_ALERTS)
    agent = context.new_page()
    agent.set_viewport_size({"width": 1280, "height": 640})
    _sign_in(agent, maya)
    expect(agent.locator("#notify-prompt")).to_be_hidden()
    title = agent.title()
    assert not title.startswith("(")

    visitor = _visitor(new_context, bot)
    _say(visitor, "talk to a person")
    expect(_widget(visitor, ".msg.out").last).to_contain_text(HANDOFF)

    # The alerts: a browser notification, the sound, the count in the tab's title.
    agent.wait_for_function("() => window.notificationsShown.length === 1")
    [shown] = agent.evaluate("() => window.notificationsShown")
    assert shown["title"].startswith("Waiting for an agent: ")
    assert f"Web chat · {bot.name}" in shown["body"]
    assert agent.evaluate("() => window.soundsPlayed")[0].endswith("/console-alert.wav")
    expect(agent).to_have_title(f"(1) {title}")

    # The visitor goes on writing; the item previews the last message, live.
    for text in LONG_MESSAGES:
        _say(visitor, text)
        expect(_widget(visitor, ".msg.in[data-pending]")).to_have_count(0)
    item = _view(agent, "Unassigned").first
    expect(item.locator(".conv-item__preview")).to_have_text(f"Visitor: {LONG_MESSAGES[-1]}")
    expect(item.locator(".conv-item__channel")).to_contain_text("Web chat")
    expect(item.locator(".conv-item__wait")).to_have_text("waiting <1 min")
    expect(item.locator(".conv-item__unread")).to_have_text("6 unread")

    # Opened: it is read; every visitor message is whole and visible in the pane.
    item.get_by_role("button").click()
    timeline = agent.locator("#timeline")
    bubbles = timeline.locator(".bubble--contact")
    expect(bubbles).to_have_count(6)
    expect(_view(agent, "Unassigned").first.locator(".conv-item__unread")).to_have_count(0)
    assert timeline.evaluate("t => t.scrollHeight > t.clientHeight + 100"), "not longer"
    for index, text in enumerate(["talk to a person", *LONG_MESSAGES]):
        bubble = bubbles.nth(index)
        bubble.scroll_into_view_if_needed()
        expect(bubble.locator(".bubble__text")).to_have_text(text)
        expect(bubble).to_be_visible()
        for part in (bubble, bubble.locator(".bubble__text")):
            assert part.evaluate("e => e.scrollHeight <= e.clientHeight"), (index, "clipped")
        box, pane = bubble.bounding_box(), timeline.bounding_box()
        assert box["height"] > 30, (index, box)
        # Within the pane (to a pixel: scrolled into view, it may sit on the edge).
        assert pane["y"] - 1 <= box["y"], (index, box, pane)
        assert box["y"] + box["height"] <= pane["y"] + pane["height"] + 1, (index, box, pane)

    # Claimed: the visitor hears who joined.
    agent.locator("#claim").click()
    expect(agent.locator("#conversation-status")).to_have_text("With you")
    expect(_widget(visitor, ".notice").last).to_have_text("Maya joined the conversation")

    # The canned-response picker: filtered as the agent types, arrows and Enter to insert.
    reply = agent.locator("#reply")
    picker = agent.get_by_role("listbox", name="Canned responses")
    reply.press_sequentially("/re")
    expect(picker.get_by_role("option")).to_contain_text(["/refund", "/returns"])
    reply.press("ArrowDown")
    expect(picker.get_by_role("option", selected=True)).to_contain_text("/returns")
    reply.press("Enter")
    expect(picker).to_be_hidden()
    expect(reply).to_have_value("Returns are free for 30 days.")
    reply.press("Enter")
    expect(_widget(visitor, ".msg.out").last).to_contain_text("Returns are free for 30 days.")
    # And by a click.
    reply.press_sequentially("/")
    expect(picker.get_by_role("option")).to_have_count(3)
    picker.get_by_role("option").filter(has_text="/hours").click()
    expect(reply).to_have_value("We open at nine.")
    reply.press("Enter")
    expect(_widget(visitor, ".msg.out").last).to_contain_text("We open at nine.")

    # Resolved: a neutral state in the header; the status line is still the connection's.
    agent.locator("#resolve").click()
    expect(agent.locator("#conversation-status")).to_have_text("Resolved")
    expect(agent.locator("#connection")).to_have_text("Connected")
    expect(agent.locator("#conversation-alert")).to_have_text("")
    expect(agent.locator("#count-mine")).to_have_text("0")
    expect(agent).to_have_title(title)
    expect(_widget(visitor, ".notice").last).to_have_text("This conversation was resolved")

    # Found again: the Resolved view lists it, live and after a reload, with its transcript
    # (a resolved chat left every view before).
    expect(_view(agent, "Resolved")).to_have_count(1)
    agent.reload()
    found = _view(agent, "Resolved")
    expect(found).to_have_count(1)
    expect(agent.locator("#count-resolved")).to_have_text("1")
    found.first.get_by_role("button").click()
    expect(agent.locator("#conversation-status")).to_have_text("Resolved")
    expect(agent.locator("#timeline .bubble--agent")).to_contain_text(
        ["Returns are free for 30 days.", "We open at nine."]
    )
    expect(agent.locator("#reply")).to_be_disabled()

    # The widget stays usable: the visitor's next message starts a new conversation.
    _say(visitor, "how much is it")
    expect(_widget(visitor, ".msg.out").last).to_contain_text(PRICES)
    first, second = Conversation.objects.for_tenant(tenant).order_by("pk")
    assert first.status == Conversation.Status.RESOLVED and second.status == "bot"
    assert list(
        Message.objects.filter(conversation=first, sender="agent").values_list("text", flat=True)
    ) == ["Returns are free for 30 days.", "We open at nine."]


def test_an_agent_names_themselves_an_unknown_shortcut_is_refused_and_axe_passes(
    new_context, tenant
):
    from playwright.sync_api import expect

    _claim_policy(tenant)
    bot = launched_bot(tenant=tenant, title="Acme help", business_hours=ALWAYS_OPEN)
    # An account made before names were asked for.
    rosa = _agent(tenant, first_name="", last_name="")
    CannedResponseFactory(tenant=tenant, shortcut="hours", text="We open at nine.")

    context = new_context()
    context.add_init_script(OBSERVE_ALERTS)
    agent = context.new_page()
    _sign_in(agent, rosa)
    # The browser's permission for notifications is asked on a click only, never on load.
    expect(agent.locator("#notify-prompt")).to_be_visible()
    # The four views' tabs, with their counts, are one row at 1280 px ("Resolved" wrapped
    # alone to a second line).
    tabs = agent.get_by_role("tab")
    expect(tabs).to_have_count(4)
    tops = {round(tab.bounding_box()["y"]) for tab in tabs.all()}
    assert len(tops) == 1, tops
    assert agent.evaluate("() => window.permissionRequests") == 0
    agent.get_by_role("button", name="Allow notifications").click()
    agent.wait_for_function("() => window.permissionRequests === 1")

    prompt = agent.locator("#name-prompt")
    expect(prompt).to_contain_text("Visitors see you as “Agent”")
    prompt.get_by_role("button", name="Choose my name").click()
    name = agent.get_by_label("Your name (visitors see it)")
    expect(name).to_be_focused()
    name.fill(rosa.email)
    agent.get_by_role("button", name="Save name").click()
    expect(agent.locator("#name-error")).to_have_text(
        "Your name, not an email address: visitors see it."
    )
    name.fill("Rosa")
    agent.get_by_role("button", name="Save name").click()
    expect(agent.locator("#name-saved")).to_have_text("Saved.")
    expect(prompt).to_be_hidden()
    expect(agent.locator("#me-name")).to_have_text("Rosa")
    # The sound turned off stays off.
    agent.get_by_label("Play a sound").uncheck()
    agent.get_by_role("button", name="Close").click()
    agent.reload()
    expect(agent.locator("#connection")).to_have_text("Connected")
    agent.get_by_role("button", name="Settings").click()
    expect(agent.get_by_label("Play a sound")).not_to_be_checked()
    expect(agent.get_by_label("Show a browser notification")).to_be_checked()
    agent.get_by_role("button", name="Close").click()

    received: list[str] = []
    visitor = _visitor(new_context, bot, received)
    _say(visitor, "talk to a person")
    _view(agent, "Unassigned").first.get_by_role("button").click()
    agent.locator("#claim").click()
    expect(_widget(visitor, ".notice").last).to_have_text("Rosa joined the conversation")

    # An unknown shortcut: refused with the hint, kept in the box, never sent.
    reply = agent.locator("#reply")
    reply.fill("/xyz")
    reply.press("Enter")
    refused = "No canned response /xyz; type / to see them."
    expect(agent.locator("#composer-hint")).to_have_text(refused)
    expect(reply).to_have_value("/xyz")
    # A change to the conversation meanwhile (the visitor's, another agent's) redraws it: the
    # draft and the hint stay. (Off Playwright's thread: the broadcast uses async_to_sync.)
    agent.evaluate("() => { document.getElementById('reply').dataset.before = '1'; }")
    conversation = Conversation.objects.get(bot=bot)
    with ThreadPoolExecutor(1) as other_thread:
        other_thread.submit(
            agents_realtime.conversation_changed_on_commit, conversation, reason="test"
        ).result()
    expect(agent.locator("#reply:not([data-before])")).to_have_count(1)  # redrawn
    expect(agent.locator("#composer-hint")).to_have_text(refused)
    expect(reply).to_have_value("/xyz")
    reply.fill("Hello, I'm Rosa.")
    reply.press("Enter")
    expect(_widget(visitor, ".msg.out").last).to_contain_text("Hello, I'm Rosa.")
    assert "/xyz" not in visitor.evaluate(
        "() => document.querySelector('chattonic-widget').shadowRoot.innerHTML"
    )
    assert not [frame for frame in received if "/xyz" in frame]
    assert list(Message.objects.filter(sender="agent").values_list("text", flat=True)) == [
        "Hello, I'm Rosa."
    ]

    # WCAG 2.1 A/AA: the console with a conversation open, and with the picker open.
    assert_accessible(agent)
    reply.press_sequentially("/")
    picker = agent.get_by_role("listbox", name="Canned responses")
    expect(picker.get_by_role("option")).to_have_text(["/hoursWe open at nine."])
    assert_accessible(agent)


def test_at_800_px_the_contact_panel_collapses_and_the_conversation_keeps_the_width(
    new_context, tenant
):
    from playwright.sync_api import expect

    maya, _ = _handed_off(new_context, tenant)

    agent = new_context(viewport={"width": 800, "height": 700}).new_page()
    _sign_in(agent, maya)
    _view(agent, "Unassigned").get_by_role("button").click()
    expect(agent.locator("#timeline .bubble--contact")).to_contain_text(["talk to a person"])
    pane = agent.locator("#conversation").bounding_box()
    assert pane["width"] >= 500, pane  # three columns left it ~240 px
    card = agent.locator("#contact")
    expect(card).to_be_hidden()
    toggle = agent.get_by_role("button", name="Contact details", exact=True)
    toggle.click()
    expect(card).to_be_visible()
    expect(card).to_contain_text("Web chat")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    agent.get_by_role("button", name="Close contact details").click()
    expect(card).to_be_hidden()
    expect(toggle).to_be_focused()

    # Wide again, the panel is a column and the button is gone.
    agent.set_viewport_size({"width": 1280, "height": 700})
    expect(card).to_be_visible()
    expect(toggle).to_be_hidden()


def test_a_long_conversation_opens_on_its_newest_message_and_stays_there(new_context, tenant):
    """Opened, claimed, resolved: the visitor's last message is in view each time (it was
    hidden under the reply box, the timeline scrolled before the box took its height)."""
    from playwright.sync_api import expect

    maya, visitor = _handed_off(new_context, tenant)
    for number in range(1, 8):  # (at most 10 a visitor in 10 s)
        _say(visitor, f"Detail number {number} of my problem.")
        expect(_widget(visitor, ".msg.in").last).to_contain_text(f"Detail number {number} ")
    agent = new_context(viewport={"width": 1280, "height": 520}).new_page()
    _sign_in(agent, maya)
    _view(agent, "Unassigned").get_by_role("button").click()
    timeline = agent.locator("#timeline")
    last = timeline.locator(".bubble--contact").last
    expect(last).to_contain_text("Detail number 7 of my problem.")

    def newest_in_view() -> None:
        assert timeline.evaluate("t => t.scrollHeight > t.clientHeight + 100")  # it scrolls
        seen, box = timeline.bounding_box(), last.bounding_box()
        assert seen["y"] <= box["y"] and box["y"] + box["height"] <= seen["y"] + seen["height"], (
            seen,
            box,
        )

    newest_in_view()
    agent.get_by_role("button", name="Claim", exact=True).click()
    expect(agent.locator("#conversation-status")).to_have_text("With you")
    newest_in_view()
    agent.get_by_role("button", name="Resolve", exact=True).click()
    expect(agent.locator("#conversation-status")).to_have_text("Resolved")
    newest_in_view()


def test_the_contact_cards_leads_read_a_field_a_line_none_cut_off(new_context, tenant):
    """A lead on the contact card: its status, then "Email: ...", each field on a line, a
    long address broken inside the card (one line of "email=..." ran off its edge)."""
    from playwright.sync_api import expect

    from tests.factories import LeadFactory

    maya, _ = _handed_off(new_context, tenant)
    contact = Conversation.objects.get(tenant=tenant).contact
    address = "vera.visitor.with.a.rather.long.address@example.com"
    fields = {"email": address, "order_number": "1001", "message": "My order arrived damaged"}
    LeadFactory(tenant=tenant, contact=contact, fields=fields)
    agent = new_context(viewport={"width": 1280, "height": 800}).new_page()
    _sign_in(agent, maya)
    _view(agent, "Unassigned").get_by_role("button").click()
    lead = agent.locator("#contact .contact-card__lead")
    expect(lead.locator("span")).to_have_count(4)
    lines = lead.locator("span").all_inner_texts()
    assert lines[0] == "New lead"  # then the fields, in the order the database keeps them
    assert sorted(lines[1:]) == [
        f"Email: {address}",
        "Message: My order arrived damaged",
        "Order number: 1001",
    ]
    card = agent.locator("#contact").bounding_box()
    for line in lead.locator("span").all():
        box = line.bounding_box()
        assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"]
        assert line.evaluate("n => n.scrollWidth <= n.clientWidth + 1")
    assert_accessible(agent, "#contact")


def test_on_a_phone_the_agent_reads_claims_and_answers_without_sideways_scrolling(
    new_context, tenant
):
    """At 375 x 812 the list and the conversation take turns: the visitor's message is read
    whole, Claim is not covered, the reply box and Send are on screen, "Conversations" goes
    back to the list. (Three squeezed columns left a 134 px pane, a page wider than the
    phone, and Send below the fold.)"""
    from playwright.sync_api import expect

    maya, visitor = _handed_off(new_context, tenant)
    question = "My parcel never came, and the tracking page says it was delivered yesterday."
    _say(visitor, question)
    expect(_widget(visitor, ".msg.in").last).to_contain_text(question)

    agent = new_context(viewport={"width": 375, "height": 812}, is_mobile=True).new_page()
    _sign_in(agent, maya)
    sideways = "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    assert not agent.evaluate(sideways)
    expect(agent.locator("#conversation")).to_be_hidden()  # the list has the screen
    _view(agent, "Unassigned").get_by_role("button").click()

    bubble = agent.locator("#timeline .bubble--contact").last
    expect(bubble).to_contain_text(question)
    expect(agent.locator(".sidebar")).to_be_hidden()
    assert not agent.evaluate(sideways)
    box = bubble.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["width"] >= 200, box
    text = bubble.locator(".bubble__text")
    assert text.evaluate("t => t.scrollWidth <= t.clientWidth && t.scrollHeight <= t.clientHeight")
    claim = agent.get_by_role("button", name="Claim", exact=True)
    centre = claim.bounding_box()
    on_top = agent.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).id",
        [centre["x"] + centre["width"] / 2, centre["y"] + centre["height"] / 2],
    )
    assert on_top == "claim", on_top
    claim.click()
    expect(agent.locator("#conversation-status")).to_have_text("With you")

    agent.get_by_label("Reply").fill("On it: let me look.")
    send = agent.get_by_role("button", name="Send", exact=True)
    reply_box = agent.get_by_label("Reply").bounding_box()
    assert reply_box["width"] >= 300, reply_box
    sent_box = send.bounding_box()
    assert sent_box["y"] + sent_box["height"] <= 812, sent_box  # on screen, no scrolling
    send.click()
    expect(_widget(visitor, ".msg.out").last).to_contain_text("On it: let me look.")
    assert not agent.evaluate(sideways)
    assert_accessible(agent)  # the conversation's turn of the phone layout

    agent.get_by_role("button", name="Conversations").click()  # the back button
    expect(agent.locator("#conversation-list")).to_be_visible()
    expect(agent.locator("#conversation")).to_be_hidden()
    assert_accessible(agent)  # the list's turn
    # Answered, nothing waits; the visitor writes again: it waits for this agent's reply,
    # said so (not "waiting", which read as still queued beside "With you").
    mine = _view(agent, "Mine").first
    expect(mine.locator(".conv-item__wait")).to_have_text("")
    _say(visitor, "Thanks!")
    expect(mine.locator(".conv-item__wait")).to_have_text("unanswered <1 min")
    mine.get_by_role("button").click()
    expect(agent.locator("#timeline .bubble--agent").last).to_contain_text("On it: let me look.")


# What the conversation's header offers an agent who may act on a queued conversation:
# each by its role and accessible name.
PHONE_ACTIONS = [
    ("button", "Claim"),
    ("combobox", "Transfer to"),
    ("button", "Transfer"),
    ("combobox", "Back to bot at"),
    ("button", "Hand back to bot"),
    ("button", "Resolve"),
    ("button", "Contact details"),
]


def test_on_a_phone_the_messages_have_most_of_the_screen_and_every_action_one_tap_away(
    new_context, tenant
):
    """At 375 x 812 an open conversation's header is one compact bar: the messages take most
    of the screen, the newest visitor message and the reply box are in view, and each action
    is on screen or one tap on **Actions** away. (The title, the state and a wrapped row of
    eight controls took 247 px, the reply box 159: the messages had 27 % of the screen.)

    At least 55 %: measured, the top bar (two lines at this width, 73 px), the prompt to allow
    notifications (57), the conversation's bar (52), the typing line (20) and the reply box
    (117) leave the messages 494 px, 61 %; the rest is room for a longer tenant's or agent's
    name wrapping the top bar onto a third line.
    """
    from playwright.sync_api import expect

    maya, visitor = _handed_off(new_context, tenant)
    question = "Where is my parcel? The tracking page has said 'at the depot' since Monday."
    _say(visitor, question)
    expect(_widget(visitor, ".msg.in").last).to_contain_text(question)

    width, height = 375, 812
    agent = new_context(viewport={"width": width, "height": height}, is_mobile=True).new_page()
    _sign_in(agent, maya)
    _view(agent, "Unassigned").get_by_role("button").click()
    timeline = agent.get_by_role("list", name="Messages")
    last = timeline.locator(".bubble--contact").last
    expect(last).to_contain_text(question)
    sideways = "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    menu = agent.get_by_role("button", name="Actions", exact=True)

    def on_screen(locator) -> None:
        """Shown whole inside the window, and the topmost thing where a finger would tap."""
        expect(locator).to_be_visible()
        box = locator.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, box
        hit = locator.evaluate(
            "(e, [x, y]) => e.contains(document.elementFromPoint(x, y))",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert hit, (locator, box)

    def reads_comfortably() -> None:
        share = timeline.bounding_box()["height"] / height
        parts = agent.evaluate(
            """() => Object.fromEntries(
                [".topbar", ".banners", ".pane__head", "#timeline", "#typing", ".composer"]
                .map(s => [s, Math.round(document.querySelector(s).offsetHeight)]))"""
        )
        assert share >= 0.55, f"the messages have {share:.0%} of the screen: {parts}"
        on_screen(last)
        seen, box = timeline.bounding_box(), last.bounding_box()
        assert seen["y"] <= box["y"] and box["y"] + box["height"] <= seen["y"] + seen["height"]
        on_screen(agent.get_by_label("Reply"))
        on_screen(agent.get_by_role("button", name="Send", exact=True))
        assert not agent.evaluate(sideways)

    def reachable(actions) -> None:
        """Each action on screen now, or after one tap on Actions (which then closes)."""
        for role, name in actions:
            control = agent.get_by_role(role, name=name, exact=True, include_hidden=True)
            expect(control).to_have_count(1)
            if not control.is_visible():
                expect(menu).to_have_attribute("aria-expanded", "false")
                menu.click()
                expect(menu).to_have_attribute("aria-expanded", "true")
                on_screen(control)
                assert not agent.evaluate(sideways)
                menu.click()
                expect(control).to_be_hidden()
            else:
                on_screen(control)

    reads_comfortably()
    reachable(PHONE_ACTIONS)
    assert_accessible(agent)

    # By keyboard: the menu opens on Enter, Tab goes into it, Escape closes it and the focus
    # is back on Actions; axe-core finds nothing with it open either.
    if menu.count():
        menu.focus()
        menu.press("Enter")
        expect(menu).to_have_attribute("aria-expanded", "true")
        assert_accessible(agent)
        agent.keyboard.press("Tab")
        focused = agent.evaluate("() => document.activeElement.closest('#conversation-actions')")
        assert focused is not None
        agent.keyboard.press("Escape")
        expect(menu).to_have_attribute("aria-expanded", "false")
        expect(menu).to_be_focused()

    # Claimed (the conversation redraws): still so, with what may be done now.
    agent.get_by_role("button", name="Claim", exact=True).click()
    expect(agent.locator("#conversation-status")).to_have_text("With you")
    reads_comfortably()
    reachable([action for action in PHONE_ACTIONS if action[1] != "Claim"])
    # An action taken from the menu: Resolve.
    resolve = agent.get_by_role("button", name="Resolve", exact=True)
    if not resolve.is_visible():
        menu.click()
    resolve.click()
    expect(agent.locator("#conversation-status")).to_have_text("Resolved")
    assert not agent.evaluate(sideways)
    assert_accessible(agent)


def _claim_and_close(conversation, user):
    from django.db import connection

    from agents.services import conversation_claim

    try:
        conversation_claim(conversation=conversation, agent=user)
    finally:
        connection.close()


def test_an_agent_reads_a_colleagues_conversation_without_actions_they_cannot_take(
    new_context, tenant
):
    """Another agent's conversation offered Transfer, Hand back and Resolve, each refused
    ("Another agent has this conversation."), and a reply box that said "Claim the
    conversation to reply" with no Claim to press."""
    from playwright.sync_api import expect

    maya, _ = _handed_off(new_context, tenant)
    sam = _agent(tenant, "Sam", "Ortiz")
    conversation = Conversation.objects.for_tenant(tenant).get()
    with ThreadPoolExecutor(1) as other_thread:  # off Playwright's thread (async_to_sync)
        other_thread.submit(_claim_and_close, conversation, sam).result()

    agent = new_context().new_page()
    _sign_in(agent, maya)
    _view(agent, "All").get_by_role("button").click()
    expect(agent.locator("#conversation-status")).to_contain_text("Sam")
    expect(agent.locator("#timeline .bubble--contact")).to_contain_text(["talk to a person"])
    for name in ("Transfer", "Hand back to bot", "Resolve", "Claim"):
        expect(agent.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(agent.locator("#reply")).to_have_attribute(
        "placeholder", "Sam Ortiz has this conversation."
    )
