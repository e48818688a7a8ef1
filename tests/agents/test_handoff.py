"""The handoff state machine: every transition and every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from agents import services
from agents.models import AgentProfile, HandoffEvent
from agents.selectors import conversation_summary
from bots.engine.texts import default_text
from chattonic.core.errors import Conflict, NotFound, ValidationFailed
from chattonic.tenancy.models import Tenant
from conversations.models import Conversation, Message
from leads.models import Lead
from tests.factories import (
    AgentProfileFactory,
    ConversationFactory,
    MembershipFactory,
    TeamFactory,
    launched_bot,
)

pytestmark = pytest.mark.django_db

# Ranges are [start, end): "24:00" closes after the day's last minute.
ALWAYS_OPEN = {
    day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@pytest.fixture
def bot(tenant):
    return launched_bot(tenant=tenant, business_hours=ALWAYS_OPEN)


@pytest.fixture
def conversation(bot):
    return ConversationFactory(tenant=bot.tenant, bot=bot, bot_version=bot.published_version)


@pytest.fixture
def agent(tenant):
    return AgentProfileFactory(tenant=tenant)


def events(conversation):
    return list(
        HandoffEvent.objects.filter(conversation=conversation).values_list(
            "from_status", "to_status", "reason"
        )
    )


def test_hand_off_queues_and_records_who_when_why(conversation, agent):
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.QUEUED
    assert conversation.queued_at is not None
    assert conversation.handoff_reason == "visitor_request"
    assert events(conversation) == [("bot", "queued", "visitor_request")]
    # An agent is online: no away message.
    assert not Message.objects.filter(conversation=conversation, data__away=True).exists()


def test_a_flow_nodes_own_reason_code_is_kept_in_the_log_and_shown_as_the_flows(
    conversation, agent, owner_client
):
    """flows.md: a handoff node's reason is a code of the flow's own (up to 40 characters):
    the conversation says "the flow's handoff node" (its filter finds it), the log keeps
    the code. (The code was stored as the reason: blank in the dashboard, and on
    PostgreSQL a code over 20 characters failed the visitor's message.)"""
    code = "refund_for_an_order_that_never_came_back"
    assert len(code) == 40
    services.flow_hand_off(conversation=conversation, reason=code)
    conversation.refresh_from_db()
    assert conversation.handoff_reason == "flow"
    assert conversation.get_handoff_reason_display() == "The flow's handoff node"
    event = HandoffEvent.objects.get(conversation=conversation)
    assert (event.reason, event.detail) == ("flow", code)
    listed = owner_client.get(
        "/dashboard/conversations/conversation/", {"handoff_reason__exact": "flow"}
    )
    assert [c.pk for c in listed.context["cl"].result_list] == [conversation.pk]
    log = owner_client.get("/dashboard/agents/handoffevent/").content.decode()
    assert code in log


def test_hand_off_routes_to_the_named_team(conversation, tenant):
    sales = TeamFactory(tenant=tenant, name="Sales")
    services.conversation_hand_off(conversation=conversation, reason="flow", team="sales")
    conversation.refresh_from_db()
    assert conversation.team == sales


def test_with_nobody_online_the_visitor_gets_the_away_message(conversation):
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    away = Message.objects.get(conversation=conversation, data__away=True)
    assert away.text == conversation.bot.away_message
    assert away.sender == Message.Sender.SYSTEM


def test_outside_business_hours_the_visitor_gets_the_away_message(tenant, agent):
    bot = launched_bot(tenant=tenant, business_hours={})
    conversation = ConversationFactory(tenant=tenant, bot=bot)
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    assert Message.objects.filter(conversation=conversation, data__away=True).exists()
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.QUEUED


def test_the_away_form_makes_a_lead(conversation):
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    lead = services.away_contact_leave(
        conversation=conversation,
        fields={"name": "Ana", "email": "ana@example.com", "x": "dropped"},
    )
    assert lead.source == Lead.Source.AWAY_FORM
    assert lead.fields == {"name": "Ana", "email": "ana@example.com"}


def test_the_away_form_needs_an_email_or_phone(conversation):
    with pytest.raises(ValidationFailed) as refused:
        services.away_contact_leave(conversation=conversation, fields={"name": "Ana"})
    assert "email" in refused.value.fields
    with pytest.raises(ValidationFailed):
        services.away_contact_leave(conversation=conversation, fields={"email": "not-an-email"})
    assert not Lead.objects.exists()


def test_claim_assigns_once(conversation, agent, tenant):
    services.conversation_hand_off(conversation=conversation, reason="flow")
    services.conversation_claim(conversation=conversation, agent=agent.user)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ASSIGNED
    assert conversation.assigned_agent == agent.user
    assert conversation.assigned_at is not None
    other = AgentProfileFactory(tenant=tenant)
    with pytest.raises(Conflict) as refused:
        services.conversation_claim(conversation=conversation, agent=other.user)
    assert refused.value.code == "already_assigned"
    assert events(conversation)[-1] == ("queued", "assigned", "claim")


def test_an_agent_of_another_tenant_cannot_claim(conversation, other_tenant):
    services.conversation_hand_off(conversation=conversation, reason="flow")
    stranger = AgentProfileFactory(tenant=other_tenant)
    with pytest.raises(NotFound):
        services.conversation_claim(conversation=conversation, agent=stranger.user)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.QUEUED
    assert conversation.assigned_agent is None


def test_an_agent_over_capacity_cannot_claim(tenant, bot, agent):
    agent.capacity = 1
    agent.save()
    first, second = (ConversationFactory(tenant=tenant, bot=bot) for _ in range(2))
    for conversation in (first, second):
        services.conversation_hand_off(conversation=conversation, reason="flow")
    services.conversation_claim(conversation=first, agent=agent.user)
    with pytest.raises(Conflict) as refused:
        services.conversation_claim(conversation=second, agent=agent.user)
    assert refused.value.code == "over_capacity"
    assert Conversation.objects.get(pk=second.pk).status == Conversation.Status.QUEUED


def test_a_resolved_conversation_refuses_everything(conversation, agent):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    services.conversation_resolve(conversation=conversation, actor=agent.user)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.RESOLVED and conversation.resolved_at
    for attempt in (
        lambda: services.conversation_claim(conversation=conversation, agent=agent.user),
        lambda: services.conversation_take_over(conversation=conversation, agent=agent.user),
        lambda: services.conversation_hand_off(conversation=conversation, reason="flow"),
        lambda: services.conversation_resolve(conversation=conversation, actor=agent.user),
        lambda: services.agent_reply(conversation=conversation, agent=agent.user, text="hi"),
        lambda: services.conversation_hand_back(conversation=conversation, actor=agent.user),
    ):
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "resolved"


def test_take_over_from_the_bot(conversation, agent):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ASSIGNED
    assert conversation.handoff_reason == "agent_takeover"
    assert events(conversation) == [("bot", "assigned", "agent_takeover")]


def test_agent_reply_goes_out_and_stamps_the_first_response(conversation, agent):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    reply = services.agent_reply(
        conversation=conversation, agent=agent.user, text="Hello, I am Ana"
    )
    conversation.refresh_from_db()
    assert reply.sender == Message.Sender.AGENT and reply.agent == agent.user
    assert reply.status == Message.Status.SENT  # the web chat's sockets have it
    first = conversation.first_agent_response_at
    assert first is not None
    services.agent_reply(conversation=conversation, agent=agent.user, text="Second")
    conversation.refresh_from_db()
    assert conversation.first_agent_response_at == first


def test_only_the_assigned_agent_replies(conversation, agent, tenant):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    other = AgentProfileFactory(tenant=tenant)
    with pytest.raises(Conflict) as refused:
        services.agent_reply(conversation=conversation, agent=other.user, text="hi")
    assert refused.value.code == "already_assigned"
    assert not Message.objects.filter(sender=Message.Sender.AGENT).exists()


def test_transfer_to_an_agent_and_to_a_team(conversation, agent, tenant):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    colleague = AgentProfileFactory(tenant=tenant)
    services.conversation_transfer(
        conversation=conversation, actor=agent.user, to_agent=colleague.user
    )
    conversation.refresh_from_db()
    assert conversation.assigned_agent == colleague.user
    billing = TeamFactory(tenant=tenant, name="Billing")
    services.conversation_transfer(conversation=conversation, actor=colleague.user, to_team=billing)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.QUEUED and conversation.team == billing
    assert [e[2] for e in events(conversation)] == ["agent_takeover", "transfer", "transfer"]


@pytest.mark.parametrize("presence", ["offline", "away", "silent"])
def test_a_transfer_to_an_agent_who_is_not_online_is_refused(conversation, agent, tenant, presence):
    """The visitor would hear "Sam joined the conversation" from nobody, and the agent who
    sent it could act on it no more (a new agent's walk: a transfer to an offline colleague
    stranded the visitor)."""
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    sam = AgentProfileFactory(
        tenant=tenant,
        presence="online" if presence == "silent" else presence,
        last_seen_at=timezone.now() - timedelta(hours=1 if presence == "silent" else 0),
    )
    with pytest.raises(Conflict) as refused:
        services.conversation_transfer(
            conversation=conversation, actor=agent.user, to_agent=sam.user
        )
    assert refused.value.code == "agent_unavailable"
    assert "transfer to an agent who is online, or to a team's queue" in refused.value.message
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent) == ("assigned", agent.user)
    assert [e[2] for e in events(conversation)] == ["agent_takeover"]


