"""Channel webhooks bench: signed WhatsApp webhooks against a bare DRF view, same server.

    .venv/bin/python bench/webhooks.py [--rates 40,80,160,320] [--seconds 5]
                                       [--concurrency 32] [--capacity-seconds 8] [--workers N]

Starts ONE uvicorn server (``--workers`` processes, one per core by default, as deployed: a
process's Python runs on one core at a time, the GIL) serving the platform plus a bare
DRF view that reads the body and writes one row (bench/webhooks_asgi.py), creates a
launched bot with a WhatsApp channel, then, for both endpoints in the same run:

1. capacity: ``--concurrency`` clients post one after the other for ``--capacity-seconds``
   (closed loop): the most requests per second each endpoint acknowledges;
2. rates: posts at each of ``--rates`` requests per second for ``--seconds`` (open loop: a
   request is due at its time whether or not earlier ones were answered, and its latency
   counts from then), until the webhook falls behind.

Every webhook is a new message (its own wamid), signed with ``X-Hub-Signature-256`` as Meta
signs it, from one of 200 WhatsApp users. It prints the throughputs, their ratio, and at each
rate the achieved rate, the ack p50/p99 and the share of acks over 1 s. Goal: capacity ratio
>= 60 %, and at 320 requests per second an ack median <= 250 ms with under 1 % over 1 s, on
PostgreSQL + Redis. On a small machine the client itself may not reach 320/s: the highest
rate sustained is printed. It checks that every acknowledged message was stored exactly once.

Configuration as the platform's: no environment = the embedded defaults (SQLite and the
embedded Redis, in var/bench unless CHATTONIC_VAR_DIR says otherwise); DATABASE_URL +
REDIS_URL = PostgreSQL + Redis (the database must exist; migrations are applied). No Celery
worker runs: the bot's turns wait in the queue, which the bench empties at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

harness.production_environment()

APP_SECRET = "bench-app-secret"  # noqa: S105 - the bench channel's own
USERS = 200
GOAL_RATIO = 0.60
GOAL_RATE = 320
GOAL_P50_MS = 250.0
SUSTAINED = 0.95  # a rate is sustained when at least this share of it is acknowledged in time


def prepare(keep_redis: list) -> tuple[int, int]:
    """Migrate, start the embedded Redis if that is the configuration, create the channel."""
    harness.platform_ready(keep_redis)
    from django.db import connections

    from messaging.services import channel_create
    from tests.factories import TenantFactory, launched_bot

    stamp = time.time_ns()
    tenant = TenantFactory(name=f"Bench {stamp}", slug=f"bench-{stamp}")
    bot = launched_bot(tenant=tenant, name="Bench bot")
    channel = channel_create(
        tenant=tenant,
        bot=bot,
        kind="whatsapp",
        name="Bench WhatsApp",
        credentials={
            "access_token": "bench",
            "app_secret": APP_SECRET,
            "verify_token": "bench",
            "phone_number_id": "106540352242922",
        },
    )
    connections.close_all()
    return tenant.pk, channel.pk


def clean_up(tenant_id: int) -> None:
    from django.db import connections

    from chattonic.celery import app
    from chattonic.tenancy.models import Tenant
    from conversations.models import Conversation

    Conversation.objects.filter(tenant_id=tenant_id).delete()
    Tenant.objects.filter(pk=tenant_id).delete()
    connections.close_all()
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")  # the bot turns nobody will run


# --- The server -------------------------------------------------------------------------------


def start_server(port: int, log_path: Path, workers: int) -> tuple[subprocess.Popen, object]:
    env = {**os.environ, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    extra = ("--backlog", "4096", "--workers", str(workers))
    return harness.start_server(
        "bench.webhooks_asgi:application", port, log_path, env=env, extra=extra
    )


def stop_server(process: subprocess.Popen, log) -> None:
    harness.stop_server(process, log, timeout=20)


# --- The requests -----------------------------------------------------------------------------


def whatsapp_webhook(n: int) -> tuple[bytes, dict[str, str]]:
    """A new text message from one of the bench's users, signed as Meta signs it."""
    user = f"1650555{n % USERS:04d}"  # USERS may be lowered by --users
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": f"User {user}"}, "wa_id": user}],
                            "messages": [
                                {
                                    "from": user,
                                    "id": f"wamid.BENCH{uuid.uuid4().hex}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": "how much is it"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


def requests_for(count: int) -> list[tuple[bytes, dict[str, str]]]:
    return [whatsapp_webhook(n) for n in range(count)]


def endless_requests():
    return (whatsapp_webhook(n) for n in itertools.count())


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def post(session, url: str, body: bytes, headers: dict, due: float) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except Exception:  # noqa: BLE001 - a refused or dropped connection counts as a failure
        status = 0
    return loop.time() - due, status


async def closed_loop(url: str, items, concurrency: int, seconds: float) -> dict:
    """``concurrency`` clients, each posting the next request once the last was answered."""
    import aiohttp

    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failures = 0
    cursor = iter(items)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = loop.time()
        end = start + seconds

        async def client():
            nonlocal failures
            while loop.time() < end:
                item = next(cursor, None)
                if item is None:
                    return
                latency, status = await post(session, url, *item, loop.time())
                if status == 200:
                    latencies.append(latency)
                else:
                    failures += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = loop.time() - start
    return {
        "rate": len(latencies) / elapsed,
        "ok": len(latencies),
        "failures": failures,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


async def open_loop(url: str, items: list, rate: float, seconds: float) -> dict:
    """Requests due at a fixed rate; each latency counts from its due time."""
    import aiohttp

    loop = asyncio.get_running_loop()
    count = max(1, int(rate * seconds))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = loop.time() + 0.05
        tasks = []
        for i, item in enumerate(items[:count]):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, url, *item, due)))
        results = await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    latencies = [latency for latency, status in results if status == 200]
    return {
        "offered": rate,
        "rate": len(latencies) / max(elapsed, count / rate),
        "ok": len(latencies),
        "failures": count - len(latencies),
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "over_1s": sum(1 for value in latencies if value > 1.0) / count,
        "in_time": sum(1 for value in latencies if value <= 1.0) / count,
    }


