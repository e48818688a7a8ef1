"""Web chat bench: visitors chatting with a bot, against a bare Channels echo, same server.

    .venv/bin/python bench/webchat.py [--visitors 200] [--messages 50] [--rounds 3] [--smoke]

Starts ONE uvicorn process serving the platform plus a bare echo consumer
(bench/echo_asgi.py), creates a launched bot whose flow answers every message, then:

1. echo: each visitor opens ``/ws/echo/`` and sends its messages one after the other, each
   awaiting its echo;
2. stored echo: the same against ``/ws/stored-echo/``, which stores each frame as one row
   (one INSERT in a database thread) before echoing it: the floor of any chat that keeps a
   message before it answers, printed as a second ratio;
3. webchat: each visitor opens ``/ws/webchat/<key>/`` and sends ``message`` frames one after
   the other, each awaiting the bot's reply (in the frame's ack, or a ``message`` frame
   after it) before the next.

All visitors run at once (asyncio, the ``websockets`` client). The echo and the web chat
phases alternate, ``--rounds`` times (the stored echo runs once, after the first echo): this
machine's speed drifts within seconds, and a lone pair of phases a few seconds long caught
it more than what it measured. It prints each round's throughputs (messages per second),
p50/p99 latencies (send to echo; send to the bot's reply) and the server's and this client's
CPU time per message (the server's also split: its event loop's / its other threads'; and its
lane worker processes', webchat/lane_workers.py, apart), then the
medians of the rounds and their ratios. Goal: at least 60 % of the echo's throughput, a p99 at
most 1.5 times the echo's; the last line says "goal met" or "goal not met". It checks that
every message was stored exactly once (a run that stored one twice, or lost one, fails
whatever its figures). ``--smoke``: a tiny run (3 visitors, 2
messages, 2 rounds) that the test suite runs to see that the bench still works; its figures
mean nothing.

Configuration as the platform's: no environment = the embedded defaults (SQLite and the
embedded Redis, in var/bench unless CHATTONIC_VAR_DIR says otherwise);
DATABASE_URL + REDIS_URL = PostgreSQL + Redis (the database must exist; migrations are
applied). The web process runs no Celery worker: a bot's plain replies use no task.
The one client address (127.0.0.1) is exempt from the per-IP and per-visitor limits for
the server of this run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

harness.production_environment()

ORIGIN = "https://bench.example.com"
THROUGHPUT_GOAL = 0.60  # of the echo's, at least
P99_GOAL = 1.5  # times the echo's, at most
QUESTION = "how much is it"
ANSWER = "Plans start at $10."

# A flow that answers every message: a router whose intent gives the price, and whose
# fallback says it noted the message; both go back to the router.
FLOW = {
    "start": "menu",
    "main": "menu",
    "intents": [
        {"name": "pricing", "phrases": ["how much is it", "prices", "what does it cost"]},
        {"name": "hours", "phrases": ["when are you open", "opening hours"]},
    ],
    "nodes": {
        "menu": {
            "type": "router",
            "routes": {"pricing": "prices", "hours": "hours"},
            "fallback": "noted",
        },
        "prices": {"type": "message", "text": ANSWER, "next": "menu"},
        "hours": {"type": "message", "text": "From 9 to 6.", "next": "menu"},
        "noted": {"type": "message", "text": "Noted, thank you.", "next": "menu"},
    },
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# --- Set-up, in this process ------------------------------------------------------------------


def prepare(keep_redis: list) -> tuple[int, str]:
    """Migrate, start the embedded Redis if that is the configuration, create the bot."""
    harness.platform_ready(keep_redis)
    from django.db import connections

    from bots.services import bot_launch, bot_publish, bot_version_train
    from tests.factories import BotFactory, TenantFactory

    tenant = TenantFactory(name=f"Bench {time.time_ns()}", slug=f"bench-{time.time_ns()}")
    bot = BotFactory(
        tenant=tenant, name="Bench bot", draft_definition=FLOW, allowed_origins=[ORIGIN]
    )
    bot_version_train(version_id=bot_publish(bot=bot).pk)  # no worker runs here
    bot = bot_launch(bot=bot)
    connections.close_all()
    return tenant.pk, bot.public_key


def clean_up(tenant_id: int) -> None:
    from django.db import connections

    from chattonic.tenancy.models import Tenant
    from conversations.models import Conversation

    Conversation.objects.filter(tenant_id=tenant_id).delete()  # bots protect theirs
    Tenant.objects.filter(pk=tenant_id).delete()
    connections.close_all()


# --- The server ---------------------------------------------------------------------------------


def start_server(port: int, log_path: Path) -> tuple[subprocess.Popen, object]:
    env = dict(os.environ)
    env["WEBCHAT_MAX_CONNECTIONS_PER_IP"] = "1000000"
    env["WEBCHAT_MESSAGES_PER_10S"] = "1000000"
    return harness.start_server("bench.echo_asgi:application", port, log_path, env=env)


def stop_server(process: subprocess.Popen, log) -> None:
    harness.stop_server(process, log)


# --- The visitors -------------------------------------------------------------------------------


async def run_visitors(visitor, count: int) -> tuple[float, list[float]]:
    """Connect ``count`` visitors, then let them all go at once; (seconds, latencies)."""
    ready = asyncio.Semaphore(0)
    go = asyncio.Event()
    latencies: list[float] = []
    tasks = [asyncio.create_task(visitor(n, ready, go, latencies)) for n in range(count)]
    for _ in range(count):
        waiter = asyncio.create_task(ready.acquire())
        done, _ = await asyncio.wait(
            [waiter, *tasks], timeout=120, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            for task in done:
                task.result()  # a visitor failed to connect: raise its error
            raise SystemExit("visitors did not connect in time")
    started = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    return time.perf_counter() - started, latencies


def echo_visitor(url: str, messages: int):
    from websockets.asyncio.client import connect

    async def visitor(n, ready, go, latencies):
        async with connect(url, origin=ORIGIN, max_size=None, open_timeout=120) as ws:
            ready.release()
            await go.wait()
            for i in range(messages):
                frame = json.dumps({"type": "message", "client_id": f"{n}-{i}", "text": QUESTION})
                sent = time.perf_counter()
                await ws.send(frame)
                if await ws.recv() != frame:
                    raise AssertionError("the echo changed the frame")
                latencies.append(time.perf_counter() - sent)

    return visitor


def webchat_visitor(url: str, messages: int, round_: int = 0):
    from websockets.asyncio.client import connect

    async def visitor(n, ready, go, latencies):
        async with connect(url, origin=ORIGIN, max_size=None, open_timeout=120) as ws:
            session = json.loads(await ws.recv())
            if session.get("type") != "session":
                raise AssertionError(f"visitor {n}: {session}")
            ready.release()
            await go.wait()
            for i in range(messages):
                client_id = f"{round_}.{n}-{i}"
                frame = json.dumps({"type": "message", "client_id": client_id, "text": QUESTION})
                sent = time.perf_counter()
                await ws.send(frame)
                acked = False
                while True:  # the ack (with the stored message and the replies ready)
                    event = json.loads(await ws.recv())
                    kind = event["type"]
                    if kind == "ack" and event["client_id"] == client_id:
                        acked = True
                        said = [m for m in event["replies"] if m["sender"] == "bot"]
                    elif kind == "message" and acked and event["message"]["sender"] == "bot":
                        said = [event["message"]]  # a reply that came after the ack
                    elif kind == "error":
                        raise AssertionError(f"visitor {n}: {event}")
                    else:
                        continue
                    if said and said[-1]["text"] == ANSWER:
                        latencies.append(time.perf_counter() - sent)
                        break
                    if said and i:  # only the first message may hear a greeting first
                        raise AssertionError(f"visitor {n}: the bot said {said}")

    return visitor


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int) -> tuple[float, float]:
    """CPU time of a process's main thread (the server's event loop) and of its other threads
    (the database threads, the opening threads), from Linux's /proc (NaN elsewhere)."""
    loop = others = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return float("nan"), float("nan")
    for task in tasks:
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that ended meanwhile
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if task.name == str(pid):
            loop += seconds
        else:
            others += seconds
    return loop, others