def test_transfer_needs_a_target_of_the_same_tenant(conversation, agent, other_tenant):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    with pytest.raises(ValidationFailed):
        services.conversation_transfer(conversation=conversation, actor=agent.user)
    with pytest.raises(NotFound):
        services.conversation_transfer(
            conversation=conversation, actor=agent.user, to_team=TeamFactory(tenant=other_tenant)
        )
    stranger = AgentProfileFactory(tenant=other_tenant)
    with pytest.raises(NotFound):
        services.conversation_transfer(
            conversation=conversation, actor=agent.user, to_agent=stranger.user
        )
    assert Conversation.objects.get(pk=conversation.pk).assigned_agent == agent.user


def test_hand_back_resumes_the_bot(conversation, agent):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    replies = services.conversation_hand_back(conversation=conversation, actor=agent.user)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT
    assert conversation.assigned_agent is None
    assert replies and all(r.sender == Message.Sender.BOT for r in replies)
    assert events(conversation)[-1] == ("assigned", "bot", "handback")


def test_hand_back_to_an_unknown_node_is_refused(conversation, agent):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    with pytest.raises(ValidationFailed) as refused:
        services.conversation_hand_back(conversation=conversation, actor=agent.user, node="nope")
    assert "node" in refused.value.fields
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.ASSIGNED


