"""The handoff state machine: every transition and every refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import services
from agents.models import AgentProfile, HandoffEvent
from chattonic.core.errors import Conflict, NotFound, ValidationFailed
from chattonic.tenancy.models import Tenant
from conversations.models import Conversation, Lead, Message
from tests.factories import (
    AgentProfileFactory,
    ConversationFactory,
    MembershipFactory,
    TeamFactory,
    launched_bot,
)

pytestmark = pytest.mark.django_db

ALWAYS_OPEN = {
    day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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
    assert services.canned_expand(tenant_id=tenant.pk, text="/theirs") == "/theirs"
    assert services.canned_expand(tenant_id=tenant.pk, text="/hours please") == "/hours please"


def test_members_of_any_role_can_be_agents(tenant):
    owner = MembershipFactory(tenant=tenant, role="owner").user
    assert services.agent_profile(tenant_id=tenant.pk, user=owner).tenant_id == tenant.pk
