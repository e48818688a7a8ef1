"""Statistics per bot, channel and day, kept cheap to read.

The numbers live in ``DailyStat`` rows (one per tenant, day, bot, kind of channel), rebuilt
from the conversations by a periodic task (today and yesterday, every few minutes) and by
``manage.py stats_rebuild`` for older days; reading a year of them is one small query.

What is counted on which day (UTC), sandbox conversations never:

- conversations: started that day; ``contained``: of those, the ones never handed off;
- messages in / out: sent or received that day (contact in; bot, agent, system out);
- handoffs: conversations queued for an agent that day;
- leads: recorded that day;
- first agent response: seconds from the handoff to the first agent reply, on the reply's day;
- resolution: seconds from the start to the resolution, on the resolution's day;
- CSAT: the 1-5 rating of conversations resolved that day.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from bots.models import Bot
from chattonic.core.errors import ValidationFailed
from chattonic.tenancy.models import Tenant
from conversations.models import ChannelKind, Conversation, Message
from leads.models import Lead
from stats.charts import bar_chart, line_chart
from stats.models import DailyStat

MAX_RANGE_DAYS = 366
Key = tuple[int, date, int | None, str]  # tenant, day, bot, kind of channel


@dataclass
class Bucket:
    conversations: int = 0
    messages_in: int = 0
    messages_out: int = 0
    contained: int = 0
    handoffs: int = 0
    leads: int = 0
    first_response_seconds: list[int] = field(default_factory=list)
    resolution_seconds: list[int] = field(default_factory=list)
    csat_counts: list[int] = field(default_factory=lambda: [0] * 5)

    COUNTS = ("conversations", "messages_in", "messages_out", "contained", "handoffs", "leads")
    SAMPLES = ("first_response_seconds", "resolution_seconds")

    def add(self, other: Bucket) -> None:
        self.conversations += other.conversations
        self.messages_in += other.messages_in
        self.messages_out += other.messages_out
        self.contained += other.contained
        self.handoffs += other.handoffs
        self.leads += other.leads
        self.first_response_seconds.extend(other.first_response_seconds)
        self.resolution_seconds.extend(other.resolution_seconds)
        if other.csat_counts and any(other.csat_counts):
            counts = list(other.csat_counts) + [0] * 5
            self.csat_counts = [a + b for a, b in zip(self.csat_counts, counts[:5], strict=True)]


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC datetimes from the start of ``start`` to the end of ``end``."""
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def _day(value: datetime) -> date:
    return value.astimezone(UTC).date()


def aggregate(
    *,
    tenant_id: int,
    start: date | None = None,
    end: date | None = None,
    conversation_ids: list[int] | None = None,
    lead_ids: list[int] | None = None,
) -> dict[Key, Bucket]:
    """The statistics of a tenant's days ``start``..``end`` (inclusive), or of the given
    conversations and leads on every day, from the raw tables."""
    buckets: dict[Key, Bucket] = defaultdict(Bucket)
    conversations = Conversation.objects.for_tenant(tenant_id).filter(is_sandbox=False)
    messages = Message.objects.for_tenant(tenant_id).filter(conversation__is_sandbox=False)
    leads = Lead.objects.for_tenant(tenant_id).exclude(conversation__is_sandbox=True)
    if conversation_ids is not None:
        conversations = conversations.filter(pk__in=conversation_ids)
        messages = messages.filter(conversation_id__in=conversation_ids)
        leads = leads.filter(pk__in=lead_ids or [])

    def within(name: str) -> Q:
        if start is None:
            return Q(**{f"{name}__isnull": False})
        low, high = _bounds(start, end)
        return Q(**{f"{name}__gte": low, f"{name}__lt": high})

    def key(day, bot_id, kind) -> Key:
        return (tenant_id, day, bot_id, kind or "")

    for row in (
        conversations.filter(within("created_at"))
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "bot_id", "channel_kind")
        .annotate(n=Count("id"), contained=Count("id", filter=Q(queued_at__isnull=True)))
        .order_by()
    ):
        bucket = buckets[key(row["day"], row["bot_id"], row["channel_kind"])]
        bucket.conversations += row["n"]
        bucket.contained += row["contained"]

    for row in (
        messages.filter(within("created_at"))
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "conversation__bot_id", "conversation__channel_kind")
        .annotate(
            n_in=Count("id", filter=Q(direction=Message.Direction.IN)),
            n_out=Count("id", filter=Q(direction=Message.Direction.OUT)),
        )
        .order_by()
    ):
        bucket = buckets[
            key(row["day"], row["conversation__bot_id"], row["conversation__channel_kind"])
        ]
        bucket.messages_in += row["n_in"]
        bucket.messages_out += row["n_out"]

    for row in (
        conversations.filter(within("queued_at"))
        .annotate(day=TruncDate("queued_at", tzinfo=UTC))
        .values("day", "bot_id", "channel_kind")
        .annotate(n=Count("id"))
        .order_by()
    ):
        buckets[key(row["day"], row["bot_id"], row["channel_kind"])].handoffs += row["n"]

    for answered, queued, bot_id, kind in conversations.filter(
        within("first_agent_response_at"), queued_at__isnull=False
    ).values_list("first_agent_response_at", "queued_at", "bot_id", "channel_kind"):
        seconds = max(0, round((answered - queued).total_seconds()))
        buckets[key(_day(answered), bot_id, kind)].first_response_seconds.append(seconds)

    for resolved, started, bot_id, kind, csat in conversations.filter(
        within("resolved_at")
    ).values_list("resolved_at", "created_at", "bot_id", "channel_kind", "csat"):
        bucket = buckets[key(_day(resolved), bot_id, kind)]
        bucket.resolution_seconds.append(max(0, round((resolved - started).total_seconds())))
        if csat and 1 <= csat <= 5:
            bucket.csat_counts[csat - 1] += 1

    for row in (
        leads.filter(within("created_at"))
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "bot_id", "channel_kind")
        .annotate(n=Count("id"))
        .order_by()
    ):
        buckets[key(row["day"], row["bot_id"], row["channel_kind"])].leads += row["n"]
    return buckets


