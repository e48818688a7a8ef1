"""The dashboard's home and navigation for a tenant's staff: the numbers of the day, the setup
checklist, and the registered models grouped under human names.

The numbers are read, not computed here: the statistics come from ``stats_report`` (the
same daily rows as the statistics page), the queue and the tickets are two counts on
indexed columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.db.models import Exists, OuterRef, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import capfirst

from bots.models import Bot
from chattonic.core.kinds import ChannelKind
from chattonic.tenancy.models import Tenant
from conversations.models import Conversation, Message
from messaging.models import Channel
from stats.services import stats_report
from support.models import Ticket

#: The days that the rates and the first-response time cover (today included).
RATE_DAYS = 7

# The navigation of tenant staff: groups of (model label, the name shown), in this order. A
# registered model missing here goes to "More" under its own name, so none is ever hidden by
# accident; the ones in NOT_IN_NAVIGATION are reached from their parent's page instead.
NAVIGATION: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Conversations",
        [
            ("conversations.Conversation", "Conversations"),
            ("contacts.Contact", "Contacts"),
            ("leads.Lead", "Leads"),
            ("agents.HandoffEvent", "Handoff log"),
            ("stats.DailyStat", "Statistics"),
        ],
    ),
    (
        "Bots and channels",
        [
            ("bots.Bot", "Bots"),
            ("messaging.Channel", "Channels"),
            ("messaging.DeliveryAttempt", "Delivery log"),
        ],
    ),
    (
        "Team",
        [
            ("agents.AgentProfile", "Agents"),
            ("agents.Team", "Teams"),
            ("agents.CannedResponse", "Canned responses"),
            ("tenancy.Membership", "Staff members"),
            ("tenancy.Invitation", "Invitations"),
        ],
    ),
    ("Support", [("support.Ticket", "Tickets")]),
    (
        "Settings",
        [
            ("tenancy.Tenant", "Company"),
            ("tenancy.ApiKey", "API keys"),
            ("leads.LeadWebhook", "Lead webhooks"),
            ("privacy.PrivacyAudit", "Data exports and erasures"),
        ],
    ),
]
# Pages reached from their parent's page instead (each bot's page lists its versions): their
# breadcrumbs go through the parent's list.
NOT_IN_NAVIGATION = {"bots.BotVersion": "bots.Bot"}
STATS_URL_NAME = "admin:stats_dailystat_changelist"
OPEN_TICKETS = (Ticket.Status.OPEN, Ticket.Status.IN_PROGRESS, Ticket.Status.WAITING)


def navigation_titles_apply(site) -> None:
    """Each list's page is titled as the navigation names it ("Company", not "Tenants";
    "Handoff log", not "Handoff events"), unless its admin names it itself."""
    admins = {_label(model): model_admin for model, model_admin in site._registry.items()}
    for _, entries in NAVIGATION:
        for label, name in entries:
            model_admin = admins.get(label)
            if model_admin is not None and not getattr(model_admin, "list_title", None):
                model_admin.list_title = name


def _label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.object_name}"


def crumb_parents() -> list[dict]:
    """For the breadcrumbs of the pages outside the navigation: each one's parent list, by
    its name in the navigation (``label``: the child's model label)."""
    names = {label: shown for _, members in NAVIGATION for label, shown in members}
    found = []
    for child, parent in NOT_IN_NAVIGATION.items():
        app_label, model = parent.lower().split(".")
        url = reverse(f"admin:{app_label}_{model}_changelist")
        found.append({"label": child, "name": names[parent], "url": url})
    return found


def navigation(app_dict: dict) -> list[dict]:
    """Django's app dictionary (``AdminSite._build_app_dict``) regrouped as NAVIGATION says,
    in the shape the admin's templates read; only the models the user may see."""
    entries = {}
    for app in app_dict.values():
        for entry in app["models"]:
            entries[_label(entry["model"])] = entry
    groups = []
    placed = set(NOT_IN_NAVIGATION)
    for index, (name, members) in enumerate(NAVIGATION):
        models = []
        for label, shown in members:
            placed.add(label)
            if label in entries:
                models.append({**entries[label], "name": shown})
        if models:
            groups.append(_group(name, f"nav{index}", models))
    rest = [
        {**entry, "name": capfirst(entry["model"]._meta.verbose_name_plural)}
        for label, entry in entries.items()
        if label not in placed
    ]
    if rest:
        groups.append(_group("More", "more", sorted(rest, key=lambda e: e["name"])))
    return groups


def _group(name: str, key: str, models: list[dict]) -> dict:
    return {
        "name": name,
        "app_label": key,
        "app_url": None,
        "has_module_perms": True,
        "models": models,
    }


# --- The home's numbers ---------------------------------------------------------------------


@dataclass
class Step:
    title: str
    done: bool
    detail: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, url)


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _main_bot(tenant: Tenant) -> Bot | None:
    """The bot the checklist speaks of: the furthest along (launched, then published)."""
    bots = Bot.objects.for_tenant(tenant).only(
        "pk",
        "name",
        "status",
        "published_version_id",
        "embedded_at",
        "embedded_origin",
        "public_key",
    )
    return (
        bots.filter(status=Bot.Status.LAUNCHED).order_by("launched_at", "pk").first()
        or bots.filter(published_version__isnull=False).order_by("pk").first()
        or bots.order_by("pk").first()
    )