def test_round_robin_is_fair_and_respects_capacity_presence_and_teams(tenant, bot):
    Tenant.objects.filter(pk=tenant.pk).update(
        assignment_policy=Tenant.AssignmentPolicy.ROUND_ROBIN
    )
    sales = TeamFactory(tenant=tenant, name="Sales")
    ana = AgentProfileFactory(tenant=tenant, capacity=2)
    ben = AgentProfileFactory(tenant=tenant, capacity=1)
    AgentProfileFactory(tenant=tenant, presence=AgentProfile.Presence.AWAY)  # never chosen
    stale = AgentProfileFactory(tenant=tenant, last_seen_at=timezone.now() - timedelta(hours=1))
    carla = AgentProfileFactory(tenant=tenant, capacity=1)
    carla.teams.add(sales)
    start = timezone.now() - timedelta(minutes=10)
    for_sales = ConversationFactory(tenant=tenant, bot=bot, team=sales)
    Conversation.objects.filter(pk=for_sales.pk).update(status="queued", queued_at=start)
    queued = [ConversationFactory(tenant=tenant, bot=bot) for _ in range(4)]
    for minute, conversation in enumerate(queued, start=1):
        Conversation.objects.filter(pk=conversation.pk).update(
            status=Conversation.Status.QUEUED, queued_at=start + timedelta(minutes=minute)
        )

    assigned = services.queue_dispatch(tenant_id=tenant.pk)

    holders = {
        c.pk: c.assigned_agent_id
        for c in Conversation.objects.filter(status=Conversation.Status.ASSIGNED)
    }
    assert assigned == len(holders)
    assert holders[for_sales.pk] == carla.user_id  # the team's only agent
    counts = {user: list(holders.values()).count(user) for user in set(holders.values())}
    assert counts.get(ben.user_id, 0) <= 1 and counts.get(ana.user_id, 0) <= 2
    assert stale.user_id not in counts
    # FIFO: the oldest queued conversations went first.
    assert all(c.pk in holders for c in queued[:3])
    # Five conversations, room for four (carla 1 for sales, ana 2, ben 1): the newest waits.
    assert list(Conversation.objects.filter(status=Conversation.Status.QUEUED)) == [queued[3]]


def _queue(tenant, bot, count: int, start, team=None) -> list[Conversation]:
    """``count`` conversations queued a minute apart from ``start``, oldest first."""
    queued = [ConversationFactory(tenant=tenant, bot=bot, team=team) for _ in range(count)]
    for minute, conversation in enumerate(queued):
        Conversation.objects.filter(pk=conversation.pk).update(
            status=Conversation.Status.QUEUED, queued_at=start + timedelta(minutes=minute)
        )
    return queued


def test_round_robin_gives_the_next_to_the_agent_longest_without_one(tenant, bot):
    """agents.md: among the available, the one whose last assignment is oldest goes first."""
    Tenant.objects.filter(pk=tenant.pk).update(
        assignment_policy=Tenant.AssignmentPolicy.ROUND_ROBIN
    )
    now = timezone.now()
    agents = [AgentProfileFactory(tenant=tenant, capacity=5) for _ in range(3)]
    for hours, profile in zip([1, 3, 2], agents, strict=True):  # longest ago: the second
        AgentProfile.objects.filter(pk=profile.pk).update(
            last_assigned_at=now - timedelta(hours=hours)
        )
    queued = _queue(tenant, bot, 6, now - timedelta(hours=1))

    assert services.queue_dispatch(tenant_id=tenant.pk) == 6

    holder = {
        c.pk: c.assigned_agent_id
        for c in Conversation.objects.filter(pk__in=[q.pk for q in queued])
    }
    order = [agents[1], agents[2], agents[0]]  # 3 h, 2 h, 1 h since their last one
    assert [holder[c.pk] for c in queued] == [p.user_id for p in order + order]


