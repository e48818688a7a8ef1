"""What the fuzz suite sends its inputs at: a tenant with a launched bot, a channel of every
kind, an admin API key, an agent with a session, and a few of every object the API names."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.test import Client

ORIGIN = "https://shop.example.com"
ALWAYS_OPEN = {
    day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@dataclass
class World:
    tenant_id: int
    bot_public_key: str
    channels: dict[str, int]  # kind -> channel id
    api_secret: str
    agent_cookie: str
    conversations: list[int]  # web chat conversations handed to the agent
    agents: list[int]
    ids: dict[str, list[int]] = field(default_factory=dict)  # API resource -> ids


def world_create() -> World:
    """Create it (in the database of the run)."""
    from agents import services as agent_services
    from chattonic.tenancy.services import api_key_create
    from conversations.models import Conversation
    from tests.factories import (
        ContactFactory,
        ConversationFactory,
        LeadFactory,
        MembershipFactory,
        TenantFactory,
        TicketFactory,
        launched_bot,
    )
    from tests.fakes.channels import make_channel

    tenant = TenantFactory()
    bot = launched_bot(tenant=tenant, allowed_origins=[ORIGIN], business_hours=ALWAYS_OPEN)
    channels = {
        kind: make_channel(kind, bot=bot).pk
        for kind in ("whatsapp", "messenger", "telegram", "twilio", "api")
    }
    owner = MembershipFactory(tenant=tenant, role="owner").user
    _, secret = api_key_create(tenant=tenant, name="fuzz", scopes=["admin"], created_by=owner)
    agent = MembershipFactory(tenant=tenant, role="agent").user
    client = Client()
    client.force_login(agent)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    agent_services.agent_profile(tenant_id=tenant.pk, user=agent)

    conversations = []
    for _ in range(3):
        conversation = ConversationFactory(
            tenant=tenant,
            bot=bot,
            bot_version=bot.published_version,
            contact=ContactFactory(tenant=tenant),
            status=Conversation.Status.ASSIGNED,
            assigned_agent=agent,
        )
        conversations.append(conversation.pk)
    contacts = [ContactFactory(tenant=tenant).pk for _ in range(3)]
    leads = [LeadFactory(tenant=tenant, bot=bot).pk for _ in range(3)]
    tickets = [TicketFactory(tenant=tenant).pk for _ in range(2)]
    second = launched_bot(tenant=tenant, name="Second bot")
    return World(
        tenant_id=tenant.pk,
        bot_public_key=bot.public_key,
        channels=channels,
        api_secret=secret,
        agent_cookie=cookie,
        conversations=conversations,
        agents=[agent.pk, owner.pk],
        ids={
            # Not the web chat's bot: the API may pause or change what it names.
            "bots": [second.pk],
            "versions": [1, 2],
            "contacts": contacts,
            "conversations": conversations,
            "leads": leads,
            "tickets": tickets,
        },
    )
