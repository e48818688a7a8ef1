"""``/api/v1/conversations/``, ``/contacts/``, ``/leads/`` and ``/stats/``.

Sandbox conversations (the dashboard's test chats) never show here. The actions that act as
an agent on a conversation (send, hand off, resolve) are the agents app's: ``agents/api.py``
adds them to :class:`ConversationViewSet` (conversations imports no app above it).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import Bot
from chattonic.core.api import KeyField, KeyRelatedField, TenantScopedMixin
from chattonic.tenancy.models import ApiKey
from conversations import contacts, leads, privacy, selectors, stats
from conversations.models import (
    ChannelKind,
    Contact,
    ContactIdentity,
    Conversation,
    Lead,
    Message,
    PrivacyAudit,
)

CONFLICT = OpenApiResponse(description="Not allowed in the conversation's state.")
MESSAGES_INLINE = 200


def _start_of(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, tzinfo=UTC)


class DateOrDateTimeField(serializers.DateTimeField):
    """A date (its midnight, UTC) or a date-time."""

    def to_internal_value(self, value):
        if isinstance(value, str) and len(value) == 10:
            parsed = serializers.DateField().to_internal_value(value)
            return datetime.combine(parsed, time.min, tzinfo=UTC)
        return super().to_internal_value(value)


# --- Conversations ----------------------------------------------------------------------------


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "sender",
            "agent",
            "kind",
            "text",
            "data",
            "status",
            "status_at",
            "created_at",
        ]
        read_only_fields = fields


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = [
            "id",
            "bot",
            "contact",
            "channel_kind",
            "channel",
            "status",
            "assigned_agent",
            "team",
            "handoff_reason",
            "language",
            "csat",
            "created_at",
            "last_message_at",
            "queued_at",
            "assigned_at",
            "first_agent_response_at",
            "resolved_at",
        ]
        read_only_fields = fields
        # Blank until the first handoff (a read-only field's schema leaves it out otherwise).
        extra_kwargs = {"handoff_reason": {"allow_blank": True}}


class ConversationDetailSerializer(ConversationSerializer):
    messages = serializers.SerializerMethodField(
        help_text=f"The newest {MESSAGES_INLINE} messages, oldest first; older ones at /messages/."
    )

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages"]
        read_only_fields = fields

    @extend_schema_field(MessageSerializer(many=True))
    def get_messages(self, conversation) -> list[dict]:
        page = selectors.conversation_history(conversation=conversation, limit=MESSAGES_INLINE)
        return MessageSerializer(page, many=True).data


class ConversationFilterSerializer(serializers.Serializer):
    bot = KeyField(required=False)
    channel = serializers.ChoiceField(choices=ChannelKind.choices, required=False)
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    contact = KeyField(required=False)
    created_after = DateOrDateTimeField(
        required=False, help_text="A date (YYYY-MM-DD, from its start, UTC) or a date-time."
    )
    created_before = DateOrDateTimeField(
        required=False, help_text="A date (YYYY-MM-DD, before its start, UTC) or a date-time."
    )


class RateSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)


def _filter_params(serializer_class, request) -> dict:
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data


@extend_schema_view(
    list=extend_schema(parameters=[ConversationFilterSerializer], summary="List conversations"),
    retrieve=extend_schema(
        responses=ConversationDetailSerializer, summary="A conversation with its messages"
    ),
)
class ConversationViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The tenant's conversations (not the sandbox's), newest activity first."""

    queryset = Conversation.objects.filter(is_sandbox=False).order_by("-last_message_at", "-id")
    serializer_class = ConversationSerializer

    def get_serializer_class(self):
        if self.action == "retrieve":
            return ConversationDetailSerializer
        return super().get_serializer_class()

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        data = _filter_params(ConversationFilterSerializer, self.request)
        if "bot" in data:
            queryset = queryset.filter(bot_id=data["bot"])
        if "channel" in data:
            queryset = queryset.filter(channel_kind=data["channel"])
        if "status" in data:
            queryset = queryset.filter(status=data["status"])
        if "contact" in data:
            queryset = queryset.filter(contact_id=data["contact"])
        if "created_after" in data:
            queryset = queryset.filter(created_at__gte=data["created_after"])
        if "created_before" in data:
            queryset = queryset.filter(created_at__lt=data["created_before"])
        return queryset

    @extend_schema(
        request=None,
        responses={200: MessageSerializer(many=True)},
        summary="A conversation's messages, oldest first",
    )
    @action(detail=True, methods=["get"])
    def messages(self, request, pk=None):
        return self.messages_list(self.get_object())

    def messages_list(self, conversation):
        queryset = Message.objects.for_tenant(self.tenant).filter(conversation=conversation)
        page = self.paginate_queryset(queryset.order_by("created_at", "id"))
        return self.get_paginated_response(MessageSerializer(page, many=True).data)

    @extend_schema(
        request=RateSerializer,
        responses={200: ConversationSerializer, 409: CONFLICT},
        summary="Record the contact's 1-5 satisfaction rating of a resolved conversation",
    )
    @action(detail=True, methods=["post"])
    def rate(self, request, pk=None):
        conversation = self.get_object()
        params = RateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        conversation = stats.conversation_rate(
            conversation=conversation, score=params.validated_data["score"]
        )
        return Response(ConversationSerializer(self._fresh(conversation)).data)

    def _fresh(self, conversation):
        return Conversation.objects.get(pk=conversation.pk)


