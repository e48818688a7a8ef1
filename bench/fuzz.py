"""Fuzz bench: generated hostile inputs at every door of a real server, counted by answer.

    .venv/bin/python bench/fuzz.py [--inputs 10000] [--seed N] [--keep]

Starts ONE uvicorn server with the platform (``chattonic.asgi:application``), creates a tenant
with a launched bot, a channel of every kind, an admin API key and an agent signed in
(tests/fuzz/world.py), then sends ``--inputs`` inputs drawn by Hypothesis
(tests/fuzz/strategies.py), one after the other, over HTTP and WebSockets:

- webhooks (40 %): WhatsApp Cloud API, Messenger, Telegram, Twilio and the API channel, each
  signed as its platform signs (or with the API key), near-valid payloads in each platform's
  documented format with hostile values (NUL, lone surrogates, huge and non-finite numbers,
  deep nesting, wrong types, long strings), batches of good and bad events, raw garbage;
- the REST API (30 %): every operation of /api/v1 in the OpenAPI schema, valid key, ids
  valid and not, bodies from the schema with hostile values, raw garbage, 3 MB bodies;
- the web chat socket (20 %) and the agent console socket (10 %): frames of every type with
  hostile fields, and raw text and bytes.

It prints the count of answers by door and status, every answer >= 500 (or ``server_error``
frame, or socket that died), every answer slower than 2 s or missing (a hang), every refused
input after which the stored rows changed, and ends with "goal met" or "goal not met".
Goal: 0 answers >= 500, 0 hangs over 2 s, nothing stored from a refused input. (A bare
baseline means nothing here: the figures are the counts.)

Configuration as the platform's: no environment = the embedded defaults (SQLite and the
embedded Redis, in var/bench unless CHATTONIC_VAR_DIR says otherwise); DATABASE_URL +
REDIS_URL = PostgreSQL + Redis. No Celery worker runs: the bot's turns and deliveries wait in
the queue, which the bench empties at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

# As an attacker meets it: DEBUG off whatever the shell says (Django's debug pages are HTML).
os.environ["DEBUG"] = "0"
harness.production_environment()
# The limits that would refuse most of a run from one client (they have their own tests).
os.environ.setdefault("API_RATE_PER_MINUTE", "100000000")
os.environ.setdefault("WEBCHAT_MESSAGES_PER_10S", "100000000")
os.environ.setdefault("CHANNEL_RATE_LIMITS", "0")

SHARES = {"webhooks": 0.4, "rest": 0.3, "widget": 0.2, "console": 0.1}


def prepare(keep_redis: list):
    harness.platform_ready(keep_redis)
    from django.db import connections

    from tests.fuzz.world import world_create

    world = world_create()
    connections.close_all()
    return world


def clean_up(tenant_id: int) -> None:
    from django.db import connections

    from chattonic.celery import app
    from chattonic.tenancy.models import Tenant
    from conversations.models import Conversation

    Conversation.objects.filter(tenant_id=tenant_id).delete()
    Tenant.objects.filter(pk=tenant_id).delete()
    connections.close_all()
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs in all")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: new)")
    parser.add_argument("--keep", action="store_true", help="keep the bench's tenant and data")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)

    redis: list = []
    world = prepare(redis)
    from django.conf import settings

    from tests.fuzz import strategies
    from tests.fuzz.runner import (
        SLOW_SECONDS,
        NetworkHttp,
        NetworkSocket,
        Tally,
        console_opener,
        examples,
        run_rest,
        run_socket,
        run_webhooks,
        warm_up,
        widget_opener,
    )

    counts = {door: max(1, round(args.inputs * share)) for door, share in SHARES.items()}
    counts["webhooks"] += args.inputs - sum(counts.values())
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PUBLIC_BASE_URL": base}
    server, log = harness.start_server(
        "chattonic.asgi:application",
        port,
        Path(settings.VAR_DIR) / "bench-fuzz-uvicorn.log",
        env=env,
    )
    tally = Tally()
    started = time.monotonic()
    try:
        http = NetworkHttp(base)
        warm_up(http, world)
        print(f"fuzz: {args.inputs} inputs, seed {seed}, {harness.configuration()}", flush=True)
        webhook_cases = examples(strategies.webhook_cases, counts["webhooks"], seed=seed)
        run_webhooks(webhook_cases, http, world, tally, base)

        schema = json.loads(http.send("GET", "/api/schema/?format=json", b"", {}).body)
        operations = strategies.operations(schema)
        rest_cases = examples(
            strategies.rest_case(operations, world.ids), counts["rest"], seed=seed
        )
        run_rest(rest_cases, operations, http, world, tally)

        ws = base.replace("http://", "ws://")

        def network_socket(path, headers, ip):
            return NetworkSocket(ws + path, headers, ip)

        widget_cases = examples(strategies.widget_frames(), counts["widget"], seed=seed)
        console_cases = examples(
            strategies.console_frames(world.conversations, world.agents),
            counts["console"],
            seed=seed,
        )

        async def sockets():
            await run_socket("widget", widget_cases, widget_opener(world, network_socket), tally)
            opener = console_opener(world, network_socket, base)
            await run_socket("console", console_cases, opener, tally)

        asyncio.run(sockets())
    finally:
        harness.stop_server(server, log, timeout=20)
    seconds = time.monotonic() - started

    if not args.keep:
        clean_up(world.tenant_id)
    from chattonic.core import embedded

    for process in redis:
        embedded.stop(process)

    print()
    print(f"door       inputs  answers by status ({tally.total} inputs in {seconds:.0f} s)")
    print(tally.report())
    print(f"slowest answer: {tally.slowest * 1000:.0f} ms")
    kinds = {
        "5xx": [f for f in tally.failures if "answered 5" in f[1] or "server_error" in f[1]],
        "hangs": [f for f in tally.failures if "after" in f[1] or "no answer" in f[1]],
        "stored": [f for f in tally.failures if "stored" in f[1]],
    }
    others = [f for f in tally.failures if not any(f in found for found in kinds.values())]
    print(
        f"answers >= 500: {len(kinds['5xx'])}; hangs or answers over {SLOW_SECONDS:.0f} s: "
        f"{len(kinds['hangs'])}; refused inputs that stored something: {len(kinds['stored'])}; "
        f"other failures: {len(others)}"
    )
    for door, what, case in tally.failures[:40]:
        print(f"  {door}: {what}\n      {case}")
    if len(tally.failures) > 40:
        print(f"  ... and {len(tally.failures) - 40} more")
    met = not tally.failures and tally.total == args.inputs
    print("goal met" if met else "goal not met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