def test_a_conversation_whose_team_has_nobody_waits_and_the_ones_behind_it_are_served(tenant, bot):
    """agents.md: a conversation whose team has nobody available waits; the ones behind it
    are still served, however many wait for that team (a weekend's worth)."""
    Tenant.objects.filter(pk=tenant.pk).update(
        assignment_policy=Tenant.AssignmentPolicy.ROUND_ROBIN
    )
    billing = TeamFactory(tenant=tenant, name="Billing")  # nobody in it is online
    AgentProfileFactory(tenant=tenant, presence=AgentProfile.Presence.OFFLINE).teams.add(billing)
    anyone = AgentProfileFactory(tenant=tenant, capacity=5)
    start = timezone.now() - timedelta(days=2)
    for_billing = _queue(tenant, bot, 60, start, team=billing)
    behind = _queue(tenant, bot, 2, start + timedelta(days=1))

    assert services.queue_dispatch(tenant_id=tenant.pk) == 2

    assert set(
        Conversation.objects.filter(assigned_agent=anyone.user).values_list("pk", flat=True)
    ) == {c.pk for c in behind}
    waiting = Conversation.objects.filter(status=Conversation.Status.QUEUED)
    assert set(waiting.values_list("pk", flat=True)) == {c.pk for c in for_billing}


def test_presence_follows_the_consoles(tenant):
    profile = AgentProfileFactory(tenant=tenant, presence=AgentProfile.Presence.OFFLINE)
    services.agent_connected(profile=profile)
    services.agent_connected(profile=profile)
    profile.refresh_from_db()
    assert profile.presence == "online" and profile.connections == 2
    services.agent_disconnected(profile=profile)
    assert AgentProfile.objects.get(pk=profile.pk).presence == "online"
    services.agent_disconnected(profile=profile)
    assert AgentProfile.objects.get(pk=profile.pk).presence == "offline"


def test_a_silent_console_goes_offline(tenant):
    quiet = AgentProfileFactory(tenant=tenant, last_seen_at=timezone.now() - timedelta(minutes=5))
    alive = AgentProfileFactory(tenant=tenant)
    assert services.presence_sweep() == 1
    assert AgentProfile.objects.get(pk=quiet.pk).presence == "offline"
    assert AgentProfile.objects.get(pk=alive.pk).presence == "online"


def test_canned_responses_expand_by_shortcut(tenant, other_tenant):
    from tests.factories import CannedResponseFactory

    CannedResponseFactory(tenant=tenant, shortcut="hours", text="We open at 9.")
    CannedResponseFactory(tenant=other_tenant, shortcut="theirs", text="Not yours.")
    assert services.canned_expand(tenant_id=tenant.pk, text="/hours") == "We open at 9."
    assert services.canned_expand(tenant_id=tenant.pk, text=" /hours\n") == "We open at 9."
    # Only a text that is nothing but a shortcut is one.
    for text in ("/hours please", "see /hours", "/etc/hosts", "/"):
        assert services.canned_expand(tenant_id=tenant.pk, text=text) == text
    # Another tenant's shortcut is unknown here: refused, not sent as it is.
    for text in ("/theirs", "/nope"):
        with pytest.raises(ValidationFailed) as refused:
            services.canned_expand(tenant_id=tenant.pk, text=text)
        assert refused.value.code == "unknown_shortcut"
        assert refused.value.fields == {"text": [f"No canned response {text}; type / to see them."]}


def test_members_of_any_role_can_be_agents(tenant):
    owner = MembershipFactory(tenant=tenant, role="owner").user
    assert services.agent_profile(tenant_id=tenant.pk, user=owner).tenant_id == tenant.pk


# --- Every transition, from every door ---------------------------------------------------------


def visitor_says(conversation, text):
    from tests.conversations.receiving import visitor_says as says

    return says(conversation, text)


def test_the_visitor_asking_for_a_human_queues_the_conversation(conversation, agent):
    visitor_says(conversation, "talk to a human")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.QUEUED
    assert events(conversation) == [("bot", "queued", "visitor_request")]


def said_after(conversation, text):
    """(sender, text) of what the visitor was told after their message ``text``."""
    messages = list(
        Message.objects.filter(conversation=conversation)
        .order_by("created_at", "id")
        .values_list("direction", "sender", "text")
    )
    asked = max(n for n, m in enumerate(messages) if m == ("in", "contact", text))
    return [(sender, said) for _, sender, said in messages[asked + 1 :]]


HANDOFF_TEXT = default_text("handoff", "en")


def test_asking_for_a_person_when_one_can_come_tells_the_visitor_so(conversation, agent):
    visitor_says(conversation, "talk to a human")
    assert said_after(conversation, "talk to a human") == [("bot", HANDOFF_TEXT)]
    # The console's queue shows it as the conversation's last message.
    assert conversation_summary(conversation)["last_message"]["text"] == HANDOFF_TEXT


