"""Every page of every model a tenant owner has in the dashboard, walked as that owner on a
populated tenant (the demo's, plus a channel of each kind, conversations with messages,
contacts, leads, tickets, agents...): the home, each list, each add page and a change page of
an object of each model answer 200 (an add page the owner may not use, 403); none shows a
setting as raw JSON; no list shows a code where its model has a human label.

The models come from the admin's registry and their objects from tests/factories.py: a
model registered tomorrow is walked without a change here (and fails it until it has a
factory)."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.test import RequestFactory
from django.urls import reverse

from agents.models import HandoffEvent
from chattonic.demo import DEMO_OWNER_EMAIL, DEMO_PASSWORD, demo_load
from chattonic.tenancy.admin import TenantAwareAdmin
from conversations.models import ChannelKind, Conversation, Message
from privacy.models import PrivacyAudit
from privacy.services import contact_export
from tests import factories
from tests.bots.test_dashboard_walk import Page
from tests.chattonic.test_dashboard_scope import OBJECT_PAGE_REDIRECTS, one_of

pytestmark = pytest.mark.django_db

# Settings a tenant edits as JSON on purpose (power users): the flow's import and export.
JSON_ALLOWED: set[tuple[str, str]] = set()


def owner_admins(tenant, user):
    """(model, admin) of every registered model that this owner may open in the dashboard."""
    request = RequestFactory().get("/dashboard/")
    request.user, request.membership, request.tenant = user, user.membership, tenant
    return sorted(
        (
            (model, model_admin)
            for model, model_admin in admin.site._registry.items()
            if isinstance(model_admin, TenantAwareAdmin)
            and model_admin.has_module_permission(request)
        ),
        key=lambda item: item[0]._meta.label,
    ), request


def populate(tenant, bot) -> None:
    """Something of everything an owner reads, the way the doors would leave it."""
    channels = [
        factories.ChannelFactory(tenant=tenant, bot=bot, kind=kind, name=f"Shop {label}")
        for kind, label in ChannelKind.choices
        if kind != ChannelKind.WEBCHAT
    ]
    statuses = list(Conversation.Status)
    for index in range(8):
        channel = channels[index % len(channels)] if index % 2 else None
        status = statuses[index % len(statuses)]
        conversation = factories.ConversationFactory(
            tenant=tenant,
            bot=bot,
            channel=channel,
            channel_kind=channel.kind if channel else ChannelKind.WEBCHAT,
            status=status,
            handoff_reason=(
                HandoffEvent.Reason.VISITOR_REQUEST if status != Conversation.Status.BOT else ""
            ),
        )
        factories.MessageFactory(tenant=tenant, conversation=conversation, text="Where is it?")
        out = factories.MessageFactory(
            tenant=tenant,
            conversation=conversation,
            direction=Message.Direction.OUT,
            sender=Message.Sender.BOT,
            status=Message.Status.SENT,
            channel=channel,
            text="Let me check.",
        )
        if channel:
            factories.DeliveryAttemptFactory(tenant=tenant, channel=channel, message=out)
        factories.LeadFactory(
            tenant=tenant,
            contact=conversation.contact,
            conversation=conversation,
            bot=bot,
            channel_kind=conversation.channel_kind,
        )
        factories.HandoffEventFactory(
            tenant=tenant, conversation=conversation, reason=HandoffEvent.Reason.VISITOR_REQUEST
        )
    factories.TicketFactory(tenant=tenant, bot=bot)
    factories.AgentProfileFactory(tenant=tenant)
    factories.InvitationFactory(tenant=tenant)
    factories.ApiKeyFactory(tenant=tenant)
    factories.LeadWebhookFactory(tenant=tenant)
    contact_export(contact=conversation.contact, door=PrivacyAudit.Door.DASHBOARD)


def holds_json(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict | list)
    except ValueError:
        return False


READONLY = re.compile(r'<div class="readonly">(.*?)</div>', re.S)
CELL = re.compile(r'<t[dh] class="field-([\w]+)[^"]*"[^>]*>(.*?)</t[dh]>', re.S)
TAG = re.compile(r"<[^>]+>")
SNAKE = re.compile(r"(?<![\w./@-])[a-z]+_[a-z_]+(?![\w./@-])")
# The platforms' own names that a channel's set-up steps quote, for the owner to find them in
# the platform's console (Meta's permissions and webhook fields, Telegram's secret_token).
SNAKE_ALLOWED = {
    "message_deliveries",
    "messaging_postbacks",
    "pages_messaging",
    "secret_token",
    "whatsapp_business_messaging",
}


def page_problems(url: str, body: str, model) -> list[str]:
    """What is wrong with a page for its owner: nested forms, a setting as raw JSON, a code
    where a person reads words."""
    problems = []
    page = Page()
    page.feed(body)
    if page.nested_forms:
        problems.append(f"{url} nests a form in another")
    for attrs, text in page.textareas:
        name = attrs.get("name", "")
        key = (model._meta.label_lower, name)
        if holds_json(unescape(text)) and key not in JSON_ALLOWED:
            problems.append(f"{url}: the setting {name} is a raw JSON textarea")
    for value in READONLY.findall(body):
        text = unescape(TAG.sub("", value)).strip()
        if holds_json(text):
            problems.append(f"{url} shows raw JSON: {text[:80]}")
    # No snake_case code in the text a person reads (a reason, a status, a field's name).
    codes = sorted(set(SNAKE.findall(" ".join(page.text))) - SNAKE_ALLOWED)
    if codes:
        problems.append(f"{url} shows codes: {codes}")
    # A list's cells: a field with choices shows its label, never its code.
    for name, cell in CELL.findall(body):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:  # a column computed by the admin
            continue
        text = unescape(TAG.sub("", cell)).strip()
        codes = {str(code) for code, label in field.flatchoices if str(code) != str(label)}
        if text in codes:
            problems.append(f"{url}: the column {name} shows the code {text!r}")
    return problems


def test_an_owner_walks_every_page_of_every_model(client):
    demo = demo_load()
    tenant, bot = demo.tenant, demo.bot
    populate(tenant, bot)
    signed_in = client.post(
        reverse("admin:login"),
        {"username": DEMO_OWNER_EMAIL, "password": DEMO_PASSWORD, "next": "/dashboard/"},
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/dashboard/"
    owner = get_user_model().objects.get(username=DEMO_OWNER_EMAIL)
    admins, request = owner_admins(tenant, owner)
    assert len(admins) >= 15  # the registry, not a list kept here

    home = client.get(reverse("admin:index"))
    assert home.status_code == 200
    walked, problems = [], []
    for model, model_admin in admins:
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        obj = model_admin.get_queryset(request).first() or one_of(model, tenant)
        pages = [reverse(f"{name}_changelist")]
        change = reverse(f"{name}_change", args=[obj.pk])
        if opts.label_lower in OBJECT_PAGE_REDIRECTS:
            response = client.get(change)
            assert response.status_code == 302, f"{change} answered {response.status_code}"
            change = response["Location"]
        pages.append(change)
        add = reverse(f"{name}_add")
        if model_admin.has_add_permission(request):
            pages.append(add)
        else:
            assert client.get(add).status_code == 403, add
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, f"{url} answered {response.status_code}"
            problems += page_problems(url, response.content.decode(), model)
            walked.append(url)
    assert len(walked) >= 2 * len(admins)
    assert not problems, "\n".join(problems)


def test_the_walk_finds_raw_json_and_codes():
    """The page checks can fail: a JSON textarea, a read-only JSON block, a code in a cell
    or in the text."""
    for body in (
        '<textarea name="settings">{"a": 1}</textarea>',
        '<div class="readonly">{"a": 1}</div>',
        '<td class="field-channel_kind">webchat</td>',
        "<p>Reason: visitor_request</p>",
    ):
        assert len(page_problems("/x/", body, Conversation)) == 1, body
    assert not page_problems("/x/", '<td class="field-channel_kind">Web chat</td>', Conversation)


def test_the_handoff_log_reads_states_and_reasons_by_their_names(owner_client, tenant):
    queued = factories.HandoffEventFactory(tenant=tenant, from_status="bot", to_status="queued")
    factories.HandoffEventFactory(
        tenant=tenant,
        from_status="queued",
        to_status="assigned",
        reason=HandoffEvent.Reason.CLAIM,
    )
    url = reverse("admin:agents_handoffevent_changelist")
    body = owner_client.get(url).content.decode()
    for label in (
        "With the bot",
        "Waiting for an agent",
        "With an agent",
        "Claimed from the queue",
    ):
        assert label in body
    filtered = owner_client.get(url, {"to_status__exact": "queued"})
    assert [event.pk for event in filtered.context["cl"].result_list] == [queued.pk]


def test_a_handoff_events_page_reads_as_words_and_names_people(owner_client, tenant):
    agent = factories.MembershipFactory(tenant=tenant, role="agent").user
    agent.first_name, agent.last_name = "Maya", "Lopez"
    agent.save()
    event = factories.HandoffEventFactory(
        tenant=tenant,
        from_status="queued",
        to_status="assigned",
        reason=HandoffEvent.Reason.CLAIM,
        actor=agent,
        agent=agent,
    )
    page = owner_client.get(reverse("admin:agents_handoffevent_change", args=[event.pk]))
    body = page.content.decode()
    assert "Waiting for an agent → With an agent (Claimed from the queue)" in body  # its title
    assert "From status" not in body and '<div class="readonly">assigned</div>' not in body
    assert '<div class="readonly">Maya Lopez</div>' in body and agent.username not in body
    listed = owner_client.get(reverse("admin:agents_handoffevent_changelist")).content.decode()
    assert '<td class="field-agent_name">Maya Lopez</td>' in listed
    assert agent.username not in listed


def test_list_filters_and_states_read_as_words(owner_client, tenant):
    factories.InvitationFactory(tenant=tenant)
    conversations = owner_client.get(reverse("admin:conversations_conversation_changelist"))
    body = conversations.content.decode()
    assert "By test chat" in body and "is sandbox" not in body
    assert "Waiting for an agent" in body and "Web chat" in body  # the filters' choices
    invitations = owner_client.get(reverse("admin:tenancy_invitation_changelist"))
    assert '<td class="field-status">Pending until ' in invitations.content.decode()
    # The breadcrumbs go from Home to the list, as the sidebar does: not through Django's
    # page of the app, a name the sidebar never uses.
    body = invitations.content.decode()
    crumbs = body[body.index('class="breadcrumbs">') + len('class="breadcrumbs">') :]
    crumbs = crumbs[: crumbs.index("</div>")]
    assert re.findall(r'href="([^"]+)"', crumbs) == ["/dashboard/"]
    assert " ".join(re.sub(r"<[^>]+>", " ", crumbs).split()) == "Home &rsaquo; Invitations"


def test_a_lists_filter_by_a_related_object_offers_the_tenants_own(
    owner_client, tenant, other_tenant
):
    ours = factories.BotFactory(tenant=tenant, name="Our helper")
    quiet = factories.BotFactory(tenant=tenant, name="Our quiet bot")
    theirs = factories.BotFactory(tenant=other_tenant, name="Their helper")
    mine = factories.ConversationFactory(tenant=tenant, bot=ours)
    factories.ConversationFactory(tenant=tenant, bot=quiet)
    factories.ConversationFactory(tenant=other_tenant, bot=theirs)
    url = reverse("admin:conversations_conversation_changelist")
    body = owner_client.get(url).content.decode()
    assert "Our helper" in body and "Our quiet bot" in body and "Their helper" not in body
    filtered = owner_client.get(url, {"bot__id__exact": ours.pk})
    assert [c.pk for c in filtered.context["cl"].result_list] == [mine.pk]
    # Another tenant's bot in the URL filters nothing in: no row of theirs shows.
    assert not owner_client.get(url, {"bot__id__exact": theirs.pk}).context["cl"].result_list
    # The lean date filter, in place of a date hierarchy over every conversation: its
    # "Today" link, as the page offers it (aware bounds, no naive datetime).
    page = owner_client.get(url)
    specs = page.context["cl"].filter_specs
    (spec,) = [s for s in specs if getattr(s, "field_path", None) == "created_at"]
    choices = {c["display"]: c["query_string"] for c in spec.choices(page.context["cl"])}
    assert choices["Today"] in page.content.decode().replace("&amp;", "&")
    today = owner_client.get(url + choices["Today"])
    assert len(today.context["cl"].result_list) == 2


def test_test_chats_are_left_out_of_the_conversations_list_unless_asked_for(owner_client, tenant):
    """The list shows the visitors' conversations; its filter's "With test chats" adds the
    bot page's test chats, the channel column saying which they are, and "Test chats only"
    shows those alone."""
    bot = factories.BotFactory(tenant=tenant)
    real = factories.ConversationFactory(tenant=tenant, bot=bot)
    test = factories.ConversationFactory(tenant=tenant, bot=bot, is_sandbox=True)
    url = reverse("admin:conversations_conversation_changelist")

    def cells(query: str = "") -> dict:
        page = owner_client.get(url + query)
        return dict(
            re.findall(
                r'href="/dashboard/conversations/conversation/(\d+)/change/.*?'
                r'<td class="field-channel_column">([^<]*)</td>',
                page.content.decode(),
                re.S,
            )
        )

    body = owner_client.get(url).content.decode().replace("&amp;", "&")
    assert cells() == {str(real.pk): "Web chat"}
    choices = dict(re.findall(r'<a href="(\?[^"]*test_chats=[a-z]+[^"]*)">([^<]+)</a>', body))
    assert sorted(choices.values()) == ["Test chats only", "With test chats"]
    by_name = {name: query for query, name in choices.items()}
    assert cells(by_name["With test chats"]) == {
        str(real.pk): "Web chat",
        str(test.pk): "Web chat (test chat)",
    }
    assert cells(by_name["Test chats only"]) == {str(test.pk): "Web chat (test chat)"}


def test_the_agents_page_says_how_an_agent_gets_there(owner_client):
    """It offered only "Delete selected agents": a new owner could not tell how to add one
    (through an invitation; the profile appears when they first open the console)."""
    page = owner_client.get(reverse("admin:agents_agentprofile_changelist")).content.decode()
    assert "To add one, the account's owner invites them" in page
    assert f'href="{reverse("admin:tenancy_invitation_changelist")}"' in page
    assert 'href="/console/"' in page