# --- Main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    global USERS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="40,80,160,320", help="requests per second, rising")
    parser.add_argument("--seconds", type=float, default=5.0, help="per rate step")
    parser.add_argument("--concurrency", type=int, default=32, help="capacity clients")
    parser.add_argument("--capacity-seconds", type=float, default=8.0)
    parser.add_argument("--users", type=int, default=USERS, help="WhatsApp users writing")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="uvicorn worker processes"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench's tenant and data")
    args = parser.parse_args(argv)
    USERS = max(1, args.users)
    rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]

    redis: list = []
    tenant_id, channel_id = prepare(redis)
    from django.conf import settings

    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    hook = f"{base}/hooks/whatsapp/{channel_id}/"
    bare = f"{base}/bench/bare/?tenant={tenant_id}"
    server, log = start_server(
        port, Path(settings.VAR_DIR) / "bench-webhooks-uvicorn.log", args.workers
    )
    acknowledged = 0
    rows = []
    try:
        # Warm both paths (imports, connections) before measuring.
        # Every user writes once first, so that the measured webhooks find their
        # conversations (a first message also creates the contact and the conversation).
        asyncio.run(closed_loop(bare, requests_for(USERS), 8, 120))
        warm = asyncio.run(closed_loop(hook, requests_for(USERS), 8, 120))
        acknowledged += warm["ok"]
        bare_cap = asyncio.run(
            closed_loop(bare, endless_requests(), args.concurrency, args.capacity_seconds)
        )
        hook_cap = asyncio.run(
            closed_loop(hook, endless_requests(), args.concurrency, args.capacity_seconds)
        )
        acknowledged += hook_cap["ok"]
        for rate in rates:
            count = max(1, int(rate * args.seconds))
            bare_row = asyncio.run(open_loop(bare, requests_for(count), rate, args.seconds))
            hook_row = asyncio.run(open_loop(hook, requests_for(count), rate, args.seconds))
            acknowledged += hook_row["ok"]
            rows.append((rate, bare_row, hook_row))
            if hook_row["in_time"] < 0.5:
                break  # far behind: higher rates only queue more
    finally:
        stop_server(server, log)

    total, distinct = harness.stored_inbound(tenant_id)
    if not args.keep:
        clean_up(tenant_id)
    from chattonic.core import embedded

    for process in redis:
        embedded.stop(process)

    setup = harness.configuration()
    print(
        f"channel webhooks bench: uvicorn with {args.workers} worker process(es), {setup}, "
        "client on this host"
    )
    print(f"capacity ({args.concurrency} clients, {args.capacity_seconds:g} s, closed loop)")
    print(f"  {'':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for name, row in (("bare DRF view (one row)", bare_cap), ("WhatsApp webhook", hook_cap)):
        print(
            f"  {name:26} {row['rate']:8.1f} {row['p50']:8.1f} {row['p99']:8.1f} "
            f"{row['failures']:7d}"
        )
    ratio = hook_cap["rate"] / bare_cap["rate"] if bare_cap["rate"] else 0.0
    print(f"  ratio webhook / bare       {ratio * 100:7.1f} %  (goal >= {GOAL_RATIO:.0%})")
    print(f"rates ({args.seconds:g} s each, open loop; latency from each request's due time)")
    print(
        f"  {'offered':>7} | {'bare req/s':>10} {'p50':>7} {'p99':>7} {'>1s':>6} | "
        f"{'hook req/s':>10} {'p50':>7} {'p99':>7} {'>1s':>6}"
    )
    best = 0.0
    for rate, b, h in rows:
        print(
            f"  {rate:7.0f} | {b['rate']:10.1f} {b['p50']:7.1f} {b['p99']:7.1f} "
            f"{b['over_1s']:6.1%} | {h['rate']:10.1f} {h['p50']:7.1f} {h['p99']:7.1f} "
            f"{h['over_1s']:6.1%}"
        )
        if h["in_time"] >= SUSTAINED and h["p50"] <= GOAL_P50_MS:
            best = max(best, rate)
    print(
        f"highest rate the webhook sustained (>= {SUSTAINED:.0%} acked within 1 s, "
        f"p50 <= {GOAL_P50_MS:.0f} ms): {best:.0f} req/s (goal {GOAL_RATE})"
    )
    print(f"stored: {total} messages, {distinct} distinct ids, {acknowledged} acknowledged")
    if total != distinct or total < acknowledged:
        print("FAILED: every acknowledged message must be stored exactly once")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
