"""Publishing a big bot (100 intents of 36 phrases) through the API of a real web process:
the request returns at once with the version training, the worker trains it and puts it live,
and meanwhile another tenant's requests are answered as usual. Runs on this run's database:
SQLite on the embedded defaults, PostgreSQL when DATABASE_URL names it (the second CI pass)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from bots.models import Bot, BotVersion
from chattonic.tenancy.services import api_key_create
from tests.factories import BotFactory, TenantFactory
from tests.processes import (
    Process,
    celery_worker,
    free_port,
    http_status,
    uvicorn,
    wait_for,
)
from tests.processes import (
    test_database_env as database_env,
)

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

INTENTS, PHRASES = 100, 36
SUBJECTS = [
    "order",
    "invoice",
    "refund",
    "parcel",
    "password",
    "account",
    "plan",
    "card",
    "address",
    "coupon",
]
ASKS = [
    "where is",
    "how do I change",
    "can you cancel",
    "I need help with",
    "what about",
    "send me",
]
WHEN = ["today", "now", "please", "this week", "asap", "for my family"]


def big_flow() -> dict:
    """100 intents of 36 distinct phrases each, and a router that names them all."""
    intents = []
    for i in range(INTENTS):
        subject = f"{SUBJECTS[i % 10]} {i // 10}"
        phrases = [f"{ask} my {subject} {when}" for ask in ASKS for when in WHEN]
        intents.append({"name": f"topic_{i}", "phrases": phrases})
    assert all(len(intent["phrases"]) == PHRASES for intent in intents)
    return {
        "start": "router",
        "nodes": {
            "router": {
                "type": "router",
                "routes": {f"topic_{i}": "answer" for i in range(INTENTS)},
                "fallback": "answer",
            },
            "answer": {"type": "message", "text": "On it.", "next": "router"},
        },
        "intents": intents,
    }


def call(base: str, secret: str, method: str, path: str, body: dict | None = None):
    """(status, JSON body, seconds) of one API request."""
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, content = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, content = exc.code, exc.read()
    return status, json.loads(content or b"null"), time.perf_counter() - started


def test_a_big_bot_publishes_at_once_and_another_tenant_is_answered_while_it_trains(tmp_path):
    big = BotFactory(draft_definition=big_flow())
    _, big_secret = api_key_create(tenant=big.tenant, name="test", scopes=["admin"])
    other = TenantFactory()
    small = BotFactory(tenant=other)
    _, other_secret = api_key_create(tenant=other, name="test", scopes=["admin"])

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = database_env()
    web = Process(uvicorn(port), env, tmp_path / "web.log")
    worker = Process(celery_worker("publish"), env, tmp_path / "worker.log")
    with web, worker:
        wait_for(lambda: http_status(f"{base}/healthz") == 200, 60, what="the web process")
        wait_for(lambda: " ready." in worker.output(), 60, what="the worker")

        status, version, seconds = call(base, big_secret, "POST", f"/api/v1/bots/{big.pk}/publish/")
        assert status == 201, version
        assert (version["number"], version["training"]) == (1, "training")
        assert seconds < 2.0, f"publishing took {seconds:.2f} s"

        # While the worker trains, the other tenant reads, changes and publishes its own bot.
        requests = [
            ("PATCH", f"/api/v1/bots/{small.pk}/", {"welcome_text": "Hello there"}),
            ("POST", f"/api/v1/bots/{small.pk}/publish/", {}),
        ]
        answered_while_training = 0
        while BotVersion.objects.get(bot=big).training == BotVersion.Training.TRAINING:
            for method, path, body in requests or [("GET", "/api/v1/bots/", None)]:
                status, answer, seconds = call(base, other_secret, method, path, body)
                assert status in (200, 201), (method, path, answer)
                assert seconds < 2.0, f"{method} {path} took {seconds:.2f} s"
            requests = []  # then reads, until the big bot is trained
            if BotVersion.objects.get(bot=big).training == BotVersion.Training.TRAINING:
                answered_while_training += 1
        assert answered_while_training > 0, "the worker trained before any request of the other"

        # The big bot's version goes live once trained; the other's versions did too.
        live = Bot.objects.select_related("published_version").get(pk=big.pk).published_version
        assert live is not None and live.number == 1, f"worker:\n{worker.output()}"
        assert live.training == BotVersion.Training.READY
        assert len(live.nlu_model["phrases"]) >= INTENTS * PHRASES
        wait_for(
            lambda: (
                not BotVersion.objects.filter(
                    bot=small, training=BotVersion.Training.TRAINING
                ).exists()
            ),
            120,
            interval=0.2,
            what="the worker to train the other tenant's versions",
        )
        assert Bot.objects.get(pk=small.pk).published_version_id is not None
    assert "Traceback" not in web.output(), web.output()