@pytest.mark.parametrize("why", ["nobody online", "outside the business hours"])
def test_asking_for_a_person_when_nobody_can_come_gets_only_the_away_message(tenant, why):
    """It said "I'm connecting you with a person" and at once "Our team is not available
    right now": two contrary things (a new user's walk through the test chat)."""
    if why == "nobody online":
        bot = launched_bot(tenant=tenant, business_hours=ALWAYS_OPEN)
    else:
        AgentProfileFactory(tenant=tenant)
        bot = launched_bot(tenant=tenant, business_hours={})
    conversation = ConversationFactory(tenant=tenant, bot=bot, bot_version=bot.published_version)
    visitor_says(conversation, "talk to a human")
    assert said_after(conversation, "talk to a human") == [("system", bot.away_message)]
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.QUEUED
    assert conversation_summary(conversation)["last_message"]["text"] == bot.away_message


def test_a_test_chat_says_that_no_agent_is_called(tenant, bot, agent):
    conversation = ConversationFactory(tenant=tenant, bot=bot, is_sandbox=True)
    visitor_says(conversation, "talk to a human")
    assert said_after(conversation, "talk to a human") == [
        ("bot", HANDOFF_TEXT),
        ("system", services.TEST_CHAT_HANDOFF),
    ]


def test_the_bots_fallback_limit_queues_the_conversation(conversation, agent):
    visitor_says(conversation, "hello")  # the greeting, then the menu waits
    for _ in range(10):
        visitor_says(conversation, "zzqx vlorp grnf")
        conversation.refresh_from_db()
        if conversation.status != Conversation.Status.BOT:
            break
    assert conversation.status == Conversation.Status.QUEUED
    assert conversation.handoff_reason == "fallback_limit"
    assert events(conversation) == [("bot", "queued", "fallback_limit")]


def test_a_second_hand_off_of_a_queued_conversation_changes_nothing(conversation, agent):
    services.conversation_hand_off(conversation=conversation, reason="flow")
    queued_at = Conversation.objects.get(pk=conversation.pk).queued_at
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    conversation.refresh_from_db()
    assert conversation.queued_at == queued_at and conversation.handoff_reason == "flow"
    assert len(events(conversation)) == 1


def test_an_agent_takes_over_from_the_queue(conversation, agent):
    services.conversation_hand_off(conversation=conversation, reason="flow")
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ASSIGNED
    assert conversation.assigned_agent == agent.user
    assert events(conversation)[-1] == ("queued", "assigned", "agent_takeover")


def test_take_over_of_an_assigned_conversation_is_refused(conversation, agent, tenant):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    other = AgentProfileFactory(tenant=tenant)
    with pytest.raises(Conflict) as refused:
        services.conversation_take_over(conversation=conversation, agent=other.user)
    assert refused.value.code == "already_assigned"
    assert Conversation.objects.get(pk=conversation.pk).assigned_agent == agent.user


def test_a_bot_conversation_cannot_be_claimed_transferred_replied_or_handed_back(
    conversation, agent, tenant
):
    for attempt, code in (
        (lambda: services.conversation_claim(conversation=conversation, agent=agent.user), None),
        (
            lambda: services.conversation_transfer(
                conversation=conversation, actor=agent.user, to_team=TeamFactory(tenant=tenant)
            ),
            "not_with_agents",
        ),
        (
            lambda: services.agent_reply(conversation=conversation, agent=agent.user, text="hi"),
            "not_assigned",
        ),
        (
            lambda: services.conversation_hand_back(conversation=conversation, actor=agent.user),
            "not_with_agents",
        ),
    ):
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == (code or "not_queued")
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.BOT
    assert events(conversation) == []


def test_a_queued_conversation_needs_a_claim_before_a_reply(conversation, agent):
    services.conversation_hand_off(conversation=conversation, reason="flow")
    with pytest.raises(Conflict) as refused:
        services.agent_reply(conversation=conversation, agent=agent.user, text="hi")
    assert refused.value.code == "not_assigned"
    assert not Message.objects.filter(sender=Message.Sender.AGENT).exists()


def test_a_queued_conversation_may_go_back_to_the_bot_or_be_resolved(tenant, bot, agent):
    first, second = (ConversationFactory(tenant=tenant, bot=bot) for _ in range(2))
    for conversation in (first, second):
        services.conversation_hand_off(conversation=conversation, reason="flow")
    services.conversation_hand_back(conversation=first, actor=agent.user)
    services.conversation_resolve(conversation=second, actor=agent.user)
    assert events(first)[-1] == ("queued", "bot", "handback")
    assert events(second)[-1] == ("queued", "resolved", "resolve")


def test_an_agent_of_another_tenant_is_refused_everywhere(conversation, agent, other_tenant):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    stranger = AgentProfileFactory(tenant=other_tenant).user
    for attempt in (
        lambda: services.conversation_take_over(conversation=conversation, agent=stranger),
        lambda: services.agent_reply(conversation=conversation, agent=stranger, text="hi"),
        lambda: services.note_add(conversation=conversation, author=stranger, text="psst"),
        lambda: services.conversation_transfer(
            conversation=conversation, actor=stranger, to_agent=stranger
        ),
        lambda: services.conversation_resolve(conversation=conversation, actor=stranger),
        lambda: services.conversation_hand_back(conversation=conversation, actor=stranger),
    ):
        with pytest.raises(NotFound):
            attempt()
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ASSIGNED
    assert conversation.assigned_agent == agent.user
    assert events(conversation) == [("bot", "assigned", "agent_takeover")]
    assert not conversation.notes.exists()
    assert not Message.objects.filter(sender=Message.Sender.AGENT).exists()


