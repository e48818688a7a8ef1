"""Two deployments on one Redis server, each with its own database (a client's dedicated
deployment beside the shared one, or the suite's two xdist workers): the channel layer
publishes on Redis pub/sub, whose channels ignore the database, so the layer's prefix holds
the database's number (chattonic.settings.channel_layer_prefix) and their groups stay apart."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from chattonic.core.layers import BoundedRedisPubSubChannelLayer
from chattonic.settings import channel_layer_prefix


def url_of_database(number: int) -> str:
    """This run's Redis server (the embedded one, or REDIS_URL's), database ``number``."""
    address = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"]
    parts = urlsplit(address)
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(query=f"db={number}"))
    return urlunsplit(parts._replace(path=f"/{number}"))


def test_the_prefix_names_the_database_unless_it_is_0():
    assert channel_layer_prefix("us-central", "") == "chattonic.us-central"
    assert channel_layer_prefix("us-central", "redis://h:6379/0") == "chattonic.us-central"
    assert channel_layer_prefix("eu-frankfurt", "redis://h:6379/3") == "chattonic.eu-frankfurt.db3"
    assert channel_layer_prefix("us-central", "unix:///r.sock?db=2") == "chattonic.us-central.db2"
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        channel_layer_prefix("us-central", "redis://h:6379/zero")


async def first_heard(prefixes: tuple[str, str]) -> dict:
    """Deployment A and B (databases 1 and 2, prefixes as given) both have a socket in a
    group of the same name; A sends to it, then B. What B's socket hears first: its own
    message, unless A's crossed over (Redis delivers A's publish first, as it took it first)."""
    a, b = (
        BoundedRedisPubSubChannelLayer(hosts=[{"address": url_of_database(n)}], prefix=prefix)
        for n, prefix in zip((1, 2), prefixes, strict=True)
    )
    group = f"conversation.{time.time_ns()}"
    try:
        a_socket, b_socket = await a.new_channel(), await b.new_channel()
        await a.group_add(group, a_socket)
        await b.group_add(group, b_socket)
        await a.group_send(group, {"type": "message", "from": "A"})
        assert (await a.receive(a_socket))["from"] == "A"
        await b.group_send(group, {"type": "message", "from": "B"})
        return await b.receive(b_socket)
    finally:
        await a.flush()
        await b.flush()


async def test_two_deployments_on_one_redis_server_do_not_hear_each_other():
    prefixes = (
        channel_layer_prefix("us-central", url_of_database(1)),
        channel_layer_prefix("us-central", url_of_database(2)),
    )
    assert (await first_heard(prefixes))["from"] == "B"


async def test_with_one_prefix_for_both_they_would():
    """What the database's number in the prefix prevents (the test above could fail)."""
    assert (await first_heard(("chattonic.us-central",) * 2))["from"] == "A"