def _rows(buckets: dict[Key, Bucket], part: str) -> list[DailyStat]:
    now = timezone.now()
    return [
        DailyStat(
            tenant_id=tenant_id,
            day=day,
            bot_id=bot_id,
            channel_kind=kind,
            part=part,
            conversations=b.conversations,
            messages_in=b.messages_in,
            messages_out=b.messages_out,
            contained=b.contained,
            handoffs=b.handoffs,
            leads=b.leads,
            first_response_seconds=sorted(b.first_response_seconds),
            resolution_seconds=sorted(b.resolution_seconds),
            csat_counts=b.csat_counts,
            updated_at=now,
        )
        for (tenant_id, day, bot_id, kind), b in buckets.items()
    ]


@transaction.atomic
def stats_rebuild(*, tenant_id: int, start: date, end: date) -> int:
    """Recompute a tenant's ``live`` statistics of the days ``start``..``end``; returns the
    number of rows written."""
    rows = _rows(aggregate(tenant_id=tenant_id, start=start, end=end), DailyStat.Part.LIVE)
    DailyStat.objects.for_tenant(tenant_id).filter(
        part=DailyStat.Part.LIVE, day__gte=start, day__lte=end
    ).delete()
    DailyStat.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def stats_rebuild_recent(*, days: int = 2) -> int:
    """Every tenant's statistics of the last ``days`` days (today included)."""
    end = timezone.now().astimezone(UTC).date()
    start = end - timedelta(days=days - 1)
    return sum(
        stats_rebuild(tenant_id=tenant_id, start=start, end=end)
        for tenant_id in Tenant.objects.values_list("pk", flat=True).order_by("pk")
    )


def stats_keep_erased(
    *, tenant_id: int, conversation_ids: list[int], lead_ids: list[int]
) -> set[date]:
    """Before a contact is erased: add what its conversations and leads counted to the
    ``erased`` rows. Returns the days touched, whose ``live`` rows must then be rebuilt."""
    buckets = aggregate(tenant_id=tenant_id, conversation_ids=conversation_ids, lead_ids=lead_ids)
    for (_, day, bot_id, kind), bucket in buckets.items():
        row = (
            DailyStat.objects.for_tenant(tenant_id)
            .select_for_update()
            .filter(part=DailyStat.Part.ERASED, day=day, bot_id=bot_id, channel_kind=kind)
            .first()
        )
        if row is None:
            DailyStat.objects.bulk_create(_rows({(tenant_id, day, bot_id, kind): bucket}, "erased"))
            continue
        total = Bucket(
            **{name: getattr(row, name) for name in (*Bucket.COUNTS, *Bucket.SAMPLES)},
            csat_counts=list(row.csat_counts or [0] * 5),
        )
        total.add(bucket)
        for name in (*Bucket.COUNTS, *Bucket.SAMPLES):
            setattr(row, name, getattr(total, name))
        row.first_response_seconds = sorted(row.first_response_seconds)
        row.resolution_seconds = sorted(row.resolution_seconds)
        row.csat_counts = total.csat_counts
        row.updated_at = timezone.now()
        row.save()
    return {day for (_, day, _, _) in buckets}


# --- Reading ----------------------------------------------------------------------------------