def test_another_agent_cannot_act_on_my_conversation_but_an_admin_can(conversation, agent, tenant):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    colleague = AgentProfileFactory(tenant=tenant).user
    for attempt in (
        lambda: services.conversation_resolve(conversation=conversation, actor=colleague),
        lambda: services.conversation_hand_back(conversation=conversation, actor=colleague),
        lambda: services.conversation_transfer(
            conversation=conversation, actor=colleague, to_agent=colleague
        ),
    ):
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "already_assigned"
    admin = MembershipFactory(tenant=tenant, role="admin").user
    services.conversation_transfer(conversation=conversation, actor=admin, to_agent=colleague)
    conversation.refresh_from_db()
    assert conversation.assigned_agent == colleague
    assert events(conversation)[-1] == ("assigned", "assigned", "transfer")


def test_over_capacity_refuses_take_over_and_transfer(tenant, bot, agent):
    agent.capacity = 1
    agent.save()
    mine, bots, theirs = (ConversationFactory(tenant=tenant, bot=bot) for _ in range(3))
    services.conversation_take_over(conversation=mine, agent=agent.user)
    with pytest.raises(Conflict) as refused:
        services.conversation_take_over(conversation=bots, agent=agent.user)
    assert refused.value.code == "over_capacity"
    colleague = AgentProfileFactory(tenant=tenant).user
    services.conversation_take_over(conversation=theirs, agent=colleague)
    with pytest.raises(Conflict) as refused:
        services.conversation_transfer(conversation=theirs, actor=colleague, to_agent=agent.user)
    assert refused.value.code == "over_capacity"
    assert Conversation.objects.get(pk=bots.pk).status == Conversation.Status.BOT
    assert Conversation.objects.get(pk=theirs.pk).assigned_agent == colleague


def test_round_robin_assigns_on_hand_off_and_when_an_agent_comes_online(
    tenant, bot, django_capture_on_commit_callbacks
):
    Tenant.objects.filter(pk=tenant.pk).update(
        assignment_policy=Tenant.AssignmentPolicy.ROUND_ROBIN
    )
    ana = AgentProfileFactory(tenant=tenant, capacity=1)
    first, second = (ConversationFactory(tenant=tenant, bot=bot) for _ in range(2))
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_hand_off(conversation=first, reason="flow")
    first.refresh_from_db()
    assert first.status == Conversation.Status.ASSIGNED and first.assigned_agent == ana.user
    assert events(first) == [("bot", "queued", "flow"), ("queued", "assigned", "auto_assign")]
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_hand_off(conversation=second, reason="flow")  # ana is full
    assert Conversation.objects.get(pk=second.pk).status == Conversation.Status.QUEUED
    ben = AgentProfileFactory(tenant=tenant, presence=AgentProfile.Presence.OFFLINE)
    with django_capture_on_commit_callbacks(execute=True):
        services.presence_set(profile=ben, presence=AgentProfile.Presence.ONLINE)
    assert Conversation.objects.get(pk=second.pk).assigned_agent == ben.user
    # Resolving frees ana's room; nothing waits, so nothing moves.
    services.conversation_resolve(conversation=first, actor=ana.user)
    assert services.queue_dispatch(tenant_id=tenant.pk) == 0


def test_the_claim_policy_never_assigns_by_itself(conversation, agent):
    services.conversation_hand_off(conversation=conversation, reason="flow")
    assert services.queue_dispatch(tenant_id=conversation.tenant_id) == 0
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.QUEUED


# --- Replies, notes, presence: bad input -----------------------------------------------------


def test_replies_and_notes_need_text_within_limits(conversation, agent):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    for text in ("", "   ", "x" * 4097):  # docs/agents.md: empty or over 4096 characters
        with pytest.raises(ValidationFailed) as refused:
            services.agent_reply(conversation=conversation, agent=agent.user, text=text)
        assert "text" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        services.note_add(conversation=conversation, author=agent.user, text=" ")
    assert "text" in refused.value.fields
    assert not Message.objects.filter(sender=Message.Sender.AGENT).exists()
    assert not conversation.notes.exists()
    reply = services.agent_reply(conversation=conversation, agent=agent.user, text="x" * 4096)
    assert len(reply.text) == 4096


def test_a_note_stays_with_the_agents(conversation, agent):
    services.conversation_take_over(conversation=conversation, agent=agent.user)
    before = Message.objects.filter(conversation=conversation).count()
    note = services.note_add(conversation=conversation, author=agent.user, text="VIP customer")
    assert note.conversation == conversation and note.author == agent.user
    assert Message.objects.filter(conversation=conversation).count() == before


