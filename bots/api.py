"""``/api/v1/bots/``: bots, their draft, versions, publish, roll back, launch, pause."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from bots import services
from bots.gallery import FLOW_TEMPLATES
from bots.models import Bot, BotVersion
from bots.regions import bot_ensure_local
from chattonic.core.api import TenantScopedMixin
from chattonic.core.errors import ValidationFailed

WRONG_REGION = OpenApiResponse(
    description="The bot lives in another region: the body names its URL."
)
CONFLICT = OpenApiResponse(
    description="Not allowed in the bot's state (e.g. a launched bot's region)."
)


class BotSerializer(serializers.ModelSerializer):
    definition = serializers.JSONField(source="draft_definition", required=False)
    template = serializers.ChoiceField(
        choices=list(FLOW_TEMPLATES),
        required=False,
        write_only=True,
        help_text="On creation: start from this template (GET /api/v1/bot-templates/) "
        "instead of a definition.",
    )
    published_version = serializers.SerializerMethodField()

    class Meta:
        model = Bot
        fields = [
            "id",
            "status",
            "public_key",
            *services.EDITABLE_FIELDS,
            "definition",
            "template",
            "published_version",
            "launched_at",
            "created_at",
        ]
        read_only_fields = ["status", "public_key", "launched_at", "created_at"]

    def get_published_version(self, bot) -> int | None:
        return bot.published_version.number if bot.published_version_id else None


class BotVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = BotVersion
        fields = ["number", "definition", "note", "published_at", "published_by", "training"]


class PublishSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class MoveSerializer(serializers.Serializer):
    region = serializers.CharField(max_length=40)


class MovedSerializer(serializers.Serializer):
    region = serializers.CharField()
    id = serializers.IntegerField()
    public_key = serializers.CharField()
    url = serializers.URLField(help_text="The bot in the API of its new region's deployment.")


class RollbackSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)


@extend_schema_view(
    retrieve=extend_schema(responses={200: BotSerializer, 421: WRONG_REGION}),
    partial_update=extend_schema(responses={200: BotSerializer, 409: CONFLICT, 421: WRONG_REGION}),
    update=extend_schema(responses={200: BotSerializer, 409: CONFLICT, 421: WRONG_REGION}),
)
class BotViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Bot.objects.select_related("published_version").order_by("pk")
    serializer_class = BotSerializer

    def get_object(self):
        bot = super().get_object()
        bot_ensure_local(bot)
        return bot

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        definition = data.pop("draft_definition", None)
        template = data.pop("template", None)
        serializer.instance = services.bot_create(
            tenant=self.tenant, definition=definition, template=template, **data
        )

    @transaction.atomic
    def perform_update(self, serializer):
        # Settings and draft change together or not at all (a bad draft undoes the settings).
        data = dict(serializer.validated_data)
        definition = data.pop("draft_definition", None)
        if "template" in data:
            raise ValidationFailed.for_field("template", "A template starts a new bot only.")
        bot = serializer.instance
        if data:
            bot = services.bot_update(bot=bot, **data)
        if definition is not None:
            bot = services.draft_update(bot=bot, definition=definition)
        serializer.instance = Bot.objects.select_related("published_version").get(pk=bot.pk)

    @extend_schema(
        request=PublishSerializer, responses={201: BotVersionSerializer, 421: WRONG_REGION}
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        bot = self.get_object()
        params = PublishSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        version = services.bot_publish(bot=bot, note=params.validated_data["note"])
        return Response(BotVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=RollbackSerializer, responses={201: BotVersionSerializer, 421: WRONG_REGION}
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        bot = self.get_object()
        params = RollbackSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        version = get_object_or_404(
            BotVersion.objects.for_tenant(self.tenant),
            bot=bot,
            number=params.validated_data["version"],
        )
        new_version = services.bot_rollback(bot=bot, version=version)
        return Response(BotVersionSerializer(new_version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: BotSerializer, 409: CONFLICT, 421: WRONG_REGION})
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        bot = services.bot_launch(bot=self.get_object())
        return Response(self.get_serializer(Bot.objects.get(pk=bot.pk)).data)

    @extend_schema(
        request=MoveSerializer,
        responses={200: MovedSerializer, 409: CONFLICT, 421: WRONG_REGION},
        description="Move a draft to another region's deployment (docs/regions.md): it is "
        "created there with a new id and widget key, and deleted here.",
    )
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        bot = self.get_object()
        params = MoveSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        moved = services.bot_move(bot=bot, region=params.validated_data["region"])
        return Response(MovedSerializer(moved).data)

    @extend_schema(request=None, responses={200: BotSerializer, 409: CONFLICT, 421: WRONG_REGION})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        bot = services.bot_pause(bot=self.get_object())
        return Response(self.get_serializer(Bot.objects.get(pk=bot.pk)).data)


class BotVersionViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    """A bot's published versions (immutable)."""

    queryset = BotVersion.objects.select_related("bot")
    serializer_class = BotVersionSerializer
    lookup_field = "number"
    lookup_value_regex = "[0-9]{1,9}"  # a version number (a 32-bit column)

    def get_queryset(self):
        bot = get_object_or_404(Bot.objects.for_tenant(self.tenant), pk=self.kwargs["bot_pk"])
        bot_ensure_local(bot)
        return super().get_queryset().filter(bot=bot).order_by("-number")


class BotTemplateSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    summary = serializers.CharField()
    language = serializers.CharField()
    bot_fields = serializers.DictField(help_text="The bot settings the template sets.")
    definition = serializers.JSONField()


class BotTemplateViewSet(viewsets.ViewSet):
    """The flow templates a new bot may start from (``POST /api/v1/bots/`` with
    ``"template": "<name>"``)."""

    serializer_class = BotTemplateSerializer

    @extend_schema(responses={200: BotTemplateSerializer(many=True)})
    def list(self, request):
        rows = [
            {
                "name": t.name,
                "title": t.title,
                "summary": t.summary,
                "language": t.language,
                "bot_fields": t.bot_fields,
                "definition": t.definition,
            }
            for t in FLOW_TEMPLATES.values()
        ]
        return Response(BotTemplateSerializer(rows, many=True).data)
