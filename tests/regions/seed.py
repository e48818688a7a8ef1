"""What the two-deployment test puts in each region's database, run inside that deployment's
own settings (``manage.py shell -c``); prints what the test needs as one line of JSON.

Written through the services and the factories, as the other tests write rows."""

from __future__ import annotations

import json

from bots.services import bot_publish
from chattonic.tenancy.models import Tenant
from chattonic.tenancy.services import api_key_create, tenant_create
from messaging.connectors import CONNECTORS
from tests.factories import (
    BotFactory,
    ContactFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    TicketFactory,
    launched_bot,
    trained,
)
from tests.fakes.channels import make_channel

SITE = "http://127.0.0.1"
TENANT = "globex"


def _bot_with_channels(tenant: Tenant, name: str, origins: list[str]) -> dict:
    bot = launched_bot(tenant=tenant, name=name, allowed_origins=origins)
    return {
        "id": bot.pk,
        "public_key": bot.public_key,
        "channels": {kind: make_channel(kind, bot=bot).pk for kind in CONNECTORS},
    }


def seed_home(origins: list[str]) -> None:
    """The tenant's home region: the tenant and its owner, an API key, a launched bot with a
    channel of every kind and a conversation with everything that hangs on one, a draft."""
    tenant = tenant_create(
        name="Globex", slug=TENANT, owner_email="owner@globex.example", owner_password="x9!Pw-home"
    )
    _, key = api_key_create(tenant=tenant, name="CRM", scopes=["admin"])
    live = _bot_with_channels(tenant, "Support", origins)
    contact = ContactFactory(tenant=tenant)
    conversation = ConversationFactory(tenant=tenant, bot_id=live["id"], contact=contact)
    MessageFactory(tenant=tenant, conversation=conversation, text="my parcel is late")
    LeadFactory(tenant=tenant, contact=contact)
    TicketFactory(tenant=tenant)
    draft = BotFactory(tenant=tenant, name="Draft")
    trained(bot_publish(bot=draft, note="first"))  # as the worker would
    print(json.dumps({"api_key": key, "bot": live, "draft": draft.pk}))


def seed_away(origins: list[str]) -> None:
    """The other region, once it has the tenant's identity rows: an API key of its own and a
    launched bot with a channel of every kind."""
    tenant = Tenant.objects.get(slug=TENANT)
    _, key = api_key_create(tenant=tenant, name="CRM Europe", scopes=["admin"])
    print(json.dumps({"api_key": key, "bot": _bot_with_channels(tenant, "Europa", origins)}))


def seed_widget(origin: str) -> None:
    """A tenant of this region with a launched bot that the page at ``origin`` may show."""
    tenant = tenant_create(
        name="Initech",
        slug="initech",
        owner_email="owner@initech.example",
        owner_password="x9!Pw-eu",
    )
    bot = launched_bot(
        tenant=tenant,
        name="Frankfurt help",
        allowed_origins=[origin],
        welcome_text="Willkommen, this chat is served in Frankfurt.",
        business_hours={
            day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        },
    )
    print(json.dumps({"id": bot.pk, "public_key": bot.public_key}))
