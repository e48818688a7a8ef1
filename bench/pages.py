"""Server time of each dashboard page a tenant owner opens, beside Django's bare admin index.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chattonic_pages \\
    REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/pages.py [--conversations 10000] [--loads 20]

Fills a tenant (a new one in the given database, migrated first) with ``--conversations``
conversations (a contact each, four messages each, a lead for one in ten, a quarter handed
to agents with their handoff events), a channel of each kind with delivery attempts, agents,
teams, canned responses, tickets, invitations, API keys and the statistics' daily rows; then,
in one process through the whole Django stack (middleware, sessions, the admin), times
``--loads`` loads of each page after one warm-up:

- the home, the statistics page, and the list, a change page and the add page (where the
  owner may add) of every model the owner has in the dashboard (the admin's registry), and
- the baseline: Django's own admin index (``django.contrib.admin.AdminSite``, the same models
  registered with a plain ``ModelAdmin``) for a superuser.

It prints each page's median (p50) beside the baseline's and their ratio; the goal is every
page at most 3x the bare index and at most 150 ms (on PostgreSQL). The last line says "goal
met" or "goal not met". ``--conversations 30 --loads 2`` is the suite's smoke run. The
tenant is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import configuration, platform_ready, production_environment  # noqa: E402

GOAL_RATIO = 3.0
GOAL_MS = 150.0
BATCH = 2000


def fill(conversations: int):
    """A tenant with an owner and everything the dashboard lists; returns (tenant, owner)."""
    from django.contrib.auth import get_user_model

    from agents.models import AgentProfile, CannedResponse, HandoffEvent, Team
    from bots.models import Bot
    from bots.services import bot_launch, bot_publish, bot_version_train
    from chattonic.tenancy.models import ApiKey, Invitation, Membership, Tenant
    from contacts.models import Contact
    from conversations.models import ChannelKind, Conversation, Message
    from leads.models import Lead, LeadWebhook
    from messaging.models import Channel, DeliveryAttempt
    from privacy.models import PrivacyAudit
    from stats.services import stats_rebuild
    from support.models import Ticket

    rng = random.Random(7)
    stamp = f"{int(time.time())}{rng.randrange(1000)}"
    tenant = Tenant.objects.create(name="Pages bench", slug=f"pages-{stamp}")
    users = get_user_model().objects
    owner = users.create_user(f"owner-{stamp}@bench.example", is_staff=True)
    Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    bots = [
        Bot.objects.create(tenant=tenant, name=f"Bench bot {i}", allowed_origins=[])
        for i in range(3)
    ]
    bot_version_train(version_id=bot_publish(bot=bots[0]).pk)  # the worker's part, here
    bot_launch(bot=bots[0])
    channels = [
        Channel.objects.create(tenant=tenant, bot=bots[0], kind=kind, name=f"Bench {label}")
        for kind, label in ChannelKind.choices
        if kind != ChannelKind.WEBCHAT
    ]
    team = Team.objects.create(tenant=tenant, name="support")
    agents = []
    for i in range(5):
        user = users.create_user(f"agent{i}-{stamp}@bench.example", first_name=f"Agent {i}")
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.AGENT)
        profile = AgentProfile.objects.create(tenant=tenant, user=user)
        profile.teams.add(team)
        agents.append(user)
    for i in range(10):
        CannedResponse.objects.create(tenant=tenant, shortcut=f"reply{i}", text=f"Reply {i}")
    now = datetime.now(UTC)
    contacts = Contact.objects.bulk_create(
        [
            Contact(tenant=tenant, name=f"Visitor {i}", email=f"visitor{i}@example.com")
            for i in range(conversations)
        ],
        batch_size=BATCH,
    )
    rows = []
    statuses = [Conversation.Status.BOT] * 3 + [
        Conversation.Status.QUEUED,
        Conversation.Status.ASSIGNED,
        Conversation.Status.RESOLVED,
    ]
    for i, contact in enumerate(contacts):
        created = now - timedelta(seconds=rng.randrange(30 * 86400))
        status = statuses[i % len(statuses)]
        channel = channels[i % len(channels)] if i % 3 == 0 else None
        handed = status != Conversation.Status.BOT
        rows.append(
            Conversation(
                tenant=tenant,
                bot=bots[i % len(bots)],
                contact=contact,
                channel=channel,
                channel_kind=channel.kind if channel else ChannelKind.WEBCHAT,
                recipient_id=f"r{i}",
                status=status,
                assigned_agent=agents[i % len(agents)]
                if status == Conversation.Status.ASSIGNED
                else None,
                handoff_reason="visitor_request" if handed else "",
                created_at=created,
                last_message_at=created + timedelta(minutes=3),
                queued_at=created + timedelta(minutes=1) if handed else None,
                first_agent_response_at=created + timedelta(minutes=2) if handed else None,
                resolved_at=created + timedelta(minutes=9)
                if status == Conversation.Status.RESOLVED
                else None,
            )
        )
    rows = Conversation.objects.bulk_create(rows, batch_size=BATCH)
    messages = []
    for conversation in rows:
        for n in range(4):
            inbound = n % 2 == 0
            messages.append(
                Message(
                    tenant=tenant,
                    conversation=conversation,
                    channel=conversation.channel,
                    direction=Message.Direction.IN if inbound else Message.Direction.OUT,
                    sender=Message.Sender.CONTACT if inbound else Message.Sender.BOT,
                    text=f"message {n}",
                    status=Message.Status.RECEIVED if inbound else Message.Status.SENT,
                    created_at=conversation.created_at + timedelta(seconds=20 * n),
                )
            )
    messages = Message.objects.bulk_create(messages, batch_size=BATCH)
    DeliveryAttempt.objects.bulk_create(
        [
            DeliveryAttempt(
                tenant=tenant,
                channel=message.channel,
                message=message,
                number=1,
                outcome=DeliveryAttempt.Outcome.SENT,
                status_code=200,
            )
            for message in messages
            if message.channel is not None and message.direction == Message.Direction.OUT
        ],
        batch_size=BATCH,
    )
    Lead.objects.bulk_create(
        [
            Lead(
                tenant=tenant,
                contact_id=c.contact_id,
                conversation=c,
                bot_id=c.bot_id,
                channel_kind=c.channel_kind,
                fields={"email": f"lead{c.pk}@example.com"},
            )
            for c in rows[::10]
        ],
        batch_size=BATCH,
    )
    HandoffEvent.objects.bulk_create(
        [
            HandoffEvent(
                tenant=tenant,
                conversation=c,
                from_status="bot",
                to_status="queued",
                reason=HandoffEvent.Reason.VISITOR_REQUEST,
            )
            for c in rows
            if c.queued_at
        ],
        batch_size=BATCH,
    )
    for i in range(20):
        Ticket.objects.create(
            tenant=tenant,
            title=f"Problem {i}",
            description="The widget does not open.",
            reporter=owner,
            first_response_due_at=now + timedelta(hours=6),
        )
    for i in range(3):
        Invitation.objects.create(
            tenant=tenant,
            email=f"invited{i}-{stamp}@bench.example",
            token_hash=f"{stamp}{i}".rjust(64, "0"),
            expires_at=now + timedelta(days=7),
        )
        ApiKey.objects.create(tenant=tenant, name=f"key {i}", prefix=f"{stamp}{i}"[-12:])
    LeadWebhook.objects.create(tenant=tenant, url="https://crm.example.com/hook")
    PrivacyAudit.objects.create(
        tenant=tenant,
        action=PrivacyAudit.Action.EXPORT,
        contact_ref=contacts[0].pk,
        door=PrivacyAudit.Door.DASHBOARD,
        summary={"conversations": 1},
    )
    stats_rebuild(tenant_id=tenant.pk, start=(now - timedelta(days=31)).date(), end=now.date())
    return tenant, owner


def bare_site_urls():
    """A urlconf with the dashboard and, at /bare-admin/, Django's own AdminSite with the same
    models under a plain ModelAdmin."""
    from django.contrib import admin
    from django.urls import include, path

    bare = admin.AdminSite(name="bare")
    for model in admin.site._registry:
        bare.register(model)
    module = types.ModuleType("bench_pages_urls")
    module.urlpatterns = [
        path("bare-admin/", bare.urls),
        path("", include(os.environ.get("BENCH_ROOT_URLCONF", "chattonic.urls"))),
    ]
    sys.modules[module.__name__] = module
    return module.__name__


def owner_pages(tenant, owner) -> list[tuple[str, str]]:
    """(label, url) of each page the bench times: the home, the statistics, and the list, a
    change page and the add page of each of the owner's models (the admin's registry)."""
    from django.contrib import admin
    from django.test import RequestFactory
    from django.urls import reverse

    from chattonic.tenancy.admin import TenantAwareAdmin

    request = RequestFactory().get("/dashboard/")
    request.user, request.membership, request.tenant = owner, owner.membership, tenant
    pages = [
        ("home", reverse("admin:index")),
        ("statistics", reverse("admin:stats_dailystat_changelist")),
    ]
    for model, model_admin in sorted(
        admin.site._registry.items(), key=lambda item: item[0]._meta.label
    ):
        if not (
            isinstance(model_admin, TenantAwareAdmin) and model_admin.has_module_permission(request)
        ):
            continue
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        label = opts.verbose_name_plural
        pages.append((f"{label}: list", reverse(f"{name}_changelist")))
        obj = model_admin.get_queryset(request).order_by("-pk").first()
        # A daily statistics row's page leads to the statistics page (timed above).
        if obj is not None and opts.label_lower != "stats.dailystat":
            pages.append((f"{label}: change", reverse(f"{name}_change", args=[obj.pk])))
        if model_admin.has_add_permission(request):
            pages.append((f"{label}: add", reverse(f"{name}_add")))
    return pages


def static_outdated(manifest: Path) -> bool:
    """Whether a static file is newer than the collected manifest (or there is none)."""
    from django.contrib.staticfiles.finders import get_finders

    if not manifest.exists():
        return True
    collected = manifest.stat().st_mtime
    for finder in get_finders():
        for path, storage in finder.list([]):
            if Path(storage.path(path)).stat().st_mtime > collected:
                return True
    return False


def timed(client, url: str, loads: int) -> float:
    """The median milliseconds of ``loads`` GETs of url (after a warm-up), each a 200."""
    samples = []
    for index in range(loads + 1):
        began = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        if index:
            samples.append(elapsed)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument(
        "--keep", action="store_true", help="keep the tenant (to look at its pages after)"
    )
    parser.add_argument("--only", default="", help="time only the pages whose label has this")
    args = parser.parse_args()

    production_environment()
    # Deployed pages name their static files through collectstatic's manifest: collected
    # into var/ (it takes a while: brotli and gzip copies), again only when a file changed.
    os.environ.setdefault("STATIC_ROOT", str(ROOT / "var" / "bench-static"))
    keep_redis: list = []
    platform_ready(keep_redis)
    from django.conf import settings
    from django.core.management import call_command

    if not settings.DEBUG and static_outdated(Path(settings.STATIC_ROOT) / "staticfiles.json"):
        call_command("collectstatic", interactive=False, verbosity=0)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import clear_url_caches

    settings.ROOT_URLCONF = bare_site_urls()
    clear_url_caches()
    print(f"configuration: {configuration()}, DEBUG={settings.DEBUG}")
    began = time.perf_counter()
    tenant, owner = fill(args.conversations)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"fill: {args.conversations:,} conversations, {4 * args.conversations:,} messages "
        f"in {time.perf_counter() - began:.1f} s"
    )
    operator = get_user_model().objects.create_superuser(
        f"operator-{tenant.slug}", f"operator-{tenant.slug}@bench.example", None
    )
    try:
        owner_client = Client(HTTP_HOST="localhost")
        owner_client.force_login(owner)
        operator_client = Client(HTTP_HOST="localhost")
        operator_client.force_login(operator)

        bare = timed(operator_client, "/bare-admin/", args.loads)
        print(f"p50 of {args.loads} loads each, ms (server time, in process)")
        print(f"{'page':<44} {'p50 ms':>8} {'x bare':>7}")
        print(f"{'bare Django admin index (baseline)':<44} {bare:8.1f} {1.0:7.2f}")
        worst_ratio, worst_ms, slow = 0.0, 0.0, []
        for label, url in owner_pages(tenant, owner):
            if args.only not in label:
                continue
            p50 = timed(owner_client, url, args.loads)
            ratio = p50 / bare
            worst_ratio, worst_ms = max(worst_ratio, ratio), max(worst_ms, p50)
            flag = ""
            if ratio > GOAL_RATIO or p50 > GOAL_MS:
                slow.append(label)
                flag = "  <- over the goal"
            print(f"{label[:44]:<44} {p50:8.1f} {ratio:7.2f}{flag}")
        print(f"slowest page: {worst_ms:.1f} ms, {worst_ratio:.2f}x the bare index")
        print(f"goal: every page <= {GOAL_RATIO:g}x the bare index and <= {GOAL_MS:g} ms")
        if slow:
            print(f"over the goal: {', '.join(slow)}")
        print("goal met" if not slow else "goal not met")
    finally:
        from chattonic.tenancy.models import Membership

        operator.delete()
        if args.keep:
            print(f"kept: tenant {tenant.slug}, owner {owner.username}")
        else:
            user_ids = list(
                Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True)
            )
            tenant.delete()
            get_user_model().objects.filter(pk__in=user_ids).delete()


if __name__ == "__main__":
    main()
