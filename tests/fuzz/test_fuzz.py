"""500 generated inputs at the doors, in-process: signed webhooks of every platform, every
operation of the REST API with a valid key, and frames on both sockets. Goal: no answer
>= 500, none slower than 2 s, nothing stored from a refused input (``tests.fuzz.runner``
judges each answer). bench/fuzz.py sends 10,000 and more over the network."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.db import connections

from chattonic.celery import app
from tests.fakes.channels import public_base
from tests.fuzz import strategies
from tests.fuzz.runner import (
    InProcessHttp,
    InProcessSocket,
    Tally,
    console_opener,
    examples,
    run_rest,
    run_socket,
    run_webhooks,
    warm_up,
    widget_opener,
)
from tests.fuzz.world import world_create

pytestmark = pytest.mark.django_db(transaction=True)

# 500 inputs in all, with a fixed seed: the same inputs on every run (the bench draws anew).
WEBHOOKS, REST, WIDGET, CONSOLE = 200, 150, 100, 50
SEED = 15


@pytest.fixture
def world(settings):
    settings.API_RATE_PER_MINUTE = 1_000_000
    settings.WEBCHAT_MESSAGES_PER_10S = 1_000_000
    settings.CHANNEL_RATE_LIMITS = False
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]
    # The bot's turns and deliveries wait in the queue (as in the bench, where no worker
    # runs): the doors are under test, not the platforms' fakes.
    app.conf.task_always_eager = False
    yield world_create()
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")
    async_to_sync(_close)()


async def _close():
    from channels.db import database_sync_to_async

    await database_sync_to_async(connections.close_all)()


def test_generated_inputs_at_every_door_get_no_5xx_no_hang_and_store_nothing_refused(world):
    from django.test import Client

    tally = Tally()
    http = InProcessHttp()
    warm_up(http, world)

    webhook_cases = examples(strategies.webhook_cases, WEBHOOKS, seed=SEED)
    run_webhooks(webhook_cases, http, world, tally, public_base())

    schema = json.loads(Client().get("/api/schema/?format=json").content)
    operations = strategies.operations(schema)
    assert len(operations) > 30
    rest_cases = examples(strategies.rest_case(operations, world.ids), REST, seed=SEED)
    run_rest(rest_cases, operations, http, world, tally)

    widget_cases = examples(strategies.widget_frames(), WIDGET, seed=SEED)
    console_cases = examples(
        strategies.console_frames(world.conversations, world.agents), CONSOLE, seed=SEED
    )

    async def sockets():
        await run_socket("widget", widget_cases, widget_opener(world, InProcessSocket), tally)
        opener = console_opener(world, InProcessSocket, "http://localhost")
        await run_socket("console", console_cases, opener, tally, reconnect_every=25)

    async_to_sync(sockets)()

    assert tally.total == WEBHOOKS + REST + WIDGET + CONSOLE, tally.report()
    failures = "\n".join(f"{door}: {what}\n    {case}" for door, what, case in tally.failures)
    assert not tally.failures, f"{tally.report()}\n\n{failures}"
    # The doors refused much of it, and took some: the inputs are near the valid ones.
    assert {"200", "400"} <= set(tally.counts["webhooks"]), tally.report()
    assert any(s.startswith("2") for s in tally.counts["rest"]), tally.report()
    assert tally.counts["widget"]["ok"] > 0, tally.report()
