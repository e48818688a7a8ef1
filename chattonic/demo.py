"""The demo tenant that ``make run`` loads, so a new user has something to open."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from agents.models import AgentProfile, CannedResponse, Team
from bots import services as bot_services
from bots.models import Bot
from bots.selectors import bot_has_unpublished_changes
from chattonic.tenancy import services as tenancy_services
from chattonic.tenancy.models import Membership, Tenant

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.example"
DEMO_AGENT_EMAIL = "agent@demo.example"
DEMO_PASSWORD = "chattonic-demo"  # noqa: S105 - the local demo's printed sign-in
DEMO_BOT_NAME = "Acme assistant"
DEMO_FLOW = Path(__file__).with_name("demo_flow.json")
DEMO_BASE_URL = "http://localhost:8000"  # what the flow file's HTTP node points at
ALL_WEEK = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
# The demo bot's conversation settings (bot fields: a flow carries none).
DEMO_SETTINGS = {
    "welcome_text": "Hi {{name|there}}! I am the Acme assistant.",
    "fallback_text": "Sorry, I didn't get that. You can ask about an order, prices or our hours.",
    "handoff_text": "One moment, I'm getting a person from our team.",
    "fallback_limit": 2,
    "intent_threshold": 0.3,
    "default_language": "en",
}


@dataclass
class Demo:
    tenant: Tenant
    owner_email: str
    password: str
    bot: object = None
    agent_email: str = DEMO_AGENT_EMAIL


def demo_flow(base_url: str = DEMO_BASE_URL) -> dict:
    """The demo bot's flow, its order lookup pointed at ``base_url``'s demo endpoint."""
    text = DEMO_FLOW.read_text()
    return json.loads(text.replace(DEMO_BASE_URL, base_url.rstrip("/")))


def _demo_password(user) -> None:
    """The demo password, set only where it is not the password already: setting it again
    makes a new hash (a new salt), and a session is bound to its user's hash, so every start
    of ``make run`` (``runplatform`` loads the demo each time) signed the demo's users out."""
    if not user.has_usable_password() or not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)


DEMO_CANNED = {
    "hours": "We answer every day, around the clock.",
    "shipping": "Orders ship within 2 working days; you get the tracking link by email.",
    "thanks": "Thank you for your patience! Is there anything else I can do for you?",
}


def _demo_agent(tenant: Tenant):
    user_model = get_user_model()
    user = user_model.objects.filter(username=DEMO_AGENT_EMAIL).first()
    if user is None:
        user = user_model(username=DEMO_AGENT_EMAIL, email=DEMO_AGENT_EMAIL)
    # What visitors see beside the agent's messages; a name the agent chose in the console
    # stays.
    user.first_name = user.first_name or "Sam"
    _demo_password(user)
    user.is_active = True
    user.save()
    Membership.objects.get_or_create(
        user=user, defaults={"tenant": tenant, "role": Membership.Role.AGENT, "owns_account": True}
    )
    support, _ = Team.objects.get_or_create(tenant=tenant, name="support")
    profile, _ = AgentProfile.objects.get_or_create(tenant=tenant, user=user)
    profile.teams.add(support)
    for shortcut, text in DEMO_CANNED.items():  # the console's picker: type "/"
        CannedResponse.objects.get_or_create(
            tenant=tenant, shortcut=shortcut, defaults={"text": text}
        )


def _demo_bot(tenant: Tenant, base_url: str):
    definition = demo_flow(base_url)
    bot = Bot.objects.for_tenant(tenant).filter(name=DEMO_BOT_NAME).first()
    if bot is None:
        bot = bot_services.bot_create(
            tenant=tenant,
            name=DEMO_BOT_NAME,
            definition=definition,
            title="Acme",
            business_hours=ALL_WEEK,
            **DEMO_SETTINGS,
        )
    else:
        changed = {k: v for k, v in DEMO_SETTINGS.items() if getattr(bot, k) != v}
        if changed:
            bot = bot_services.bot_update(bot=bot, **changed)
        if bot.draft_definition != definition:
            bot = bot_services.draft_update(bot=bot, definition=definition)
    if bot_has_unpublished_changes(bot):
        version = bot_services.bot_publish(bot=bot, note="The demo flow")
        # Live before the worker starts: trained here, as the worker would (a small bot).
        bot_services.bot_version_train(version_id=version.pk)
    bot.refresh_from_db()
    if bot.status != Bot.Status.LAUNCHED:
        bot = bot_services.bot_launch(bot=bot)
    return bot


@transaction.atomic
def demo_load(base_url: str = DEMO_BASE_URL) -> Demo:
    """Create the demo tenant, its owner, an agent and the demo bot, or bring them back to
    their known state (idempotent: ``make run`` calls it at every start)."""
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        tenant = tenancy_services.tenant_create(
            name="Demo Company",
            slug=DEMO_SLUG,
            owner_email=DEMO_OWNER_EMAIL,
            owner_password=DEMO_PASSWORD,
        )
    owner = Membership.objects.for_tenant(tenant).get(user__username=DEMO_OWNER_EMAIL).user
    _demo_password(owner)
    owner.is_active = True
    owner.save(update_fields=["password", "is_active"])
    _demo_agent(tenant)
    bot = _demo_bot(tenant, base_url)
    return Demo(tenant=tenant, owner_email=DEMO_OWNER_EMAIL, password=DEMO_PASSWORD, bot=bot)


def demo_urls(base_url: str, demo: Demo) -> list[tuple[str, str]]:
    """What ``make run`` prints: a label and a URL for each door."""
    base_url = base_url.rstrip("/")
    return [
        ("Dashboard", f"{base_url}/dashboard/"),
        ("Widget demo page", f"{base_url}/demo/{demo.bot.public_key}/"),
        ("Agent console", f"{base_url}/console/"),
        ("Bot test chat", f"{base_url}/dashboard/bots/bot/{demo.bot.pk}/test/"),
        ("API docs", f"{base_url}/api/docs/"),
        ("Readiness", f"{base_url}/readyz"),
    ]
