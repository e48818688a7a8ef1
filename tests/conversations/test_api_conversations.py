"""``/api/v1/conversations/``: list and filters, read with messages, send as an agent, hand
off, resolve, rate; each auth failure; another tenant's conversation; invalid input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import HandoffEvent
from conversations.models import Conversation, Message
from tests.conversations.insight import (
    at,
    auth_failures,
    client_with,
    conversation_with_messages,
    expected_auth_failures,
    snapshot_rows,
    staff,
)
from tests.factories import BotFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/conversations/"


@pytest.fixture
def agent(tenant):
    return staff(tenant)


@pytest.fixture
def api_as_agent(tenant, agent):
    return client_with(tenant, ["write"], created_by=agent)


def test_list_filters_and_hides_the_sandbox(api, tenant, other_tenant):
    bot = BotFactory(tenant=tenant)
    web = ConversationFactory(tenant=tenant, bot=bot, created_at=at(10))
    telegram = ConversationFactory(tenant=tenant, channel_kind="telegram", created_at=at(12))
    ConversationFactory(tenant=tenant, is_sandbox=True)
    ConversationFactory(tenant=other_tenant)

    def ids(**params):
        response = api.get(URL, params)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids() == {web.pk, telegram.pk}
    assert ids(bot=bot.pk) == {web.pk}
    assert ids(channel="telegram") == {telegram.pk}
    assert ids(status="bot") == {web.pk, telegram.pk}
    assert ids(status="resolved") == set()
    assert ids(created_after="2030-03-11") == {telegram.pk}
    assert ids(created_before="2030-03-11T00:00:00Z") == {web.pk}


@pytest.mark.parametrize(
    "params,field",
    [
        ({"status": "sleeping"}, "status"),
        ({"channel": "pigeon"}, "channel"),
        ({"bot": "x"}, "bot"),
        ({"created_after": "yesterday"}, "created_after"),
    ],
)
def test_bad_filters_name_the_field(api, params, field):
    response = api.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_read_has_the_messages(api, tenant):
    conversation = conversation_with_messages(tenant, n_in=2, n_out=1)
    response = api.get(f"{URL}{conversation.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert [m["direction"] for m in body["messages"]] == ["in", "in", "out"]
    page = api.get(f"{URL}{conversation.pk}/messages/").json()
    assert page["count"] == 3


def test_read_has_the_newest_200_messages_and_the_list_has_every_one_oldest_first(api, tenant):
    """docs/api.md: the conversation with its newest 200 messages; /messages/ every message,
    paginated, oldest first."""
    conversation = ConversationFactory(tenant=tenant)
    start = timezone.now() - timedelta(days=1)
    for n in range(203):
        MessageFactory(
            tenant=tenant,
            conversation=conversation,
            text=f"m{n}",
            created_at=start + timedelta(seconds=n),
        )
    inline = [m["text"] for m in api.get(f"{URL}{conversation.pk}/").json()["messages"]]
    assert inline == [f"m{n}" for n in range(3, 203)]
    texts, url = [], f"{URL}{conversation.pk}/messages/"
    while url:
        page = api.get(url).json()
        assert page["count"] == 203
        texts += [m["text"] for m in page["results"]]
        url = page["next"]
    assert texts == [f"m{n}" for n in range(203)]
    # README.md: pages of 50 unless ?page_size= asks otherwise, up to 200.
    url = f"{URL}{conversation.pk}/messages/"
    assert len(api.get(url).json()["results"]) == 50
    assert len(api.get(url, {"page_size": 7}).json()["results"]) == 7
    assert len(api.get(url, {"page_size": 500}).json()["results"]) == 200
    second = api.get(url, {"page_size": 7, "page": 2}).json()["results"]
    assert [m["text"] for m in second] == [f"m{n}" for n in range(7, 14)]


def test_send_as_agent_takes_over_and_replies(api_as_agent, tenant, agent):
    conversation = ConversationFactory(tenant=tenant)
    response = api_as_agent.post(
        f"{URL}{conversation.pk}/messages/", {"text": "Hello from a human"}, format="json"
    )
    assert response.status_code == 201, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.sender, message.agent, message.text) == ("agent", agent, "Hello from a human")
    conversation.refresh_from_db()
    assert conversation.status == "assigned" and conversation.assigned_agent == agent
    assert conversation.first_agent_response_at is not None


def test_send_validates_and_writes_nothing(api_as_agent, tenant, other_tenant):
    conversation = ConversationFactory(tenant=tenant)
    before = snapshot_rows(Conversation, Message, HandoffEvent)
    for payload, field in (
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "x" * 5000}, "text"),
        ({"text": "hi", "agent": 999999}, "agent"),
        ({"text": "hi", "agent": staff(other_tenant).pk}, "agent"),
    ):
        response = api_as_agent.post(f"{URL}{conversation.pk}/messages/", payload, format="json")
        assert response.status_code == 400, payload
        assert field in response.json()["error"]["fields"]
    assert snapshot_rows(Conversation, Message, HandoffEvent) == before


def test_a_key_without_a_creator_must_name_the_agent(tenant):
    api = client_with(tenant, ["write"])
    conversation = ConversationFactory(tenant=tenant)
    response = api.post(f"{URL}{conversation.pk}/messages/", {"text": "hi"}, format="json")
    assert response.status_code == 400 and "agent" in response.json()["error"]["fields"]
    named = api.post(
        f"{URL}{conversation.pk}/messages/",
        {"text": "hi", "agent": staff(tenant).pk},
        format="json",
    )
    assert named.status_code == 201


def test_hand_off_then_resolve_then_rate(api_as_agent, tenant, agent):
    conversation = ConversationFactory(tenant=tenant)
    response = api_as_agent.post(f"{URL}{conversation.pk}/hand-off/", {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "queued"
    event = HandoffEvent.objects.get(conversation=conversation, to_status="queued")
    assert (event.reason, event.detail) == ("api", "")  # not taken for a flow's code

    early = api_as_agent.post(f"{URL}{conversation.pk}/rate/", {"score": 5}, format="json")
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_resolved"

    response = api_as_agent.post(f"{URL}{conversation.pk}/resolve/", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "resolved"

    again = api_as_agent.post(f"{URL}{conversation.pk}/hand-off/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "resolved"

    bad = api_as_agent.post(f"{URL}{conversation.pk}/rate/", {"score": 9}, format="json")
    assert bad.status_code == 400 and "score" in bad.json()["error"]["fields"]
    rated = api_as_agent.post(f"{URL}{conversation.pk}/rate/", {"score": 4}, format="json")
    assert rated.status_code == 200 and rated.json()["csat"] == 4


def test_hand_off_to_an_unknown_team_names_the_field(api_as_agent, tenant):
    conversation = ConversationFactory(tenant=tenant)
    response = api_as_agent.post(
        f"{URL}{conversation.pk}/hand-off/", {"team": "Nobody"}, format="json"
    )
    assert response.status_code == 400 and "team" in response.json()["error"]["fields"]
    conversation.refresh_from_db()
    assert conversation.status == "bot"


@pytest.mark.parametrize(
    "method,path,payload,needs",
    [
        ("get", "", None, "read"),
        ("get", "{id}/", None, "read"),
        ("get", "{id}/messages/", None, "read"),
        ("post", "{id}/messages/", {"text": "hi"}, "write"),
        ("post", "{id}/hand-off/", {}, "write"),
        ("post", "{id}/resolve/", {}, "write"),
        ("post", "{id}/rate/", {"score": 5}, "write"),
    ],
)
def test_auth_failures(tenant, method, path, payload, needs):
    conversation = ConversationFactory(tenant=tenant)
    before = snapshot_rows(Conversation, Message)
    url = URL + path.format(id=conversation.pk)
    assert auth_failures(tenant, method, url, payload, needs) == expected_auth_failures(needs)
    assert snapshot_rows(Conversation, Message) == before


@pytest.mark.parametrize(
    "method,path,payload",
    [
        ("get", "{id}/", None),
        ("get", "{id}/messages/", None),
        ("post", "{id}/messages/", {"text": "hi"}),
        ("post", "{id}/hand-off/", {}),
        ("post", "{id}/resolve/", {}),
        ("post", "{id}/rate/", {"score": 5}),
    ],
)
def test_another_tenants_conversation_is_a_404_and_unchanged(
    tenant, other_tenant, method, path, payload
):
    api = client_with(tenant, ["admin"], created_by=staff(tenant))
    theirs = conversation_with_messages(other_tenant, status="resolved", resolved_at=at(10))
    before = snapshot_rows(Conversation, Message, HandoffEvent)
    response = getattr(api, method)(URL + path.format(id=theirs.pk), payload or {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert snapshot_rows(Conversation, Message, HandoffEvent) == before
