"""``/api/v1/stats/``: the statistics of a period, per day, bot and kind of channel."""

from __future__ import annotations

from datetime import UTC, date, timedelta

from django.utils import timezone
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import Bot
from chattonic.core.api import (
    KeyField,
    filter_params,
)
from conversations.models import ChannelKind
from stats import services as stats

# --- Statistics -------------------------------------------------------------------------------


STATS_EARLIEST = date(1970, 1, 1)  # (and a range's arithmetic stays within dates)
STATS_LATEST = date(9998, 12, 31)


class StatsQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="The first day (UTC); 30 days ago.")
    end = serializers.DateField(required=False, help_text="The last day (UTC); today.")
    bot = KeyField(required=False)
    channel = serializers.ChoiceField(choices=ChannelKind.choices, required=False)

    def validate(self, attrs):
        today = timezone.now().astimezone(UTC).date()
        for name in ("start", "end"):
            if name in attrs and attrs[name] < STATS_EARLIEST:
                raise serializers.ValidationError({name: [f"From {STATS_EARLIEST} on."]})
            if name in attrs and attrs[name] > STATS_LATEST:
                raise serializers.ValidationError({name: [f"Until {STATS_LATEST} at most."]})
        attrs.setdefault("end", today)
        attrs.setdefault("start", attrs["end"] - timedelta(days=29))
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": ["The end is before the start."]})
        if (attrs["end"] - attrs["start"]).days >= stats.MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"start": [f"At most {stats.MAX_RANGE_DAYS} days at a time."]}
            )
        return attrs


class StatsNumbersSerializer(serializers.Serializer):
    conversations = serializers.IntegerField()
    messages_in = serializers.IntegerField()
    messages_out = serializers.IntegerField()
    contained = serializers.IntegerField()
    contained_rate = serializers.FloatField(allow_null=True)
    handoffs = serializers.IntegerField()
    handoff_rate = serializers.FloatField(allow_null=True)
    leads = serializers.IntegerField()
    first_response_median_seconds = serializers.FloatField(allow_null=True)
    first_response_p90_seconds = serializers.FloatField(allow_null=True)
    resolution_median_seconds = serializers.FloatField(allow_null=True)
    csat_average = serializers.FloatField(allow_null=True)
    csat_ratings = serializers.IntegerField()
    csat_counts = serializers.ListField(child=serializers.IntegerField())


class StatsDaySerializer(StatsNumbersSerializer):
    day = serializers.DateField()


class StatsBotSerializer(StatsNumbersSerializer):
    bot = serializers.IntegerField(allow_null=True)


class StatsChannelSerializer(StatsNumbersSerializer):
    channel_kind = serializers.CharField()


class StatsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    totals = StatsNumbersSerializer()
    days = StatsDaySerializer(many=True)
    bots = StatsBotSerializer(many=True)
    channels = StatsChannelSerializer(many=True)


class StatsView(APIView):
    """``GET /api/v1/stats/``: totals and series per day, bot and channel (UTC days)."""

    @extend_schema(
        parameters=[StatsQuerySerializer],
        responses=StatsSerializer,
        summary="Statistics of a date range (sandbox excluded; up to 5 minutes behind)",
    )
    def get(self, request):
        data = filter_params(StatsQuerySerializer, request)
        tenant = request.auth.tenant
        if "bot" in data and not Bot.objects.for_tenant(tenant).filter(pk=data["bot"]).exists():
            raise serializers.ValidationError({"bot": ["No such bot."]})
        report = stats.stats_report(
            tenant=tenant,
            start=data["start"],
            end=data["end"],
            bot_id=data.get("bot"),
            channel_kind=data.get("channel"),
        )
        return Response(StatsSerializer(report).data)
