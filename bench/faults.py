"""Bot replies through the WhatsApp and Telegram fakes while the worker is killed every few
seconds and Redis is frozen once: are they sent exactly once, in order, and soon enough?

Real processes: a uvicorn web process (it takes WhatsApp's status webhooks, which settle a
send whose answer was lost), beat running the send sweep, and a Celery worker (prefork, two
processes) that is killed with SIGKILL, its pool too, ``--kill-every`` seconds after it came
up, and started again at once. Redis is the bench's own (never the machine's shared one): it
is frozen with SIGSTOP once for ``--freeze`` seconds. The faults come from a thread of their
own, so that a bench blocked on the frozen Redis still thaws it on time. The database is
PostgreSQL when DATABASE_URL says so, else SQLite.

The bot writes two replies per conversation (half on WhatsApp, half on Telegram) in one
transaction, through the same service as a bot turn (``message_deliver``), spread over
``--spread`` seconds. A baseline phase first sends a tenth as many with no faults, in the same
run. The faults go on until every reply is settled. It prints the replies the platforms took
exactly once, twice and never; the worst and median delay from the reply's commit to the
platform's acceptance, and the median's ratio to the baseline's; the conversations whose
replies arrived out of order; and whether every duplicate shows in the delivery log as a
possibly-sent attempt (``lost`` or ``unknown``).

Goal (issue 18): 0 duplicates where the platform accepts an idempotency key (neither
WhatsApp's nor Telegram's send API takes one: the settle-by-status of docs/channels.md is
what there is), at most 0.1 % elsewhere and each visible in the delivery log, 0 never sent,
0 out of order, worst delay at most 60 s. The run always ends: past ``--deadline`` seconds
it prints what it has and "goal not met".

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_faults .venv/bin/python bench/faults.py
    .venv/bin/python bench/faults.py --smoke     # tiny sizes: checks the bench works

Progress goes to stderr every few seconds; the processes' logs stay in the scratch directory
it names.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402

SCRATCH = Path(tempfile.mkdtemp(prefix="chattonic-faults-"))
GOAL_WORST_DELAY = 60.0
GOAL_DUPLICATES = 0.001


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=600.0, help="seconds to write them in")
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--freeze", type=float, default=10.0)
    parser.add_argument("--freeze-at", type=float, default=30.0)
    parser.add_argument("--deadline", type=float, default=1500.0, help="the whole run's")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the suite runs it)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.replies, args.spread, args.kill_every = 16, 6.0, 4.0
        args.freeze, args.freeze_at, args.deadline = 2.0, 3.0, 100.0
    started = time.monotonic()
    args.ends_at = started + args.deadline

    # The environment first: the settings are read once, at the first import that needs them.
    redis_port = harness.free_port()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH / 'faults.sqlite3'}"
    os.environ.setdefault("CHATTONIC_VAR_DIR", str(SCRATCH))
    harness.production_environment()
    from tests.conversations.faults import OwnRedis

    progress(f"scratch directory (logs): {SCRATCH}")
    redis_server = OwnRedis(SCRATCH, port=redis_port).start()
    run = Run(args, redis_server)
    watchdog = threading.Thread(target=run.watch, daemon=True)
    watchdog.start()
    try:
        return run.main()
    finally:
        run.shutdown()
        redis_server.stop()


class Chaos(threading.Thread):
    """The worker of a phase, and the faults: a SIGKILL ``kill_every`` seconds after each
    worker came up (a fresh one is started at once), Redis frozen once. Runs until stopped."""

    def __init__(self, label: str, args, env: dict, redis_server, *, faults: bool):
        super().__init__(daemon=True, name=f"chaos-{label}")
        self.label, self.args, self.env, self.redis = label, args, env, redis_server
        self.faults = faults
        self.kills = 0
        self.froze = False
        self.frozen = False
        self.halt = threading.Event()
        self.worker = None
        self.ready_at: float | None = None
        self.up_seconds = 0.0  # the workers' time between ready and killed (or stopped)
        self.lock = threading.Lock()

    def start_worker(self) -> None:
        from tests.conversations.faults import worker
        from tests.processes import Process

        log = SCRATCH / f"worker-{self.label}-{self.kills}.log"
        self.worker = Process(worker(f"{self.label}{self.kills}", concurrency=2), self.env, log)
        self.worker.start()
        self.ready_at = None

    def worker_ready(self) -> bool:
        if self.ready_at is None and " ready." in self.worker.output():
            self.ready_at = time.monotonic()
        return self.ready_at is not None

    def run(self) -> None:
        from tests.conversations.faults import kill_hard

        started = time.monotonic()
        thaw_at = None
        try:
            while not self.halt.wait(0.1):
                now = time.monotonic()
                if not self.faults:
                    continue
                if not self.froze and now - started >= self.args.freeze_at:
                    self.redis.freeze()
                    self.froze = self.frozen = True
                    thaw_at = now + self.args.freeze
                    progress(f"{self.label}: Redis frozen (SIGSTOP) for {self.args.freeze:g} s")
                if self.frozen and now >= thaw_at:
                    self.redis.thaw()
                    self.frozen = False
                    progress(f"{self.label}: Redis thawed (SIGCONT)")
                if self.worker_ready() and now - self.ready_at >= self.args.kill_every:
                    with self.lock:
                        self.up_seconds += time.monotonic() - self.ready_at
                        kill_hard(self.worker)
                        self.worker.stop()
                        self.kills += 1
                        self.start_worker()
        finally:
            if self.frozen:
                self.redis.thaw()
                self.frozen = False

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(timeout=30)
        with self.lock:
            if self.ready_at is not None:
                self.up_seconds += time.monotonic() - self.ready_at
                self.ready_at = None
            if self.worker is not None:
                self.worker.stop(timeout=20)


class Run:
    def __init__(self, args, redis_server):
        self.args = args
        self.redis = redis_server
        self.results: list[dict] = []
        self.current: dict | None = None  # the phase under way, for the watchdog
        self.chaos: Chaos | None = None
        self.web = self.beat = None
        self.done = threading.Event()
        self.printing = threading.Lock()

    def main(self) -> int:
        harness.platform_ready([])
        from django.conf import settings

        from tests.fakes import FakeTelegram, FakeWhatsApp
        from tests.fakes.channels import CREDENTIALS

        with FakeWhatsApp() as whatsapp, FakeTelegram() as telegram:
            self.whatsapp, self.telegram = whatsapp, telegram
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
            print(
                f"bench/faults.py: {harness.configuration()}, {self.args.replies} replies",
                flush=True,
            )
            self.web, self.web_log = harness.start_server(
                "chattonic.asgi:application", port, SCRATCH / "web.log", env=env
            )
            self.beat = spawn(sweep_command(), env, "beat")
            progress("web and beat started")
            for name, count, faults in (
                ("base", max(8, self.args.replies // 10), False),
                ("faults", self.args.replies, True),
            ):
                result = self.phase(name, count, env, channels, faults=faults)
                self.results.append(result)
                if result["pending"]:
                    break
            self.shutdown()
        with self.printing:
            if self.done.is_set():
                return 0  # the watchdog printed
            self.done.set()
            self.report()
        return 0

    def shutdown(self) -> None:
        if self.chaos is not None:
            self.chaos.stop()
            self.chaos = None
        if self.beat is not None:
            self.beat.kill()
            self.beat.wait()
            self.beat = None
        if self.web is not None:
            harness.stop_server(self.web, self.web_log, timeout=20)
            self.web = None

    def phase(self, name: str, count: int, env: dict, channels: dict, *, faults: bool) -> dict:
        """Write ``count`` replies (two per conversation) over the spread, the faults going on
        meanwhile, and wait until none is pending (or the run's deadline)."""
        from django.db import connections

        from conversations.models import Message

        self.whatsapp.reset()
        self.telegram.reset()
        result = {"name": name, "written": {}, "kills": 0, "froze": False, "pending": 0}
        self.current = result
        chaos = Chaos(name, self.args, env, self.redis, faults=faults)
        chaos.start_worker()
        self.chaos = chaos
        while not chaos.worker_ready() and time.monotonic() < self.args.ends_at:
            time.sleep(0.2)  # the baseline measures sends, not a worker's start
        progress(f"{name}: worker ready")
        chaos.start()
        spread = self.args.spread * count / self.args.replies  # the same pace in each phase
        progress(f"{name}: writing {count} replies over {spread:.0f} s")
        conversations = max(1, count // 2)
        started = time.monotonic()
        pending: set[int] = set()
        last_report = started
        for index in range(conversations):
            if time.monotonic() > self.args.ends_at:
                break
            kind = "whatsapp" if index % 2 == 0 else "telegram"
            for pk, info in bot_turn(name, index, kind, channels[kind]).items():
                result["written"][pk] = info
                pending.add(pk)
            due = started + spread * (index + 1) / conversations
            while time.monotonic() < due:
                time.sleep(0.05)  # the bot's own pace
            if time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                progress(f"{name}: {len(result['written'])}/{count} written, {chaos_state(chaos)}")
        progress(f"{name}: all written; waiting until none is pending")
        while pending and time.monotonic() < self.args.ends_at:
            try:
                pending -= set(
                    Message.objects.filter(pk__in=pending)
                    .exclude(status=Message.Status.PENDING)
                    .values_list("pk", flat=True)
                )
            except Exception as exc:  # noqa: BLE001 - the database is ours; a hiccup is retried
                progress(f"{name}: looking up the pending replies failed: {exc}")
                connections.close_all()
            result["pending"] = len(pending)
            if time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                progress(f"{name}: {len(pending)} pending, {chaos_state(chaos)}")
            time.sleep(0.5)
        result["pending"] = len(pending)
        result["elapsed"] = time.monotonic() - started
        chaos.stop()
        self.chaos = None
        result["kills"], result["froze"] = chaos.kills, chaos.froze
        result["up_seconds"] = chaos.up_seconds
        self.capture(result)
        progress(f"{name}: done in {result['elapsed']:.0f} s, {len(pending)} still pending")
        connections.close_all()
        return result

    def capture(self, result: dict) -> None:
        result["whatsapp"] = [r for r in self.whatsapp.requests if r.answered == 200]
        result["telegram"] = [r for r in self.telegram.requests if r.answered == 200]

    def watch(self) -> None:
        """The run's deadline, whatever blocks: past it (and a grace for the phase's own
        loop to notice), print what there is and "goal not met", and end the process."""
        while time.monotonic() < self.args.ends_at + 60:
            if self.done.wait(1):
                return
        with self.printing:
            if self.done.is_set():
                return
            self.done.set()
            print(f"deadline of {self.args.deadline:g} s passed: what there is", flush=True)
            try:
                if self.current is not None and "whatsapp" not in self.current:
                    self.capture(self.current)
                    if self.current not in self.results:
                        self.results.append(self.current)
                self.report(forced=True)
            except Exception as exc:  # noqa: BLE001 - the deadline's word comes first
                print(f"  (the partial report failed: {exc})")
                print("goal not met", flush=True)
        if self.chaos is not None and self.chaos.worker is not None:
            from tests.conversations.faults import kill_hard

            kill_hard(self.chaos.worker)
        for process in (self.beat, self.web):
            if process is not None:
                process.kill()
        self.redis.stop()
        os._exit(0)

    def report(self, *, forced: bool = False) -> None:
        base = next((r for r in self.results if r["name"] == "base"), None)
        run_ = next((r for r in self.results if r["name"] == "faults"), None)
        b = tally(base) if base else None
        if b:
            print(f"baseline: {b['total']} replies, no faults, {base['elapsed']:.0f} s")
            print(f"  worst delay {b['worst']:.2f} s, median {b['median']:.2f} s")
            if base["pending"]:
                print(f"  still pending at the deadline: {base['pending']}")
        if run_ is None:
            print("faults: not run (the baseline did not finish)")
            print("goal not met", flush=True)
            return
        f = tally(run_)
        print(
            f"faults: {f['total']} replies, worker killed {run_['kills']} times "
            f"({self.args.kill_every:g} s after each start), Redis frozen "
            f"{self.args.freeze:g} s: {'yes' if run_['froze'] else 'no'}"
        )
        print(f"  sent exactly once: {f['once']}")
        print(
            f"  sent twice: {f['twice']} (WhatsApp {f['twice_whatsapp']} of "
            f"{f['whatsapp']}, Telegram {f['twice_telegram']} of {f['telegram']}), "
            f"each visible in the delivery log: {'yes' if f['visible'] else 'no'}"
        )
        print(
            "  idempotency key: neither platform's send API takes one; a possibly-sent "
            "attempt is settled by the platform's status (WhatsApp) before a resend"
        )
        print(f"  never sent: {f['never']} ({run_.get('pending', 0)} still pending)")
        print(f"  worst delay: {f['worst']:.2f} s, median {f['median']:.2f} s")
        if b and b["median"] and f["median"] != float("inf"):
            print(f"  median delay against the baseline: {f['median'] / b['median']:.1f}x")
        else:
            print("  median delay against the baseline: n/a")
        print(f"  out of order: {f['out_of_order']} conversations")
        print(
            f"  window (the platform took it -> our record of it): median "
            f"{f['window_median'] * 1000:.0f} ms, p99 {f['window_p99'] * 1000:.0f} ms, mean "
            f"{f['window_mean'] * 1000:.1f} ms (Telegram's "
            f"{f['telegram_window_mean'] * 1000:.1f} ms)"
        )
        print(
            f"  Telegram duplicates to expect from {run_['kills']} kills: "
            f"{f['expected_telegram_twice']:.2f} ({f['telegram_rate']:.2f} sends/s while a "
            "worker was up x the mean window, per kill)"
        )
        for delay, pk in f["slowest"]:
            progress(f"slow {delay:.1f} s: {story(pk, run_['written'])}")
        for pk in f["twice_ids"]:
            progress(f"twice: {story(pk, run_['written'])}")
        met = (
            not forced
            and f["twice_whatsapp"] <= GOAL_DUPLICATES * max(1, f["whatsapp"])
            and f["twice_telegram"] <= GOAL_DUPLICATES * max(1, f["telegram"])
            and f["visible"]
            and f["never"] == 0
            and f["out_of_order"] == 0
            and f["worst"] <= GOAL_WORST_DELAY
        )
        print("goal met" if met else "goal not met", flush=True)


def chaos_state(chaos: Chaos) -> str:
    frozen = ", Redis frozen" if chaos.frozen else ""
    return f"{chaos.kills} kills{frozen}"


def setup() -> dict[str, int]:
    from django.db import connections

    from messaging.services import channel_create
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


def bot_turn(name: str, index: int, kind: str, channel_id: int) -> dict[int, dict]:
    """One bot turn in a new conversation: two replies in one transaction, their sends
    queued after the commit (as the engine does)."""
    from django.db import transaction

    from conversations.models import Message
    from conversations.services import message_deliver
    from messaging.models import Channel
    from tests.factories import ContactFactory, ConversationFactory, MessageFactory

    channel = Channel.objects.select_related("bot").get(pk=channel_id)
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
    written = {}
    at = time.monotonic()  # the turn's start: its delays count the commit and the publish
    with transaction.atomic():
        for order in range(2):
            text = f"{name} {index}.{order} {secrets.token_hex(3)}"
            message = MessageFactory(
                tenant=channel.tenant,
                conversation=conversation,
                channel=channel,
                direction=Message.Direction.OUT,
                sender=Message.Sender.BOT,
                text=text,
                status=Message.Status.PENDING,
            )
            message_deliver(message=message)
            written[message.pk] = {
                "kind": kind,
                "text": text,
                "conversation": conversation.pk,
                "order": order,
                "at": at,
            }
    return written


def sweep_command() -> list[str]:
    from tests.conversations.faults import sweep_beat

    return sweep_beat()


def spawn(command: list[str], env: dict, name: str):
    import subprocess

    log = open(SCRATCH / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def tally(result: dict) -> dict:
    """How many times each reply reached its platform, when first, and in which order."""
    from messaging.models import DeliveryAttempt

    by_text = {info["text"]: pk for pk, info in result["written"].items()}
    arrivals: dict[int, list[float]] = {pk: [] for pk in result["written"]}
    for request in result.get("whatsapp", []):
        reference = str((request.json or {}).get("biz_opaque_callback_data") or "")
        pk = int(reference) if reference.isdigit() else 0
        if pk in arrivals:
            arrivals[pk].append(request.received_at)
    for request in result.get("telegram", []):
        pk = by_text.get((request.json or {}).get("text"))
        if pk in arrivals:
            arrivals[pk].append(request.received_at)
    written = result["written"]
    twice = [pk for pk, a in arrivals.items() if len(a) >= 2]
    delays = [min(a) - written[pk]["at"] for pk, a in arrivals.items() if a]
    by_conversation: dict[int, list[tuple[float, int]]] = {}
    for pk, a in arrivals.items():
        if a:
            info = written[pk]
            by_conversation.setdefault(info["conversation"], []).append((min(a), info["order"]))
    out_of_order = sum(
        [order for _, order in sorted(items)] != sorted(order for _, order in items)
        for items in by_conversation.values()
    )
    # The window in which a kill makes a duplicate: from the platform's acceptance of the
    # request to our record of it (the attempt "sent"). A send the worker loses inside it is
    # sent again where the platform reports no status carrying our reference (Telegram).
    offset = time.time() - time.monotonic()
    first_request = {}
    for kind in ("whatsapp", "telegram"):
        for request in result.get(kind, []):
            if kind == "whatsapp":
                reference = str((request.json or {}).get("biz_opaque_callback_data") or "")
                pk = int(reference) if reference.isdigit() else 0
            else:
                pk = by_text.get((request.json or {}).get("text"), 0)
            first_request.setdefault(pk, request.received_at + offset)
    windows = []
    telegram_windows = []
    for pk, finished in (
        DeliveryAttempt.objects.filter(
            message_id__in=list(first_request), outcome="sent", finished_at__isnull=False
        )
        .exclude(error__contains="Settled by the platform's status")  # no answer was read
        .values_list("message_id", "finished_at")
    ):
        windows.append(finished.timestamp() - first_request[pk])
        if written.get(pk, {}).get("kind") == "telegram":
            telegram_windows.append(windows[-1])
    windows.sort()
    # Telegram's duplicates to expect from the kills: each kill lands in a window with the
    # chance (Telegram sends per second while a worker was up) x (the mean window).
    telegram_rate = len(result.get("telegram", [])) / max(1.0, result.get("up_seconds", 1.0))
    telegram_mean = statistics.fmean(telegram_windows) if telegram_windows else 0.0
    visible = all(
        DeliveryAttempt.objects.filter(message_id=pk, outcome__in=["lost", "unknown"]).exists()
        for pk in twice
    )
    return {
        "total": len(arrivals),
        "whatsapp": sum(info["kind"] == "whatsapp" for info in written.values()),
        "telegram": sum(info["kind"] == "telegram" for info in written.values()),
        "once": sum(len(a) == 1 for a in arrivals.values()),
        "twice": len(twice),
        "twice_whatsapp": sum(written[pk]["kind"] == "whatsapp" for pk in twice),
        "twice_telegram": sum(written[pk]["kind"] == "telegram" for pk in twice),
        "never": sum(not a for a in arrivals.values()),
        "worst": max(delays) if delays else float("inf"),
        "median": statistics.median(delays) if delays else float("inf"),
        "out_of_order": out_of_order,
        "visible": visible,
        "window_median": statistics.median(windows) if windows else 0.0,
        "window_p99": windows[int(0.99 * (len(windows) - 1))] if windows else 0.0,
        "window_mean": statistics.fmean(windows) if windows else 0.0,
        "telegram_window_mean": telegram_mean,
        "telegram_rate": telegram_rate,
        "expected_telegram_twice": result.get("kills", 0) * telegram_rate * telegram_mean,
        "slowest": sorted(
            ((min(a) - written[pk]["at"], pk) for pk, a in arrivals.items() if a), reverse=True
        )[:5],
        "twice_ids": twice,
    }


def story(pk: int, written: dict) -> str:
    """A reply's delivery log, for the slowest and the duplicates (stderr)."""
    from messaging.models import DeliveryAttempt

    at = written[pk]["at"] + time.time() - time.monotonic()
    attempts = DeliveryAttempt.objects.filter(message_id=pk).order_by("number")
    steps = [f"#{a.number} {a.outcome} at +{a.started_at.timestamp() - at:.1f} s" for a in attempts]
    return f"reply {pk} ({written[pk]['kind']}, order {written[pk]['order']}): " + ", ".join(steps)


if __name__ == "__main__":
    raise SystemExit(main())