def percentile(sorted_values: list[int], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted values (the median is ``fraction=0.5``)."""
    if not sorted_values:
        return None
    if fraction == 0.5:
        n = len(sorted_values)
        middle = n // 2
        if n % 2:
            return float(sorted_values[middle])
        return (sorted_values[middle - 1] + sorted_values[middle]) / 2
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[rank - 1])


def _summary(bucket: Bucket) -> dict:
    first = sorted(bucket.first_response_seconds)
    resolution = sorted(bucket.resolution_seconds)
    ratings = sum(bucket.csat_counts)
    conversations = bucket.conversations
    return {
        "conversations": conversations,
        "messages_in": bucket.messages_in,
        "messages_out": bucket.messages_out,
        "contained": bucket.contained,
        "contained_rate": round(bucket.contained / conversations, 4) if conversations else None,
        "handoffs": bucket.handoffs,
        "handoff_rate": round(bucket.handoffs / conversations, 4) if conversations else None,
        "leads": bucket.leads,
        "first_response_median_seconds": percentile(first, 0.5),
        "first_response_p90_seconds": percentile(first, 0.9),
        "resolution_median_seconds": percentile(resolution, 0.5),
        "csat_average": (
            round(sum((i + 1) * n for i, n in enumerate(bucket.csat_counts)) / ratings, 2)
            if ratings
            else None
        ),
        "csat_ratings": ratings,
        "csat_counts": list(bucket.csat_counts),
    }


def stats_report(
    *,
    tenant: Tenant | int,
    start: date,
    end: date,
    bot_id: int | None = None,
    channel_kind: str | None = None,
) -> dict:
    """Totals of the range, and the same numbers per day, per bot and per kind of channel."""
    if end < start:
        raise ValidationFailed.for_field("end", "The end is before the start.")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ValidationFailed.for_field("start", f"At most {MAX_RANGE_DAYS} days at a time.")
    rows = DailyStat.objects.for_tenant(tenant).filter(day__gte=start, day__lte=end)
    if bot_id is not None:
        rows = rows.filter(bot_id=bot_id)
    if channel_kind:
        rows = rows.filter(channel_kind=channel_kind)
    total = Bucket()
    by_day: dict[date, Bucket] = {}
    by_bot: dict[int | None, Bucket] = defaultdict(Bucket)
    by_channel: dict[str, Bucket] = defaultdict(Bucket)
    day = start
    while day <= end:
        by_day[day] = Bucket()
        day += timedelta(days=1)
    fields = (*Bucket.COUNTS, *Bucket.SAMPLES, "csat_counts")
    # Plain tuples, not model instances: a year of ten bots is a few thousand rows.
    for day_, bot, kind, *values in rows.values_list(
        "day", "bot_id", "channel_kind", *fields
    ).order_by():
        row = Bucket(**dict(zip(fields, values, strict=True)))
        for bucket in (total, by_day[day_], by_bot[bot], by_channel[kind]):
            bucket.add(row)
    return {
        "start": start,
        "end": end,
        "totals": _summary(total),
        "days": [{"day": d, **_summary(b)} for d, b in by_day.items()],
        "bots": [
            {"bot": bot, **_summary(b)}
            for bot, b in sorted(by_bot.items(), key=lambda item: (item[0] is None, item[0] or 0))
        ],
        "channels": [
            {"channel_kind": kind, **_summary(b)} for kind, b in sorted(by_channel.items())
        ],
    }


def stats_dashboard(
    *,
    tenant: Tenant,
    start: date,
    end: date,
    bot_id: int | None = None,
    channel_kind: str | None = None,
) -> tuple[dict, dict[str, str]]:
    """The dashboard's statistics page: :func:`stats_report` with each bot's and channel's
    name, and its charts per day as inline SVG (conversations, messages in and out, the
    contained and handoff rates, leads)."""
    report = stats_report(
        tenant=tenant, start=start, end=end, bot_id=bot_id, channel_kind=channel_kind
    )
    ids = [row["bot"] for row in report["bots"] if row["bot"]]
    bot_names = dict(Bot.objects.for_tenant(tenant).filter(pk__in=ids).values_list("pk", "name"))
    for row in report["bots"]:
        row["name"] = bot_names.get(row["bot"], "(no bot)")
    kinds = dict(ChannelKind.choices)
    for row in report["channels"]:
        row["name"] = kinds.get(row["channel_kind"], row["channel_kind"]) or "—"

    days = report["days"]
    labels = [d["day"].strftime("%m-%d") for d in days]
    charts = {
        "conversations": bar_chart(
            labels, [d["conversations"] for d in days], title="Conversations per day"
        ),
        "messages": line_chart(
            labels,
            {"in": [d["messages_in"] for d in days], "out": [d["messages_out"] for d in days]},
            title="Messages in and out per day",
        ),
        "rates": line_chart(
            labels,
            {
                "contained %": [_percent(d["contained_rate"]) for d in days],
                "handoff %": [_percent(d["handoff_rate"]) for d in days],
            },
            title="Contained and handoff rates (%)",
        ),
        "leads": bar_chart(labels, [d["leads"] for d in days], title="Leads per day"),
    }
    return report, charts


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def conversation_rated(*, tenant_id: int, day: date) -> None:
    """A rating of a conversation resolved on an older day (``conversations.hooks``): that
    day's statistics again."""
    stats_rebuild(tenant_id=tenant_id, start=day, end=day)
