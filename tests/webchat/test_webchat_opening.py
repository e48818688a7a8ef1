"""What opening a widget socket costs, counted so that it cannot creep back: after a deploy or
a network blip every visitor reconnects at once (issue 17; bench/sockets.py measures it).

- the database: one query (the bot with its tenant, and the visitor's current conversation);
  a visitor coming back to a conversation gets its history page too (a second query, after
  the socket has joined the conversation's group, so that nothing said meanwhile is missed);
- Redis: one round trip the socket waits for (its slot of the per-address limit), plus the
  channel layer's subscriptions (the socket's own channel, as any Channels consumer's, and
  the visitor's group), sent on the layer's shared connection without waiting.
"""

from __future__ import annotations

import contextlib

import pytest
from channels.db import database_sync_to_async
from django.db import connection, connections

from conversations.models import Conversation
from tests.factories import launched_bot
from tests.sockets import TIMEOUT, of_type, redis_commands, until
from tests.webchat.test_webchat_socket import ORIGIN, opened, say, socket
from webchat import consumers
from webchat import services as webchat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_the_sockets_connection():
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def bot():
    return launched_bot(allowed_origins=[ORIGIN])


@pytest.fixture
def queries(monkeypatch):
    """The SQL the sockets run, whichever thread runs it: every database call of the
    consumer goes through ``consumers._tidied`` (its connection care)."""
    seen: list[str] = []
    tidied = consumers._tidied

    def counted(func):
        run = tidied(func)

        def run_counted(*args, **kwargs):
            def record(execute, sql, params, many, context):
                seen.append(sql)
                return execute(sql, params, many, context)

            with connection.execute_wrapper(record):
                return run(*args, **kwargs)

        return run_counted

    monkeypatch.setattr(consumers, "_tidied", counted)
    return seen


@contextlib.asynccontextmanager
async def counted(queries: list[str]):
    """The queries and Redis commands sent inside the block."""
    queries.clear()
    async with redis_commands() as commands:
        yield queries, commands


def names(commands: list[list[str]]) -> list[str]:
    return sorted(command[0].upper() for command in commands)


async def test_a_new_visitor_opens_with_one_query_and_one_redis_round_trip(bot, queries):
    warm = socket(bot.public_key)  # the process's first socket connects its pools
    await opened(warm)
    visitor = socket(bot.public_key)
    async with counted(queries) as (sql, commands):
        session = await opened(visitor)
    assert session["conversation"] is None
    assert len(sql) == 1, sql
    assert names(commands) == ["EVALSHA", "SUBSCRIBE", "SUBSCRIBE"], commands
    for communicator in (warm, visitor):
        await communicator.disconnect()


async def test_a_visitor_coming_back_without_a_conversation_opens_with_one_query(bot, queries):
    first = socket(bot.public_key)
    token = (await opened(first))["token"]
    await first.disconnect()
    again = socket(bot.public_key, query=f"session={token}")
    async with counted(queries) as (sql, commands):
        session = await opened(again)
    # The same visitor (the token is signed again, with the second it was made in).
    assert webchat.visitor_claim(session["token"]) == webchat.visitor_claim(token)
    assert session["conversation"] is None
    assert len(sql) == 1, sql
    assert names(commands) == ["EVALSHA", "SUBSCRIBE", "SUBSCRIBE"], commands
    await again.disconnect()


async def test_a_visitor_back_to_a_conversation_gets_it_with_its_history_page(bot, queries):
    first = socket(bot.public_key)
    token = (await opened(first))["token"]
    ack = await say(first, "c1")
    await first.disconnect()
    again = socket(bot.public_key, query=f"session={token}")
    async with counted(queries) as (sql, commands):
        session = await opened(again)
        history, _ = await until(again, of_type("history"))
    assert session["conversation"] == history["conversation"] == ack["message"]["conversation"]
    assert (
        history["status"]
        == await database_sync_to_async(
            lambda: Conversation.objects.get(pk=history["conversation"]).status
        )()
    )
    assert "how much is it" in [m["text"] for m in history["messages"]]
    assert len(sql) == 2, sql  # the opening query, then the history page
    # ...and one more subscription: the conversation's group.
    assert names(commands) == ["EVALSHA", "SUBSCRIBE", "SUBSCRIBE", "SUBSCRIBE"], commands
    await again.disconnect()