def children_seconds(pid: int) -> float:
    """CPU time of a process's children (the web process's lane workers), from Linux's /proc
    (0 with none; NaN elsewhere)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return float("nan")
    children = set()
    for task in tasks:
        try:
            children.update((task / "children").read_text().split())
        except OSError:
            continue
    return sum(cpu_seconds(int(child)) for child in children)


def measure(name: str, server: subprocess.Popen, visitor, visitors: int, messages: int) -> dict:
    """One phase: throughput, latencies, and the server's CPU time per message (a figure
    that other load on the machine disturbs less than wall-clock ones)."""
    cpu = cpu_seconds(server.pid)
    loop, threads = thread_seconds(server.pid)
    workers = children_seconds(server.pid)
    client = time.process_time()
    seconds, latencies = asyncio.run(run_visitors(visitor, visitors))
    cpu = cpu_seconds(server.pid) - cpu
    loop_after, threads_after = thread_seconds(server.pid)
    workers = children_seconds(server.pid) - workers
    client = time.process_time() - client
    total = visitors * messages
    return {
        "name": name,
        "rate": total / seconds,
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "seconds": seconds,
        "cpu": cpu / total * 1000,
        "client": client / total * 1000,
        "loop": (loop_after - loop) / total * 1000,
        "threads": (threads_after - threads) / total * 1000,
        "workers": workers / total * 1000,
    }


def median_row(rows: list[dict]) -> dict:
    """Each figure's median over the rounds (the one row itself when there is one)."""
    if len(rows) == 1:
        return rows[0]
    median = {"name": f"median {rows[0]['name']}"}
    for key in ("rate", "p50", "p99", "seconds", "cpu", "client", "loop", "threads", "workers"):
        median[key] = statistics.median(row[key] for row in rows)
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--messages", type=int, default=50, help="messages per visitor")
    parser.add_argument(
        "--rounds", type=int, default=3, help="echo and web chat phases, alternating"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench's tenant and data")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny run: does the bench work (figures mean nothing)",
    )
    parser.add_argument(
        "--no-stored-echo", action="store_true", help="skip the stored echo (when profiling)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.visitors, args.messages, args.rounds = 3, 2, 2

    redis: list = []
    try:
        tenant_id, key = prepare(redis)
        from django.conf import settings

        port = harness.free_port()
        log_path = Path(settings.VAR_DIR) / "bench-webchat-uvicorn.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        server, log = start_server(port, log_path)
        total = args.visitors * args.messages * args.rounds
        try:
            base = f"ws://127.0.0.1:{port}"

            def phase(name: str, visitor) -> dict:
                return measure(name, server, visitor, args.visitors, args.messages)

            rows, stored_echo = [], None
            for round_ in range(args.rounds):
                rows.append(phase("echo consumer", echo_visitor(f"{base}/ws/echo/", args.messages)))
                if round_ == 0 and not args.no_stored_echo:
                    stored_echo = phase(
                        "stored echo",
                        echo_visitor(f"{base}/ws/stored-echo/?tenant={tenant_id}", args.messages),
                    )
                chat_url = f"{base}/ws/webchat/{key}/"
                rows.append(
                    phase("web chat + bot", webchat_visitor(chat_url, args.messages, round_))
                )
        finally:
            stop_server(server, log)
        stored, distinct = harness.stored_inbound(tenant_id)
        if not args.keep:
            clean_up(tenant_id)
    finally:
        from chattonic.core import embedded

        for process in redis:  # the embedded Redis, if this run started it
            embedded.stop(process)

    print(
        f"web chat bench: {args.visitors} visitors x {args.messages} messages, "
        f"one uvicorn process, {harness.configuration()}"
    )
    print(
        f"{'':22} {'msg/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'seconds':>9} "
        f"{'server CPU ms/msg':>18} {'client CPU':>11} {'loop/threads':>13} {'workers':>8}"
    )
    echoes = [row for row in rows if row["name"] == "echo consumer"]
    chats = [row for row in rows if row["name"] == "web chat + bot"]
    echo, chat = median_row(echoes), median_row(chats)
    shown = list(rows)
    if stored_echo:
        shown.insert(1, stored_echo)
    if args.rounds > 1:
        shown += [echo, chat]
    for row in shown:
        print(
            f"{row['name']:22} {row['rate']:9.0f} {row['p50']:9.1f} {row['p99']:9.1f} "
            f"{row['seconds']:9.2f} {row['cpu']:18.2f} {row['client']:11.2f} "
            f"{row['loop']:6.2f}/{row['threads']:<6.2f} {row['workers']:8.2f}"
        )
    if args.rounds > 1:
        each = ", ".join(
            f"{c['rate'] / e['rate']:.2f}; {c['p99'] / e['p99']:.2f}"
            for e, c in zip(echoes, chats, strict=True)
        )
        print(f"each round's ratios (throughput; p99): {each}")
    throughput_ratio = chat["rate"] / echo["rate"]
    p99_ratio = chat["p99"] / echo["p99"]
    print(
        f"ratio web chat / echo{' (medians)' if args.rounds > 1 else ''}: throughput "
        f"{throughput_ratio:.2f} (goal >= {THROUGHPUT_GOAL:.2f}), p99 {p99_ratio:.2f} "
        f"(goal <= {P99_GOAL:.2f})"
    )
    if stored_echo:
        print(
            f"ratio stored echo / echo: throughput {stored_echo['rate'] / echo['rate']:.2f} "
            f"(the floor of storing each message before answering)"
        )
    print(f"stored: {stored} visitor messages, {distinct} distinct client ids, {total} sent")
    if stored != total or distinct != total:
        print("FAILED: every message must be stored exactly once")
        print("goal not met")
        return 1
    met = throughput_ratio >= THROUGHPUT_GOAL and p99_ratio <= P99_GOAL
    print("goal met" if met else "goal not met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
