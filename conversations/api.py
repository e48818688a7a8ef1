"""``/api/v1/conversations/``.

Sandbox conversations (the dashboard's test chats) never show here. The actions that act as
an agent on a conversation (send, hand off, resolve) are the agents app's: ``agents/api.py``
adds them to :class:`ConversationViewSet` (conversations imports no app above it).
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from chattonic.core.api import (
    DateOrDateTimeField,
    KeyField,
    TenantScopedMixin,
    filter_params,
)
from conversations import selectors, services
from conversations.models import ChannelKind, Conversation, Message

CONFLICT = OpenApiResponse(description="Not allowed in the conversation's state.")
MESSAGES_INLINE = 200


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
        data = filter_params(ConversationFilterSerializer, self.request)
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
        conversation = services.conversation_rate(
            conversation=conversation, score=params.validated_data["score"]
        )
        return Response(ConversationSerializer(self._fresh(conversation)).data)

    def _fresh(self, conversation):
        return Conversation.objects.get(pk=conversation.pk)