def test_presence_must_be_a_known_value(agent):
    with pytest.raises(ValidationFailed) as refused:
        services.presence_set(profile=agent, presence="busy")
    assert "presence" in refused.value.fields
    assert AgentProfile.objects.get(pk=agent.pk).presence == "online"


def test_an_agent_who_chose_away_stays_away_when_a_console_opens(tenant):
    profile = AgentProfileFactory(tenant=tenant, presence=AgentProfile.Presence.AWAY)
    services.agent_connected(profile=profile)
    assert AgentProfile.objects.get(pk=profile.pk).presence == "away"


# --- Away: nobody online, or out of hours ------------------------------------------------------


def test_an_away_agent_counts_as_nobody(conversation, tenant):
    AgentProfileFactory(tenant=tenant, presence=AgentProfile.Presence.AWAY)
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    assert Message.objects.filter(conversation=conversation, data__away=True).exists()


def test_an_agent_online_outside_the_handoffs_team_can_still_take_it(conversation, tenant, agent):
    """The team's only agent is offline, another is online: the visitor is told a person is
    coming, not that nobody is there, since that agent sees them waiting and may claim (a new
    agent, in no team, was online while the visitor got the away message)."""
    billing = TeamFactory(tenant=tenant, name="Billing")  # ``agent`` is not in it
    offline = AgentProfileFactory(tenant=tenant, presence=AgentProfile.Presence.OFFLINE)
    offline.teams.add(billing)
    services.conversation_hand_off(
        conversation=conversation, reason="flow", team="Billing", text="Billing will join."
    )
    said = Message.objects.filter(conversation=conversation).values_list("sender", "text")
    assert list(said) == [("bot", "Billing will join.")]
    services.conversation_claim(conversation=conversation, agent=agent.user)
    assert Conversation.objects.get(pk=conversation.pk).team == billing


@pytest.mark.parametrize("ticket_after_hours,tickets", [(True, 1), (False, 0)])
def test_out_of_hours_the_away_form_makes_a_lead_and_maybe_a_ticket(
    tenant, agent, ticket_after_hours, tickets
):
    from support.models import Ticket

    bot = launched_bot(tenant=tenant, business_hours={}, ticket_after_hours=ticket_after_hours)
    conversation = ConversationFactory(tenant=tenant, bot=bot)
    visitor_says(conversation, "talk to a human")
    assert Message.objects.filter(conversation=conversation, data__away=True).count() == 1
    lead = services.away_contact_leave(
        conversation=conversation, fields={"name": "Bo", "phone": "+34 600 000 000"}
    )
    assert lead.source == Lead.Source.AWAY_FORM and lead.contact == conversation.contact
    assert Ticket.objects.filter(lead=lead, bot=bot).count() == tickets


def test_the_sandbox_never_records_an_away_lead(tenant, bot):
    conversation = ConversationFactory(tenant=tenant, bot=bot, is_sandbox=True)
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    assert Message.objects.filter(conversation=conversation, data__away=True).exists()
    with pytest.raises(Conflict):
        services.away_contact_leave(conversation=conversation, fields={"email": "a@example.com"})
    assert not Lead.objects.exists()


# --- Timestamps for stats ----------------------------------------------------------------------


def test_the_timestamps_follow_the_handoff(conversation, agent):
    assert conversation.queued_at is None
    services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    services.conversation_claim(conversation=conversation, agent=agent.user)
    services.agent_reply(conversation=conversation, agent=agent.user, text="Hi")
    services.conversation_hand_back(conversation=conversation, actor=agent.user)
    first = Conversation.objects.get(pk=conversation.pk)
    assert first.queued_at <= first.assigned_at <= first.first_agent_response_at
    assert first.resolved_at is None
    answered = first.first_agent_response_at
    # A new handoff starts the stats over; the events keep the first one.
    services.conversation_hand_off(conversation=first, reason="visitor_request")
    second = Conversation.objects.get(pk=conversation.pk)
    assert second.queued_at > answered
    assert second.assigned_at is None and second.first_agent_response_at is None
    services.conversation_claim(conversation=second, agent=agent.user)
    services.conversation_resolve(conversation=second, actor=agent.user)
    done = Conversation.objects.get(pk=conversation.pk)
    assert done.queued_at <= done.assigned_at <= done.resolved_at
    assert done.first_agent_response_at is None  # nobody answered this time
    reasons = [e[2] for e in events(conversation)]
    assert reasons == [
        "visitor_request",
        "claim",
        "handback",
        "visitor_request",
        "claim",
        "resolve",
    ]


