"""The dashboard's home: a tenant's figures (the statistics' own numbers), the setup checklist
that ticks each step as it is done and links to the page that does it, the grouped navigation
with the statistics in it; the operators' home."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from bots.services import bot_embedded, bot_launch, bot_publish
from conversations.models import Conversation
from stats.services import stats_rebuild
from support.models import Ticket
from tests.factories import (
    BotFactory,
    ChannelFactory,
    ConversationFactory,
    MessageFactory,
    TenantFactory,
    TicketFactory,
    launched_bot,
    trained,
)

pytestmark = pytest.mark.django_db


def home(client) -> str:
    response = client.get("/dashboard/")
    assert response.status_code == 200
    return response.content.decode()


def steps(page: str) -> list[tuple[str, str]]:
    """(state, title) of each step of the checklist, in order."""
    return re.findall(
        r'<li class="ct-(done|todo)">.*?<span class="ct-step-title">([^<]+)</span>', page, re.S
    )


def step_links(page: str, title: str) -> list[str]:
    item = re.search(
        r'<span class="ct-step-title">' + re.escape(title) + r"</span>(.*?)</li>", page, re.S
    )
    return re.findall(r'href="([^"]+)"', item.group(1))


def figure(page: str, label: str) -> str:
    match = re.search(
        r'<span class="ct-figure-value">([^<]+)</span>(?:</a>)?\s*'
        r'<span class="ct-figure-label">' + re.escape(label),
        page,
    )
    assert match, f"no figure {label!r}"
    return match.group(1)


def test_a_new_tenant_sees_every_step_to_do_with_a_link_to_start(owner_client):
    page = home(owner_client)
    assert [state for state, _ in steps(page)] == ["todo"] * 5
    assert [title for _, title in steps(page)] == [
        "Create a bot",
        "Publish it",
        "Launch it",
        "Put it on your site or connect a channel",
        "Have a first conversation",
    ]
    assert step_links(page, "Create a bot") == [reverse("admin:bots_bot_add")]
    assert "Set up (0 of 5 done)" in page


def test_each_step_is_ticked_when_it_is_done_and_links_to_its_page(owner_client, tenant):
    bot = BotFactory(tenant=tenant)
    page = home(owner_client)
    assert [state for state, _ in steps(page)] == ["done", "todo", "todo", "todo", "todo"]
    bot_page = reverse("admin:bots_bot_change", args=[bot.pk])
    assert step_links(page, "Publish it") == [f"{bot_page}#ct-publish"]
    assert step_links(page, "Launch it") == [f"{bot_page}#ct-status-title"]
    assert step_links(page, "Put it on your site or connect a channel") == [
        f"{bot_page}#ct-embed-code",
        reverse("admin:messaging_channel_add"),
    ]

    trained(bot_publish(bot=bot))
    assert [s for s, _ in steps(home(owner_client))] == ["done", "done", "todo", "todo", "todo"]
    bot_launch(bot=bot)
    page = home(owner_client)
    assert [s for s, _ in steps(page)] == ["done", "done", "done", "todo", "todo"]
    assert reverse("webchat-demo", args=[bot.public_key]) in step_links(
        page, "Have a first conversation"
    )

    bot.refresh_from_db()
    bot_embedded(bot=bot, origin="https://shop.example.com/")
    page = home(owner_client)
    assert [s for s, _ in steps(page)] == ["done", "done", "done", "done", "todo"]
    assert "first visit from https://shop.example.com." in page

    ConversationFactory(tenant=tenant, bot=bot, is_sandbox=True)
    assert [s for s, _ in steps(home(owner_client))][-1] == "todo"  # a test chat is no visit
    ConversationFactory(tenant=tenant, bot=bot)
    page = home(owner_client)
    assert [s for s, _ in steps(page)] == ["done"] * 5
    assert "Set up (5 of 5 done)" in page


def test_a_connected_channel_also_ticks_the_fourth_step(owner_client, tenant):
    ChannelFactory(tenant=tenant, bot=BotFactory(tenant=tenant), name="Shop Telegram")
    page = home(owner_client)
    assert steps(page)[3] == ("done", "Put it on your site or connect a channel")
    assert "Shop Telegram (Telegram) is connected." in page


def test_a_whatsapp_channel_is_connected_once_a_message_came_in_not_when_saved(
    owner_client, tenant
):
    """Meta's webhook is set in Meta's dashboard: a saved channel is not yet reached (the
    home said "connected" for a channel Meta had never called)."""
    bot = BotFactory(tenant=tenant)
    channel = ChannelFactory(tenant=tenant, bot=bot, kind="whatsapp", name="Shop WhatsApp")
    page = home(owner_client)
    assert steps(page)[3] == ("todo", "Put it on your site or connect a channel")
    assert "is connected" not in page
    assert (
        "Shop WhatsApp (WhatsApp Cloud API) is saved, but WhatsApp Cloud API has not reached "
        "it yet: finish its set-up as its page says, then send it a message." in page
    )
    assert f'href="/dashboard/messaging/channel/{channel.pk}/change/"' in page
    conversation = ConversationFactory(tenant=tenant, bot=bot, channel=channel)
    MessageFactory(tenant=tenant, conversation=conversation, channel=channel, direction="out")
    assert steps(home(owner_client))[3][0] == "todo"  # we wrote; nobody reached us yet
    MessageFactory(tenant=tenant, conversation=conversation, channel=channel, direction="in")
    page = home(owner_client)
    assert steps(page)[3] == ("done", "Put it on your site or connect a channel")
    assert "Shop WhatsApp (WhatsApp Cloud API) is connected." in page


def test_another_tenants_progress_does_not_tick_ours(owner_client, other_tenant):
    bot = BotFactory(tenant=other_tenant)
    trained(bot_publish(bot=bot))
    bot_launch(bot=bot)
    ConversationFactory(tenant=other_tenant, bot=bot)
    assert [s for s, _ in steps(home(owner_client))] == ["todo"] * 5


# Midday: "20 minutes ago" is today (the test failed from 00:00 to 00:20 UTC).
@time_machine.travel(datetime(2026, 6, 3, 12, 0, tzinfo=UTC), tick=True)
def test_the_figures_are_the_statistics_numbers_and_the_live_counts(owner_client, tenant):
    bot = BotFactory(tenant=tenant)
    now = timezone.now()
    for index in range(4):
        # Two of four handed off; one answered by an agent 90 s after the handoff.
        queued = now - timedelta(minutes=10) if index < 2 else None
        ConversationFactory(
            tenant=tenant,
            bot=bot,
            created_at=now - timedelta(minutes=20),
            queued_at=queued,
            status=Conversation.Status.QUEUED if index == 0 else Conversation.Status.BOT,
            first_agent_response_at=queued + timedelta(seconds=90) if index == 1 else None,
        )
    ConversationFactory(tenant=tenant, bot=bot, is_sandbox=True, status="queued")
    TicketFactory(tenant=tenant, status=Ticket.Status.OPEN)
    TicketFactory(tenant=tenant, status=Ticket.Status.WAITING)
    TicketFactory(tenant=tenant, status=Ticket.Status.CLOSED)
    other = TenantFactory()
    TicketFactory(tenant=other, status=Ticket.Status.OPEN)
    today = now.astimezone(UTC).date()
    stats_rebuild(tenant_id=tenant.pk, start=today, end=today)

    page = home(owner_client)
    assert figure(page, "Conversations today") == "4"
    assert figure(page, "Waiting for an agent") == "1"  # the sandbox's queue is no one's
    assert figure(page, "Contained by the bot (7 days)") == "50 %"
    assert figure(page, "Handed to agents (7 days)") == "50 %"
    assert figure(page, "First agent response, median (7 days)") == "1 min 30 s"
    assert figure(page, "Open support tickets") == "2"


def test_the_navigation_groups_pages_under_human_names_with_the_statistics(owner_client):
    page = home(owner_client)
    nav = page[page.index('id="ct-pages"') :]
    captions = re.findall(r'<span class="section">([^<]+)</span>', nav)
    assert captions == ["Conversations", "Bots and channels", "Team", "Support", "Settings"]
    names = re.findall(r'<th scope="row" id="[^"]+">\s*<a href="[^"]+"[^>]*>([^<]+)</a>', nav)
    assert {"Statistics", "Handoff log", "Agents", "Staff members", "Tickets"} <= set(names)
    for internal in ("Agent profiles", "Privacy audits", "Handoff events", "Bot versions"):
        assert internal not in names
    assert f'href="{reverse("admin:stats_dailystat_changelist")}"' in nav
    # On every other page the sidebar holds the same groups.
    other = owner_client.get(reverse("admin:bots_bot_changelist")).content.decode()
    sidebar = other[other.index('id="nav-sidebar"') :]
    assert ">Statistics</a>" in sidebar and ">Bots and channels</span>" in sidebar


def test_the_header_links_the_agent_console_not_a_view_site_back_here(owner_client):
    page = home(owner_client)
    tools = page[page.index('id="user-tools"') :]
    tools = tools[: tools.index("</div>")]
    assert '<a href="/console/">Agent console</a>' in tools
    assert "View site" not in tools


def test_an_operator_gets_the_platforms_figures_and_every_app(client, tenant):
    TenantFactory()
    BotFactory(tenant=tenant)
    operator = get_user_model().objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(operator)
    page = home(client)
    assert figure(page, "Tenants") == "2"
    assert 'class="ct-checklist"' not in page
    for app in ("Authentication and Authorization", "Backups", "Bots"):
        assert f">{app}</a>" in page


def test_the_bots_page_says_where_the_widget_was_first_seen(owner_client, tenant):
    bot = launched_bot(tenant=tenant)
    page = reverse("admin:bots_bot_change", args=[bot.pk])
    assert "First visit from" not in owner_client.get(page).content.decode()
    bot_embedded(bot=bot, origin="https://shop.example.com")
    assert (
        "First visit from <strong>https://shop.example.com</strong>"
        in owner_client.get(page).content.decode()
    )