def setup_checklist(tenant: Tenant) -> list[Step]:
    """Bot created, published, launched, on a site or a channel, first conversation: each
    step done or not, with the links to the pages that do it."""
    bot = _main_bot(tenant)
    bots = Bot.objects.for_tenant(tenant)
    bot_page = _url("admin:bots_bot_change", bot.pk) if bot else ""
    embedded = bots.filter(embedded_at__isnull=False).order_by("embedded_at").first()
    channels = (
        Channel.objects.for_tenant(tenant)
        .exclude(status=Channel.Status.DISABLED)
        .exclude(kind=ChannelKind.WEBCHAT)
        .order_by("pk")
    )
    # Connected: the platform reached it (a message came in), or, for Telegram, it took the
    # webhook when the channel was saved (messaging.services.channel_webhook_register). A
    # WhatsApp channel merely saved said "connected" before Meta had ever called it.
    heard = Message.objects.filter(channel=OuterRef("pk"), direction=Message.Direction.IN)
    channel = channels.filter(Q(kind=ChannelKind.TELEGRAM) | Exists(heard)).first()
    unheard = None if channel is not None else channels.first()
    conversation = (
        Conversation.objects.for_tenant(tenant).filter(is_sandbox=False).order_by("pk").first()
    )
    launched = bot is not None and bot.status == Bot.Status.LAUNCHED
    steps = [
        Step(
            "Create a bot",
            bot is not None,
            f"{bot.name} exists." if bot else "Name it and write what it says.",
            [("Your bots", _url("admin:bots_bot_changelist"))]
            if bot
            else [("Create a bot", _url("admin:bots_bot_add"))],
        ),
        Step(
            "Publish it",
            bot is not None and bot.published_version_id is not None,
            "Publishing makes the draft the version that new conversations get.",
            [("Publish on the bot's page", f"{bot_page}#ct-publish")] if bot else [],
        ),
        Step(
            "Launch it",
            launched,
            "A launched bot answers on its web chat and channels; a paused one does not.",
            [("Launch on the bot's page", f"{bot_page}#ct-status-title")] if bot else [],
        ),
        Step(
            "Put it on your site or connect a channel",
            embedded is not None or channel is not None,
            (
                f"The web chat had its first visit from {embedded.embedded_origin}."
                if embedded
                else f"{channel} is connected."
                if channel
                else f"{unheard} is saved, but {unheard.get_kind_display()} has not reached "
                "it yet: finish its set-up as its page says, then send it a message."
                if unheard
                else "Paste the embed code into your site's pages (add the site to the bot's "
                "allowed origins), or connect WhatsApp, Messenger, Telegram or SMS."
            ),
            [
                *([("Embed code on the bot's page", f"{bot_page}#ct-embed-code")] if bot else []),
                *(
                    [
                        (
                            f"Finish setting up {unheard.name}",
                            _url("admin:messaging_channel_change", unheard.pk),
                        )
                    ]
                    if unheard
                    else []
                ),
                ("Connect a channel", _url("admin:messaging_channel_add")),
            ],
        ),
        Step(
            "Have a first conversation",
            conversation is not None,
            "Conversations show here as soon as a visitor writes.",
            [("Conversations", _url("admin:conversations_conversation_changelist"))]
            + (
                [("Try the bot on the demo page", _url("webchat-demo", bot.public_key))]
                if launched
                else []
            ),
        ),
    ]
    return steps


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    value = round(value)
    if value < 60:
        return f"{value} s"
    if value < 3600:
        return f"{value // 60} min {value % 60:02d} s"
    return f"{value // 3600} h {value % 3600 // 60:02d} min"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)} %"


def home_overview(tenant: Tenant) -> dict:
    """The tenant's home: the figures of today and of the last RATE_DAYS days, the open queue
    and tickets, and the setup checklist."""
    today = timezone.now().astimezone(UTC).date()
    report = stats_report(tenant=tenant, start=today - timedelta(days=RATE_DAYS - 1), end=today)
    week = report["totals"]
    queued = (
        Conversation.objects.for_tenant(tenant)
        .filter(status=Conversation.Status.QUEUED, is_sandbox=False)
        .count()
    )
    open_tickets = Ticket.objects.for_tenant(tenant).filter(status__in=OPEN_TICKETS).count()
    conversations = _url("admin:conversations_conversation_changelist")
    figures = [
        ("Conversations today", str(report["days"][-1]["conversations"]), _url(STATS_URL_NAME)),
        ("Waiting for an agent", str(queued), f"{conversations}?status__exact=queued"),
        (f"Contained by the bot ({RATE_DAYS} days)", _percent(week["contained_rate"]), ""),
        (f"Handed to agents ({RATE_DAYS} days)", _percent(week["handoff_rate"]), ""),
        (
            f"First agent response, median ({RATE_DAYS} days)",
            _seconds(week["first_response_median_seconds"]),
            "",
        ),
        ("Open support tickets", str(open_tickets), _url("admin:support_ticket_changelist")),
    ]
    steps = setup_checklist(tenant)
    return {
        "figures": [{"label": a, "value": b, "url": c} for a, b, c in figures],
        "steps": steps,
        "steps_done": sum(step.done for step in steps),
        "stats_url": _url(STATS_URL_NAME),
    }


def operator_overview() -> dict:
    """The platform operators' home: how many tenants, bots live and tickets open."""
    return {
        "figures": [
            ("Tenants", Tenant.objects.count(), _url("admin:tenancy_tenant_changelist")),
            (
                "Bots live",
                Bot.objects.filter(status=Bot.Status.LAUNCHED).count(),
                _url("admin:bots_bot_changelist"),
            ),
            (
                "Open support tickets",
                Ticket.objects.filter(status__in=OPEN_TICKETS).count(),
                _url("admin:support_ticket_changelist"),
            ),
        ]
    }