def test_a_transfer_to_a_teams_queue_times_the_next_first_response_from_there(
    conversation, agent, tenant
):
    """The first response kept from before the transfer came before the new queueing: the
    statistics read it as 0 s (a new agent's walk: "First agent response, median: 0 s")."""
    from stats.services import stats_rebuild, stats_report

    colleague = AgentProfileFactory(tenant=tenant)
    start = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        services.conversation_hand_off(conversation=conversation, reason="visitor_request")
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        services.conversation_claim(conversation=conversation, agent=agent.user)
        services.agent_reply(conversation=conversation, agent=agent.user, text="Hi")
    billing = TeamFactory(tenant=tenant, name="Billing")
    with time_machine.travel(start + timedelta(seconds=20), tick=False):
        services.conversation_transfer(conversation=conversation, actor=agent.user, to_team=billing)
    moved = Conversation.objects.get(pk=conversation.pk)
    assert moved.first_agent_response_at is None and moved.assigned_at is None
    with time_machine.travel(start + timedelta(seconds=50), tick=False):
        services.conversation_claim(conversation=moved, agent=colleague.user)
        services.agent_reply(conversation=moved, agent=colleague.user, text="Billing here")
    done = Conversation.objects.get(pk=conversation.pk)
    assert (done.first_agent_response_at - done.queued_at).total_seconds() == 30
    stats_rebuild(tenant_id=tenant.pk, start=start.date(), end=start.date())
    report = stats_report(tenant=tenant.pk, start=start.date(), end=start.date())
    assert report["totals"]["first_response_median_seconds"] == 30


def test_the_sweep_puts_a_silent_agents_conversations_back_in_the_queue(
    tenant, bot, django_capture_on_commit_callbacks
):
    gone = AgentProfileFactory(tenant=tenant)
    held, waiting = (ConversationFactory(tenant=tenant, bot=bot) for _ in range(2))
    services.conversation_hand_off(conversation=held, reason="flow")
    services.conversation_claim(conversation=held, agent=gone.user)
    queued_at = Conversation.objects.get(pk=held.pk).queued_at
    AgentProfile.objects.filter(pk=gone.pk).update(
        last_seen_at=timezone.now() - timedelta(minutes=5), connections=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.presence_sweep() == 1
    held.refresh_from_db()
    assert held.status == Conversation.Status.QUEUED and held.assigned_agent is None
    assert held.queued_at == queued_at  # it keeps its place in the queue
    assert events(held)[-1] == ("assigned", "queued", "agent_offline")
    assert events(waiting) == []


def test_a_late_heartbeat_brings_a_swept_agent_back_but_a_chosen_offline_stays(tenant):
    swept = AgentProfileFactory(tenant=tenant, last_seen_at=timezone.now() - timedelta(hours=1))
    services.presence_sweep()
    services.presence_heartbeat(profile=swept)
    swept.refresh_from_db()
    assert swept.presence == "online" and swept.connections == 1
    chosen = AgentProfileFactory(tenant=tenant)
    services.agent_connected(profile=chosen)
    services.presence_set(profile=chosen, presence=AgentProfile.Presence.OFFLINE)
    services.presence_heartbeat(profile=chosen)
    assert AgentProfile.objects.get(pk=chosen.pk).presence == "offline"


def test_the_after_hours_template_says_its_own_words_and_opens_one_ticket(tenant):
    """Outside the hours the template takes the visitor's email and problem itself, then hands
    off with its own words. The away message and a second form asking the same details came
    instead (two leads for one visitor), and its "Your ticket is open" was never said (a shop
    owner's walk)."""
    from bots.gallery import flow_template
    from support.models import Ticket

    template = flow_template("after_hours")
    bot = launched_bot(
        tenant=tenant, draft_definition=template.definition, business_hours={},
        **template.bot_fields,
    )  # fmt: skip
    conversation = ConversationFactory(tenant=tenant, bot=bot, bot_version=bot.published_version)
    visitor_says(conversation, "hello")
    visitor_says(conversation, "ana@example.com")
    visitor_says(conversation, "The app crashes when I sign in")
    assert said_after(conversation, "The app crashes when I sign in") == [
        ("bot", "Thanks! Your ticket is open: we'll answer at ana@example.com when we're back.")
    ]
    assert not Message.objects.filter(conversation=conversation, sender="system").exists()
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.QUEUED  # for the agents in the morning
    lead = Lead.objects.get(conversation=conversation)
    ticket = Ticket.objects.get()
    assert (ticket.lead, ticket.reporter_email) == (lead, "ana@example.com")
    assert "\nProblem: The app crashes when I sign in" in ticket.description


def test_the_flows_own_words_need_the_visitors_details_when_nobody_can_come(tenant):
    """A flow's handoff node with its own text, but no details taken: nobody can come, so
    the away message (and its form) as for any handoff."""
    definition = {
        "start": "agent",
        "nodes": {"agent": {"type": "handoff", "reason": "support", "text": "Getting Sam."}},
    }
    bot = launched_bot(tenant=tenant, draft_definition=definition, business_hours={})
    conversation = ConversationFactory(tenant=tenant, bot=bot, bot_version=bot.published_version)
    visitor_says(conversation, "hello")
    assert said_after(conversation, "hello")[-1] == ("system", bot.away_message)