# --- Contacts ---------------------------------------------------------------------------------


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactIdentity
        fields = ["kind", "channel", "external_id", "created_at"]
        read_only_fields = fields


class ContactSerializer(serializers.ModelSerializer):
    identities = IdentitySerializer(many=True, read_only=True)
    # Checked by the service; a CharField so that a contact without one ("") fits the schema.
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    attributes = serializers.DictField(required=False)

    class Meta:
        model = Contact
        fields = [
            "id",
            "name",
            "email",
            "phone",
            "attributes",
            "identities",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "identities", "created_at", "updated_at"]


class ContactFilterSerializer(serializers.Serializer):
    email = serializers.CharField(required=False, max_length=254)
    phone = serializers.CharField(required=False, max_length=40)


class MergeSerializer(serializers.Serializer):
    source = KeyRelatedField(
        queryset=Contact.objects.none(),
        help_text="The contact to merge into this one; it keeps its conversations.",
    )

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        if tenant is not None:
            self.fields["source"].queryset = Contact.objects.for_tenant(tenant).filter(
                merged_into__isnull=True
            )


class PrivacyAuditSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrivacyAudit
        fields = ["id", "action", "contact_ref", "door", "summary", "created_at"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(parameters=[ContactFilterSerializer], summary="List contacts"),
    retrieve=extend_schema(summary="A contact and its channel identities"),
    update=extend_schema(summary="Change a contact (a known email or phone merges it)"),
    partial_update=extend_schema(summary="Change some of a contact's details"),
)
class ContactViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The tenant's contacts (merged ones live on in the contact they were merged into)."""

    queryset = (
        Contact.objects.filter(merged_into__isnull=True)
        .prefetch_related("identities")
        .order_by("-created_at", "-id")
    )
    serializer_class = ContactSerializer
    required_scope = None  # per action: export and erase need ``admin``

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        data = _filter_params(ContactFilterSerializer, self.request)
        if data.get("email"):
            queryset = queryset.filter(email__iexact=contacts.normalize_email(data["email"]))
        if data.get("phone"):
            queryset = queryset.filter(phone=contacts.normalize_phone(data["phone"]))
        return queryset

    def perform_update(self, serializer):
        data = serializer.validated_data
        contact = contacts.contact_update(
            contact=serializer.instance,
            name=data.get("name"),
            email=data.get("email"),
            phone=data.get("phone"),
            attributes=data.get("attributes"),
        )
        serializer.instance = Contact.objects.prefetch_related("identities").get(pk=contact.pk)

    @extend_schema(
        request=MergeSerializer,
        responses=ContactSerializer,
        summary="Merge another contact into this one",
    )
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        target = self.get_object()
        params = MergeSerializer(data=request.data, tenant=self.tenant)
        params.is_valid(raise_exception=True)
        contact = contacts.contact_merge(target=target, source=params.validated_data["source"])
        fresh = Contact.objects.prefetch_related("identities").get(pk=contact.pk)
        return Response(ContactSerializer(fresh).data)

    @extend_schema(
        request=None,
        responses={200: OpenApiTypes.OBJECT},
        summary="Everything held about the contact, as JSON (needs the admin scope)",
    )
    @action(detail=True, methods=["get"], required_scope=ApiKey.Scope.ADMIN)
    def export(self, request, pk=None):
        data = privacy.contact_export(
            contact=self.get_object(), door=PrivacyAudit.Door.API, api_key=request.auth
        )
        return Response(data)

    @extend_schema(
        request=None,
        responses={200: PrivacyAuditSerializer},
        summary="Erase the contact: its messages and personal data (needs the admin scope)",
    )
    @action(detail=True, methods=["post"], required_scope=ApiKey.Scope.ADMIN)
    def erase(self, request, pk=None):
        audit = privacy.contact_erase(
            contact=self.get_object(), door=PrivacyAudit.Door.API, api_key=request.auth
        )
        return Response(PrivacyAuditSerializer(audit).data)


