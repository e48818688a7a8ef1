"""Bot replies through the WhatsApp and Telegram fakes while the worker is killed every few
seconds and Redis is frozen once: are they sent exactly once, in order, and soon enough?

Real processes: a uvicorn web process (it takes WhatsApp's status webhooks, which settle a
send whose answer was lost), beat running the send sweep, and a Celery worker that is killed
with SIGKILL (its pool too) every ``--kill-every`` seconds and started again at once. Redis is
the bench's own (never the machine's shared one): it is frozen with SIGSTOP once for
``--freeze`` seconds. The database is PostgreSQL when DATABASE_URL says so, else SQLite.

The bot writes two replies per conversation (half on WhatsApp, half on Telegram), through the
same service as a bot turn (``message_deliver``), spread over ``--spread`` seconds. A
baseline phase first sends a tenth as many with no faults, in the same run. It prints the
replies the platforms took exactly once, twice and never; the worst and median delay from
the reply's commit to the platform's acceptance, and its ratio to the baseline's; the
conversations whose replies arrived out of order; and whether every duplicate shows in the
delivery log as a possibly-sent attempt.

Goal (issue 18): 0 duplicates where the platform takes our reference back (WhatsApp), at
most 0.1 % elsewhere (Telegram) and each visible in the delivery log, 0 never sent, 0 out of
order, worst delay at most 60 s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_faults .venv/bin/python bench/faults.py
    .venv/bin/python bench/faults.py --smoke     # tiny sizes: checks the bench works
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402

SCRATCH = Path(tempfile.mkdtemp(prefix="chattonic-faults-"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=40.0, help="seconds to write them in")
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--freeze", type=float, default=10.0)
    parser.add_argument("--freeze-at", type=float, default=12.0)
    parser.add_argument("--deadline", type=float, default=300.0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the suite runs it)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.replies, args.spread, args.freeze, args.freeze_at = 24, 6.0, 3.0, 4.0
        args.deadline = 150.0

    # The environment first: the settings are read once, at the first import that needs them.
    redis_port = harness.free_port()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH / 'faults.sqlite3'}"
    os.environ.setdefault("CHATTONIC_VAR_DIR", str(SCRATCH))
    harness.production_environment()
    from tests.conversations.faults import OwnRedis

    redis_server = OwnRedis(SCRATCH, port=redis_port).start()
    try:
        return run(args, redis_server)
    finally:
        redis_server.stop()


def run(args, redis_server) -> int:
    harness.platform_ready([])
    from django.conf import settings

    from tests.fakes import FakeTelegram, FakeWhatsApp
    from tests.fakes.channels import CREDENTIALS

    with FakeWhatsApp() as whatsapp, FakeTelegram() as telegram:
        port = harness.free_port()
        env = {
            **os.environ,
            "WHATSAPP_API_BASE": whatsapp.base_url,
            "TELEGRAM_API_BASE": telegram.base_url,
            "OUTBOUND_ALLOWED_HOSTS": f"{whatsapp.netloc},{telegram.netloc}",
            "PYTHONUNBUFFERED": "1",
        }
        settings.OUTBOUND_ALLOWED_HOSTS = [whatsapp.netloc, telegram.netloc]
        channels = setup()
        whatsapp.statuses.report_to(
            f"http://127.0.0.1:{port}/hooks/whatsapp/{channels['whatsapp']}/",
            CREDENTIALS["whatsapp"]["app_secret"],
        )
        print(f"bench/faults.py: {harness.configuration()}, {args.replies} replies", flush=True)
        web, web_log = harness.start_server(
            "chattonic.asgi:application", port, SCRATCH / "web.log", env=env
        )
        beat = spawn(sweep_command(), env, "beat")
        try:
            base = phase(
                "baseline (no faults)",
                max(10, args.replies // 10),
                args,
                env,
                channels,
                whatsapp,
                telegram,
                faults=False,
                redis_server=redis_server,
            )
            run_ = phase(
                "faults",
                args.replies,
                args,
                env,
                channels,
                whatsapp,
                telegram,
                faults=True,
                redis_server=redis_server,
            )
        finally:
            beat.kill()
            beat.wait()
            harness.stop_server(web, web_log, timeout=20)
    return report(base, run_, args)


def setup() -> dict[str, int]:
    from django.db import connections

    from conversations.channels import channel_create
    from tests.factories import TenantFactory, launched_bot
    from tests.fakes.channels import CREDENTIALS

    stamp = time.time_ns()
    tenant = TenantFactory(name=f"Faults {stamp}", slug=f"faults-{stamp}")
    bot = launched_bot(tenant=tenant, name="Faults bot")
    ids = {}
    for kind in ("whatsapp", "telegram"):
        credentials = dict(CREDENTIALS[kind])
        channel = channel_create(
            tenant=tenant, bot=bot, kind=kind, name=f"Faults {kind}", credentials=credentials
        )
        ids[kind] = channel.pk
    connections.close_all()
    return ids


def sweep_command() -> list[str]:
    from tests.conversations.faults import sweep_beat

    return sweep_beat()


def spawn(command: list[str], env: dict, name: str):
    import subprocess

    log = open(SCRATCH / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def phase(name, count, args, env, channels, whatsapp, telegram, *, faults, redis_server):
    """Write ``count`` replies (two per conversation) over the spread, with or without the
    faults, and wait until none is pending. Returns what was written and when."""
    from django.db import connections, transaction

    from conversations.models import Channel, Message
    from conversations.services import message_deliver
    from tests.conversations.faults import kill_hard, worker
    from tests.factories import ContactFactory, ConversationFactory, MessageFactory
    from tests.processes import Process

    whatsapp.reset()
    telegram.reset()
    whatsapp.sent.clear()
    telegram.sent.clear()
    current = Process(worker(f"{name[:4]}0", concurrency=2), env, SCRATCH / "worker.log")
    current.start()
    written: dict[int, dict] = {}
    conversations = max(1, count // 2)
    started = time.monotonic()
    next_kill = started + args.kill_every
    frozen_until = None
    froze = False
    kills = 0
    pending_ids: set[int] = set()
    for index in range(conversations):
        kind = "whatsapp" if index % 2 == 0 else "telegram"
        channel = Channel.objects.get(pk=channels[kind])
        recipient = f"1650555{index:04d}" if kind == "whatsapp" else str(100000000 + index)
        contact = ContactFactory(tenant=channel.tenant)
        conversation = ConversationFactory(
            tenant=channel.tenant,
            bot=channel.bot,
            contact=contact,
            channel=channel,
            channel_kind=kind,
            recipient_id=recipient,
            bot_version_id=channel.bot.published_version_id,
        )
        with transaction.atomic():  # one bot turn: two replies, their sends after the commit
            for j in range(2):
                text = f"{name[:4]} {index}.{j} {secrets.token_hex(3)}"
                message = MessageFactory(
                    tenant=channel.tenant,
                    conversation=conversation,
                    channel=channel,
                    direction=Message.Direction.OUT,
                    sender=Message.Sender.BOT,
                    text=text,
                    status=Message.Status.PENDING,
                )
                written[message.pk] = {
                    "kind": kind,
                    "text": text,
                    "conversation": conversation.pk,
                    "order": j,
                    "at": time.monotonic(),
                }
                pending_ids.add(message.pk)
                message_deliver(message=message)
        # Pace the bot's writing over the spread, injecting the faults meanwhile.
        due = started + args.spread * (index + 1) / conversations
        while time.monotonic() < due:
            current, next_kill, kills, frozen_until, froze = faults_tick(
                faults,
                args,
                current,
                next_kill,
                kills,
                frozen_until,
                froze,
                started,
                redis_server,
                env,
                name,
                kill_hard,
                worker,
                Process,
            )
            time.sleep(0.05)  # the bench's own pacing (a bot writes at its own pace)
    deadline = time.monotonic() + args.deadline
    while pending_ids and time.monotonic() < deadline:
        current, next_kill, kills, frozen_until, froze = faults_tick(
            faults,
            args,
            current,
            next_kill,
            kills,
            frozen_until,
            froze,
            started,
            redis_server,
            env,
            name,
            kill_hard,
            worker,
            Process,
        )
        try:
            done = set(
                Message.objects.filter(pk__in=pending_ids)
                .exclude(status=Message.Status.PENDING)
                .values_list("pk", flat=True)
            )
        except Exception:  # noqa: BLE001 - the database is ours; a hiccup is retried
            connections.close_all()
            done = set()
        pending_ids -= done
        time.sleep(0.2)
    if frozen_until is not None:
        redis_server.thaw()
    current.stop()
    connections.close_all()
    return {
        "name": name,
        "written": written,
        "whatsapp": [r for r in whatsapp.requests if r.answered == 200],
        "telegram": [r for r in telegram.requests if r.answered == 200],
        "kills": kills,
        "froze": froze,
        "pending": len(pending_ids),
    }


def faults_tick(
    faults,
    args,
    current,
    next_kill,
    kills,
    frozen_until,
    froze,
    started,
    redis_server,
    env,
    name,
    kill_hard,
    worker,
    process_class,
):
    now = time.monotonic()
    if not faults:
        return current, next_kill, kills, frozen_until, froze
    if now >= next_kill:
        kill_hard(current)
        current.stop()
        kills += 1
        current = process_class(
            worker(f"{name[:4]}{kills}", concurrency=2), env, SCRATCH / "worker.log"
        )
        current.start()
        next_kill = now + args.kill_every
    if not froze and now - started >= args.freeze_at:
        redis_server.freeze()
        frozen_until, froze = now + args.freeze, True
    if frozen_until is not None and now >= frozen_until:
        redis_server.thaw()
        frozen_until = None
    return current, next_kill, kills, frozen_until, froze


def tally(result: dict) -> dict:
    """How many times each reply reached its platform, when first, and in which order."""
    from conversations.models import DeliveryAttempt

    by_text = {info["text"]: pk for pk, info in result["written"].items()}
    arrivals: dict[int, list[float]] = {pk: [] for pk in result["written"]}
    for request in result["whatsapp"]:
        pk = int(request.json.get("biz_opaque_callback_data") or 0)
        if pk in arrivals:
            arrivals[pk].append(request.received_at)
    for request in result["telegram"]:
        pk = by_text.get((request.json or {}).get("text"))
        if pk in arrivals:
            arrivals[pk].append(request.received_at)
    once = sum(len(a) == 1 for a in arrivals.values())
    twice = [pk for pk, a in arrivals.items() if len(a) >= 2]
    never = [pk for pk, a in arrivals.items() if not a]
    delays = [min(a) - result["written"][pk]["at"] for pk, a in arrivals.items() if a]
    by_conversation: dict[int, list[tuple[float, int]]] = {}
    for pk, a in arrivals.items():
        if a:
            info = result["written"][pk]
            by_conversation.setdefault(info["conversation"], []).append((min(a), info["order"]))
    out_of_order = sum(
        [order for _, order in sorted(items)] != sorted(order for _, order in items)
        for items in by_conversation.values()
    )
    visible = all(
        DeliveryAttempt.objects.filter(message_id=pk, outcome__in=["lost", "unknown"]).exists()
        for pk in twice
    )
    twice_whatsapp = sum(result["written"][pk]["kind"] == "whatsapp" for pk in twice)
    return {
        "total": len(arrivals),
        "once": once,
        "twice": len(twice),
        "twice_whatsapp": twice_whatsapp,
        "never": len(never),
        "worst": max(delays) if delays else float("inf"),
        "median": statistics.median(delays) if delays else float("inf"),
        "out_of_order": out_of_order,
        "visible": visible,
    }


def report(base: dict, run_: dict, args) -> int:
    b, f = tally(base), tally(run_)
    print(f"baseline: {b['total']} replies, no faults")
    print(f"  worst delay {b['worst']:.2f} s, median {b['median']:.2f} s")
    print(
        f"faults: {f['total']} replies, worker killed {run_['kills']} times "
        f"(every {args.kill_every:g} s), Redis frozen {args.freeze:g} s: "
        f"{'yes' if run_['froze'] else 'no'}"
    )
    print(f"  sent exactly once: {f['once']}")
    print(
        f"  sent twice: {f['twice']} ({f['twice_whatsapp']} on WhatsApp), "
        f"each visible in the delivery log: {'yes' if f['visible'] else 'no'}"
    )
    print(f"  never sent: {f['never']}")
    print(f"  worst delay: {f['worst']:.2f} s, median {f['median']:.2f} s")
    ratio = f["median"] / b["median"] if b["median"] else float("inf")
    print(f"  median delay against the baseline: {ratio:.1f}x")
    print(f"  out of order: {f['out_of_order']} conversations")
    telegram_total = sum(info["kind"] == "telegram" for info in run_["written"].values())
    elsewhere = (f["twice"] - f["twice_whatsapp"]) / max(1, telegram_total)
    met = (
        f["twice_whatsapp"] == 0
        and elsewhere <= 0.001
        and f["visible"]
        and f["never"] == 0
        and f["out_of_order"] == 0
        and f["worst"] <= 60
    )
    print("goal met" if met else "goal not met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
