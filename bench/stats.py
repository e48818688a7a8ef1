"""Benchmark of the statistics API on a database with many messages, against a bare count.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chattonic_bench \\
        .venv/bin/python bench/stats.py [--messages 1000000] [--bots 10] [--days 90]

Fills a fresh database (it migrates it, and refuses one that already has conversations)
with ``--messages`` messages across ``--bots`` bots over ``--days`` days (about 10 messages
per conversation, a quarter handed off to agents, half of those resolved and rated), builds
the daily statistics once (timed, as ``manage.py stats_rebuild`` would), then times in the
same run, 20 times each after a warm-up:

- ``GET /api/v1/stats/`` for the whole range (in-process, through the full DRF stack), and
- a bare ``SELECT COUNT(*)`` on the messages table,

and prints their medians and the ratio, and ends with "goal met" or "goal not met" (goal:
the statistics of the whole range answer no slower than one bare count of the messages,
the point of the daily aggregates). ``--smoke`` runs tiny sizes on a fresh SQLite file of
its own (the suite runs it, so the bench cannot rot); its timings mean nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chattonic.settings")
os.environ.setdefault("DEBUG", "1")
if "--smoke" in sys.argv:
    # A fresh database of its own, before Django reads the settings.
    _smoke_dir = tempfile.mkdtemp(prefix="chattonic-bench-stats-")
    os.environ["DATABASE_URL"] = f"sqlite:///{_smoke_dir}/bench.sqlite3"
    os.environ["CHATTONIC_VAR_DIR"] = _smoke_dir

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from bots.models import Bot  # noqa: E402
from chattonic.core import embedded  # noqa: E402
from chattonic.tenancy.models import Tenant  # noqa: E402
from chattonic.tenancy.services import api_key_create  # noqa: E402
from contacts.models import Contact  # noqa: E402
from conversations.models import Conversation, Message  # noqa: E402
from stats.services import stats_rebuild  # noqa: E402

PER_CONVERSATION = 10
BATCH = 20000
GOAL_RATIO = 1.0


def fill(messages: int, bots: int, days: int) -> tuple[Tenant, datetime, datetime]:
    rng = random.Random(7)
    tenant = Tenant.objects.create(name="Bench", slug=f"bench-{int(time.time())}")
    bot_rows = [
        Bot.objects.create(tenant=tenant, name=f"Bench bot {i}", draft_definition={})
        for i in range(bots)
    ]
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    n_conversations = max(1, messages // PER_CONVERSATION)
    contacts = Contact.objects.bulk_create(
        [Contact(tenant=tenant, name=f"c{i}") for i in range(n_conversations)], batch_size=BATCH
    )
    kinds = ["webchat", "whatsapp", "telegram"]
    conversations = []
    for i, contact in enumerate(contacts):
        created = start + timedelta(seconds=rng.randrange(days * 86400))
        handed = rng.random() < 0.25
        resolved = handed and rng.random() < 0.5
        conversations.append(
            Conversation(
                tenant=tenant,
                bot=bot_rows[i % bots],
                contact=contact,
                channel_kind=kinds[i % len(kinds)],
                recipient_id=str(i),
                status="resolved" if resolved else ("queued" if handed else "bot"),
                created_at=created,
                last_message_at=created,
                queued_at=created + timedelta(minutes=2) if handed else None,
                first_agent_response_at=(
                    created + timedelta(minutes=2, seconds=rng.randrange(20, 900))
                    if handed
                    else None
                ),
                resolved_at=created + timedelta(minutes=rng.randrange(10, 120))
                if resolved
                else None,
                csat=rng.randint(1, 5) if resolved else None,
            )
        )
    conversations = Conversation.objects.bulk_create(conversations, batch_size=BATCH)
    # Rows built from the model (its defaults included), not a column list kept in step by
    # hand: a new field of Message (handle_failures, say) cannot break the bench.
    rows: list[Message] = []
    written = 0
    for index in range(messages):
        conversation = conversations[index // PER_CONVERSATION % len(conversations)]
        inbound = index % 2 == 0
        rows.append(
            Message(
                tenant_id=tenant.pk,
                conversation_id=conversation.pk,
                direction="in" if inbound else "out",
                sender="contact" if inbound else "bot",
                kind="text",
                text=f"message {index}",
                status="received" if inbound else "sent",
                created_at=conversation.created_at
                + timedelta(seconds=index % PER_CONVERSATION * 20),
            )
        )
        if len(rows) == BATCH:
            with transaction.atomic():
                Message.objects.bulk_create(rows)
            written += len(rows)
            rows = []
            print(f"\r  {written:,} messages", end="", flush=True)
    if rows:
        with transaction.atomic():
            Message.objects.bulk_create(rows)
        written += len(rows)
    print(f"\r  {written:,} messages in {len(conversations):,} conversations")
    return tenant, start, end


def timed(function, runs: int = 20) -> list[float]:
    function()  # warm-up
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--bots", type=int, default=10)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes on a fresh SQLite file (for the suite)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.bots, args.days = 200, 2, 3
    redis = embedded.start(settings.EMBEDDED_REDIS_SOCKET) if settings.EMBEDDED_REDIS else None
    try:
        run(args)
    finally:
        embedded.stop(redis)
        if args.smoke:
            connection.close()
            shutil.rmtree(_smoke_dir, ignore_errors=True)


def run(args) -> None:

    call_command("migrate", verbosity=0, interactive=False)
    if Conversation.objects.exists():
        sys.exit("This database already has conversations: point DATABASE_URL at an empty one.")
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    began = time.perf_counter()
    tenant, start, end = fill(args.messages, args.bots, args.days)
    print(f"fill: {time.perf_counter() - began:.1f} s")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {Message._meta.db_table}")

    began = time.perf_counter()
    rows = stats_rebuild(tenant_id=tenant.pk, start=start.date(), end=end.date())
    print(
        f"stats rebuild of {args.days + 1} days: {time.perf_counter() - began:.2f} s "
        f"({rows} daily rows)"
    )

    _, secret = api_key_create(tenant=tenant, name="bench", scopes=["read"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="localhost")
    settings.API_RATE_PER_MINUTE = 10**9
    query = {"start": start.date().isoformat(), "end": end.date().isoformat()}

    def api_call():
        response = client.get("/api/v1/stats/", query)
        assert response.status_code == 200, response.content[:300]
        return response

    body = api_call().json()
    assert body["totals"]["messages_in"] + body["totals"]["messages_out"] == args.messages

    def bare_count():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {Message._meta.db_table}")  # noqa: S608
            return cursor.fetchone()[0]

    api_ms = timed(api_call)
    count_ms = timed(bare_count)
    api_median, count_median = statistics.median(api_ms), statistics.median(count_ms)
    print(f"messages: {bare_count():,}")
    print(
        f"GET /api/v1/stats/ ({args.days + 1} days): median {api_median:.1f} ms, "
        f"max {max(api_ms):.1f} ms"
    )
    print(
        f"SELECT COUNT(*) on messages:          median {count_median:.1f} ms, "
        f"max {max(count_ms):.1f} ms"
    )
    ratio = api_median / count_median
    print(f"ratio stats API / bare count: {ratio:.2f} (goal <= {GOAL_RATIO:.2f})")
    print("goal met" if ratio <= GOAL_RATIO else "goal not met")


if __name__ == "__main__":
    main()