# --- Leads ------------------------------------------------------------------------------------


class LeadSerializer(serializers.ModelSerializer):
    contact = KeyRelatedField(
        queryset=Contact.objects.none(),
        required=False,
        help_text="The contact; or give email / phone and the contact is found or created.",
    )
    conversation = KeyRelatedField(
        queryset=Conversation.objects.none(), required=False, allow_null=True
    )
    fields = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_blank=True),
        required=False,
        default=dict,
    )
    channel_kind = serializers.CharField(read_only=True, help_text="Blank for API leads.")
    name = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=200)
    email = serializers.EmailField(write_only=True, required=False, allow_blank=True)
    phone = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=40)

    class Meta:
        model = Lead
        fields = [
            "id",
            "contact",
            "conversation",
            "bot",
            "channel_kind",
            "fields",
            "status",
            "source",
            "name",
            "email",
            "phone",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "bot", "channel_kind", "source", "created_at", "updated_at"]

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        if tenant is not None:
            self.fields["contact"].queryset = Contact.objects.for_tenant(tenant)
            self.fields["conversation"].queryset = Conversation.objects.for_tenant(tenant).filter(
                is_sandbox=False
            )


class LeadUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Lead.Status.choices, required=False)
    fields = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_blank=True), required=False
    )


class LeadFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Lead.Status.choices, required=False)
    source = serializers.ChoiceField(choices=Lead.Source.choices, required=False)
    bot = KeyField(required=False)
    contact = KeyField(required=False)
    created_after = DateOrDateTimeField(required=False)
    created_before = DateOrDateTimeField(required=False)


def _filter_leads(queryset, data: dict):
    for name in ("status", "source"):
        if name in data:
            queryset = queryset.filter(**{name: data[name]})
    if "bot" in data:
        queryset = queryset.filter(bot_id=data["bot"])
    if "contact" in data:
        queryset = queryset.filter(contact_id=data["contact"])
    if "created_after" in data:
        queryset = queryset.filter(created_at__gte=data["created_after"])
    if "created_before" in data:
        queryset = queryset.filter(created_at__lt=data["created_before"])
    return queryset


@extend_schema_view(
    list=extend_schema(parameters=[LeadFilterSerializer], summary="List leads"),
    create=extend_schema(request=LeadSerializer, responses={201: LeadSerializer}),
    update=extend_schema(request=LeadUpdateSerializer, responses=LeadSerializer),
    partial_update=extend_schema(request=LeadUpdateSerializer, responses=LeadSerializer),
)
class LeadViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The tenant's leads, newest first. The CSV export is at ``/leads/export/``."""

    queryset = Lead.objects.exclude(conversation__is_sandbox=True).order_by("-created_at", "-id")
    serializer_class = LeadSerializer

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        return _filter_leads(queryset, _filter_params(LeadFilterSerializer, self.request))

    def create(self, request):
        params = LeadSerializer(data=request.data, tenant=self.tenant)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        conversation = data.get("conversation")
        lead = leads.lead_create(
            tenant=self.tenant,
            contact=data.get("contact"),
            conversation=conversation,
            name=data.get("name", ""),
            email=data.get("email", ""),
            phone=data.get("phone", ""),
            fields=data.get("fields") or {},
            status=data.get("status", Lead.Status.NEW),
            source=Lead.Source.API,
        )
        return Response(LeadSerializer(lead).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        lead = self.get_object()
        params = LeadUpdateSerializer(data=request.data, partial=partial)
        params.is_valid(raise_exception=True)
        lead = leads.lead_update(
            lead=lead,
            status=params.validated_data.get("status"),
            fields=params.validated_data.get("fields"),
        )
        return Response(LeadSerializer(lead).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)

    def perform_destroy(self, instance):
        leads.lead_delete(lead=instance)


class CSVRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""


class LeadExportView(APIView):
    """``GET /api/v1/leads/export/``: the leads as CSV, streamed (any size)."""

    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[LeadFilterSerializer],
        responses={(200, "text/csv"): OpenApiTypes.STR},
        summary="Export leads as CSV (streamed)",
    )
    def get(self, request):
        data = _filter_params(LeadFilterSerializer, request)
        queryset = _filter_leads(Lead.objects.for_tenant(request.auth.tenant), data)
        response = StreamingHttpResponse(
            leads.leads_csv(leads.leads_for_export(queryset)), content_type="text/csv"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
        return response


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
        data = _filter_params(StatsQuerySerializer, request)
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