async def test_a_visitor_back_after_a_resolved_chat_reads_it_above_a_new_one(bot, queries):
    """Their last resolved conversation comes as an ``earlier`` history page (the opening is
    still one query, the page a second); the socket does not join it, and their next
    message starts a new conversation. An older resolved one is not shown, nor another
    visitor's."""
    from django.utils import timezone

    stranger = socket(bot.public_key)
    await opened(stranger)
    await say(stranger, "s1")
    first = socket(bot.public_key)
    token = (await opened(first))["token"]
    older = (await say(first, "c1"))["message"]["conversation"]

    @database_sync_to_async
    def resolve(pk):
        Conversation.objects.filter(pk=pk).update(status="resolved", resolved_at=timezone.now())

    await resolve(older)
    latest = (await say(first, "c2"))["message"]["conversation"]
    assert latest != older
    await resolve(latest)
    await first.disconnect()

    again = socket(bot.public_key, query=f"session={token}")
    async with counted(queries) as (sql, commands):
        session = await opened(again)
        history, _ = await until(again, of_type("history"))
    assert session["conversation"] is None
    assert history["earlier"] is True and history["status"] == "resolved"
    assert history["conversation"] == latest
    conversations = {m["conversation"] for m in history["messages"]}
    assert conversations == {latest}
    assert "how much is it" in [m["text"] for m in history["messages"]]
    assert len(sql) == 2, sql  # the opening query, then the earlier page
    assert names(commands) == ["EVALSHA", "SUBSCRIBE", "SUBSCRIBE"], commands  # not joined
    ack = await say(again, "c3")
    assert ack["message"]["conversation"] not in (older, latest)
    for communicator in (stranger, again):
        await communicator.disconnect()


async def test_a_visitor_who_consented_before_is_not_asked_the_pre_chat_form_again(bot, queries):
    """``consented`` in the session frame (the widget then skips its pre-chat form): true for
    a visitor who gave their details and consent before, still in the one opening query;
    false for a new visitor and for one who never consented."""
    new = socket(bot.public_key)
    first = await opened(new)
    assert first["consented"] is False
    await new.send_json_to(
        {"type": "start", "fields": {"name": "Ana", "email": "ana@example.com", "consent": True}}
    )
    await until(new, of_type("history"))
    await new.disconnect()
    silent = socket(bot.public_key)
    silent_token = (await opened(silent))["token"]
    await say(silent, "s1")
    await silent.disconnect()

    again = socket(bot.public_key, query=f"session={first['token']}")
    async with counted(queries) as (sql, _):
        session = await opened(again)
        await until(again, of_type("history"))
    assert session["consented"] is True
    assert session["conversation"] is not None, session
    assert len(sql) == 2, sql  # the opening query, then the conversation's history page
    other = socket(bot.public_key, query=f"session={silent_token}")
    assert (await opened(other))["consented"] is False
    for communicator in (again, other):
        await communicator.disconnect()


async def test_a_token_of_another_bot_opens_as_a_new_visitor_of_this_one(bot):
    other = await database_sync_to_async(launched_bot)(allowed_origins=[ORIGIN])
    theirs = socket(other.public_key)
    token = (await opened(theirs))["token"]
    await say(theirs, "c1")
    mine = socket(bot.public_key, query=f"session={token}")
    session = await opened(mine)
    assert session["conversation"] is None
    assert webchat.visitor_claim(session["token"])[0] == bot.pk
    assert session["token"] != token
    for communicator in (theirs, mine):
        await communicator.disconnect()


async def test_the_sockets_of_one_bot_share_its_row_until_it_changes(bot):
    a, b = socket(bot.public_key), socket(bot.public_key)
    await opened(a)
    await opened(b)
    holders = [c for c in consumers._BOTS.values() if c.pk == bot.pk]
    assert len(holders) == 1
    shared = holders[0]

    def rename():
        bot.refresh_from_db()
        bot.title = "Renamed"
        bot.save()

    await database_sync_to_async(rename)()
    c = socket(bot.public_key)
    session = await opened(c)
    assert session["bot"]["title"] == "Renamed"
    assert consumers._BOTS[bot.pk] is not shared and consumers._BOTS[bot.pk].title == "Renamed"
    for communicator in (a, b, c):
        await communicator.disconnect(timeout=TIMEOUT)
