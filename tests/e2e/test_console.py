"""A visitor (the demo page) and an agent (the console) in two browser contexts, live.

The visitor asks for a person; the agent sees the conversation arrive in the queue without
reloading, claims it, they write to each other, the agent leaves a private note that never
reaches the visitor, and hands the conversation back to the bot, which answers again.
"""

from __future__ import annotations

import pytest

from agents.models import HandoffEvent
from chattonic.tenancy.models import Membership, Tenant
from conversations.models import Conversation
from tests.factories import AgentProfileFactory, MembershipFactory, launched_bot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # the UserFactory's
ALWAYS_OPEN = {
    day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}
GREETING = "What can I do for you?"
HANDOFF = "I'm connecting you with a person from our team."
NOTE = "VIP customer: offer the express shipping"


def _widget(page, selector: str):
    return page.locator(f"chattonic-widget {selector}")


def _say(page, text: str) -> None:
    box = _widget(page, "textarea.input")
    box.fill(text)
    box.press("Enter")


def test_visitor_and_agent_handoff_claim_chat_note_and_hand_back(new_context, tenant):
    from playwright.sync_api import expect

    tenant.assignment_policy = Tenant.AssignmentPolicy.CLAIM
    tenant.save(update_fields=["assignment_policy"])
    bot = launched_bot(tenant=tenant, title="Acme help", business_hours=ALWAYS_OPEN)
    member = MembershipFactory(tenant=tenant, role=Membership.Role.AGENT)
    member.user.first_name, member.user.last_name = "Maya", "Lopez"
    member.user.save(update_fields=["first_name", "last_name"])
    AgentProfileFactory(tenant=tenant, user=member.user)

    # The agent signs in; the console's socket connects and puts them online.
    agent = new_context().new_page()
    agent.goto("/console/")
    expect(agent).to_have_url("/console/login/?next=/console/")
    agent.get_by_label("Username (email)").fill(member.user.username)
    agent.get_by_label("Password").fill(PASSWORD)
    agent.get_by_role("button", name="Sign in").click()
    expect(agent).to_have_url("/console/")
    expect(agent.locator("#connection")).to_have_text("Connected")
    expect(agent.locator("#agents [data-agent]")).to_have_text(["Maya Lopez — online"])
    expect(agent.locator("#queue li")).to_have_count(0)
    agent.evaluate("() => { window.stillTheSamePage = true; }")

    # The visitor, whose every received socket frame is kept to prove what never reached them.
    visitor = new_context().new_page()
    received: list[str] = []
    visitor.on(
        "websocket",
        lambda socket: socket.on("framereceived", lambda frame: received.append(str(frame))),
    )
    visitor.goto(f"/demo/{bot.public_key}/")
    _widget(visitor, "button.launcher").click()
    expect(_widget(visitor, ".msg.out").last).to_contain_text(GREETING)
    _say(visitor, "talk to a person")
    expect(_widget(visitor, ".msg.out").last).to_contain_text(HANDOFF)

    # It arrives in the agent's queue, live.
    queued = agent.locator("#queue li")
    expect(queued).to_have_count(1)
    expect(agent.locator("#queue-count")).to_have_text("1")
    assert agent.evaluate("() => window.stillTheSamePage") is True  # no reload
    queued.get_by_role("button").click()
    timeline = agent.locator("#timeline")
    expect(timeline.locator(".msg.contact")).to_contain_text(["talk to a person"])
    expect(timeline.locator(".msg.bot").first).to_contain_text(bot.welcome_text)
    # A draft typed before the claim survives the view's redraw on the claim.
    agent.locator("#reply").fill("Hi, I'm Maya. How can I help?")
    agent.locator("#claim").click()
    expect(agent.locator("#conversation-status")).to_have_text("assigned · Maya Lopez")
    expect(agent.locator("#queue li")).to_have_count(0)
    expect(agent.locator("#mine li")).to_have_count(1)
    expect(agent.locator("#reply")).to_have_value("Hi, I'm Maya. How can I help?")

    # Both ways.
    agent.locator("#reply").press("Enter")
    from_agent = _widget(visitor, ".msg.out").last
    expect(from_agent).to_contain_text("Hi, I'm Maya. How can I help?")
    # The visitor sees the first name only (never the email or the full name).
    expect(from_agent.locator(".who")).to_have_text("Maya")
    _say(visitor, "My parcel is late")
    expect(timeline.locator(".msg.contact").last).to_contain_text("My parcel is late")
    expect(timeline.locator(".msg.agent")).to_contain_text(["Hi, I'm Maya. How can I help?"])

    # A private note: in the console's timeline, nowhere near the visitor.
    agent.locator("#as-note").check()
    agent.locator("#reply").fill(NOTE)
    agent.locator("#send").click()
    expect(timeline.locator(".note")).to_contain_text([NOTE])
    expect(timeline.locator(".msg.agent")).to_have_count(1)

    # Back to the bot, at the start of the flow: it greets again, and answers.
    agent.locator("#hand-back").click()
    expect(agent.locator("#conversation-status")).to_have_text("bot")
    expect(agent.locator("#mine li")).to_have_count(0)
    expect(_widget(visitor, ".msg.out").last).to_contain_text(GREETING)
    _widget(visitor, ".replies button.reply").filter(has_text="Prices").click()
    expect(_widget(visitor, ".msg.out").last).to_contain_text("Plans start at $10.")
    expect(timeline.locator(".msg.bot").last).to_contain_text("Plans start at $10.")

    widget_html = visitor.evaluate(
        "() => document.querySelector('chattonic-widget').shadowRoot.innerHTML"
    )
    assert "Plans start at $10." in widget_html
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
        ("queued", "assigned", "claim", member.user.pk),
        ("assigned", "bot", "handback", member.user.pk),
    ]
