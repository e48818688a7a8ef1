"""webchat.lane: the web chat socket's door to the receive service. Sockets' messages
gathered into one batch; the rate limit counted before anything is stored; the events that a
socket's ack already carries go out only where someone else listens."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from conversations import realtime
from conversations.models import Message
from conversations.receive import Arrival, Inbound
from tests.conversations.receiving import webchat_says
from tests.factories import launched_bot
from webchat import lane
from webchat.consumers import lane_in_flight, message_sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bot():
    return launched_bot(allowed_origins=["https://shop.example.com"])


@pytest.fixture(autouse=True)
async def _close_the_threads_connection():
    yield
    await database_sync_to_async(connections.close_all)()


def arrival(bot, visitor: str, client_id: str, *, conversation_id=None, origin=None) -> Arrival:
    return Arrival(
        bot=bot,
        visitor_id=visitor,
        inbound=Inbound(text="how much is it", external_id=client_id),
        conversation_id=conversation_id,
        origin=origin or f"socket-of-{visitor}",
    )


def opened(bot, visitor: str) -> int:
    conversation, _ = webchat_says(bot, visitor, "hi", external_id="first")
    return conversation.pk


async def test_the_rate_limit_refuses_a_visitors_extra_messages_and_stores_none(bot, settings):
    settings.WEBCHAT_MESSAGES_PER_10S = 2
    mine = await database_sync_to_async(opened)(bot, "limited")
    runner = lane.Lane(message_sync_to_async, get_channel_layer())
    arrivals = [arrival(bot, "limited", f"c{n}", conversation_id=mine) for n in range(3)]

    outcomes = await asyncio.gather(*(runner.run(a) for a in arrivals), return_exceptions=True)

    assert outcomes[:2] == arrivals[:2]
    assert isinstance(outcomes[2], lane.RateLimited) and outcomes[2].code == "rate_limited"
    kept = database_sync_to_async(
        lambda: list(
            Message.objects.filter(conversation_id=mine, external_id__in=["c0", "c1", "c2"])
            .order_by("external_id")
            .values_list("external_id", flat=True)
        )
    )
    assert await kept() == ["c0", "c1"]


def counting(hops: list[int]):
    """The sockets' hop to the database thread, noting each batch's size in ``hops``."""

    def counted(func):
        def run(arrivals, layer):
            hops.append(len(arrivals))
            return func(arrivals, layer)

        return message_sync_to_async(run)

    return counted


async def test_a_batch_goes_to_the_service_in_one_hop(bot):
    hops: list[int] = []
    runner = lane.Lane(counting(hops), get_channel_layer(), in_flight=1)
    arrivals = [arrival(bot, f"v{n}", "c1") for n in range(5)]

    outcomes = await asyncio.gather(*(runner.run(a) for a in arrivals))

    assert outcomes == arrivals and hops == [1, 4]  # the first alone, the others together
    assert all(a.replies[-1]["text"] == "Plans start at $10." for a in arrivals)
    assert len({a.conversation for a in arrivals}) == 5


async def test_a_web_process_on_postgresql_has_one_batch_under_way_and_the_next_gathers(bot):
    hops: list[int] = []
    # As the sockets' lane is made: one batch under way on PostgreSQL; on SQLite a second
    # one waits in its one thread's queue.
    runner = lane.Lane(counting(hops), get_channel_layer(), lane_in_flight())
    arrivals = [arrival(bot, f"w{n}", "c1") for n in range(6)]

    outcomes = await asyncio.gather(*(runner.run(a) for a in arrivals))

    assert outcomes == arrivals
    assert hops == ([1, 5] if connections["default"].vendor == "postgresql" else [1, 1, 4])


async def test_an_invalid_message_gets_its_error_and_the_others_go_on(bot):
    runner = lane.Lane(message_sync_to_async, get_channel_layer())
    good = arrival(bot, "v1", "c1")
    bad = Arrival(bot=bot, visitor_id="v2", inbound=Inbound(text=" ", external_id="c1"))

    outcomes = await asyncio.gather(runner.run(good), runner.run(bad), return_exceptions=True)

    assert outcomes[0] is good and good.message["text"] == "how much is it"
    assert getattr(outcomes[1], "fields", None) == {"text": ["A message needs some text."]}


async def test_events_go_out_only_where_someone_else_listens(bot):
    layer = get_channel_layer()
    alone, other = await layer.new_channel(), await layer.new_channel()
    mine = await database_sync_to_async(opened)(bot, "v1")
    await layer.group_add(realtime.conversation_group(mine), alone)
    runner = lane.Lane(message_sync_to_async, layer)

    quiet = arrival(bot, "v1", "c1", conversation_id=mine, origin=alone)
    await runner.run(quiet)
    assert quiet.events == [] and quiet.replies  # the sender has its ack and replies

    # Another tab (here, another channel of this process) joins: it hears the turn.
    await layer.group_add(realtime.conversation_group(mine), other)
    heard = arrival(bot, "v1", "c2", conversation_id=mine, origin=alone)
    await runner.run(heard)
    assert [event["message"] for _, event in heard.events] == [heard.message, *heard.replies]
    await realtime.broadcast(layer, heard.events)
    received = await asyncio.wait_for(layer.receive(other), 10)
    assert received["message"]["client_id"] == "c2" and received["origin"] == alone


async def test_a_new_conversation_is_announced_only_to_the_visitors_other_tabs(bot):
    layer = get_channel_layer()
    alone, tab = await layer.new_channel(), await layer.new_channel()
    runner = lane.Lane(message_sync_to_async, layer)
    await layer.group_add(realtime.visitor_group("v1"), alone)

    first = arrival(bot, "v1", "c1", origin=alone)
    await runner.run(first)
    assert first.conversation and first.replies  # the socket has its ack: nothing to publish
    assert first.events == []

    # The visitor's other tab hears of the conversation its first tab opened.
    await layer.group_add(realtime.visitor_group("v2"), alone)
    await layer.group_add(realtime.visitor_group("v2"), tab)
    second = arrival(bot, "v2", "c1", origin=alone)
    await runner.run(second)
    started = {"type": "conversation.started", "conversation": second.conversation}
    assert second.events == [(realtime.visitor_group("v2"), started)]
    await realtime.broadcast(layer, second.events)
    assert await asyncio.wait_for(layer.receive(tab), 10) == started
