"""``/api/v1/tickets/``: a tenant's support tickets: list, report, read, comment."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from bots.models import Bot
from chattonic.core.api import KeyRelatedField, TenantScopedMixin
from conversations.models import Conversation
from support import selectors, services, targets
from support.models import Ticket, TicketComment


class ResponseStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["due", "met", "breached", "closed"])
    due_at = serializers.DateTimeField()
    remaining_seconds = serializers.IntegerField()


class TicketSerializer(serializers.ModelSerializer):
    # Blank when the reporter left none: a plain string, or "" breaks the schema's email format.
    reporter_email = serializers.CharField(read_only=True)
    first_response = serializers.SerializerMethodField()
    expectation = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "title",
            "description",
            "severity",
            "status",
            "source",
            "reporter_name",
            "reporter_email",
            "bot",
            "conversation",
            "created_at",
            "updated_at",
            "first_response_due_at",
            "first_response_at",
            "first_response",
            "expectation",
            "resolved_at",
            "closed_at",
        ]
        read_only_fields = fields

    @extend_schema(responses=ResponseStateSerializer)
    def get_first_response(self, ticket) -> dict:
        state = targets.response_state(ticket)
        return {
            "state": state.state,
            "due_at": state.due_at,
            "remaining_seconds": int(state.remaining.total_seconds()),
        }

    def get_expectation(self, ticket) -> str:
        if "calendar" not in self.context:  # once per response, not once per ticket
            self.context["calendar"] = targets.support_calendar()
        return targets.expectation(ticket, self.context["calendar"])


class TicketCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=20000
    )
    severity = serializers.ChoiceField(
        choices=Ticket.Severity.choices, default=Ticket.Severity.NORMAL
    )
    reporter_name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200
    )
    reporter_email = serializers.EmailField(required=False, allow_blank=True, default="")
    bot = KeyRelatedField(queryset=Bot.objects.none(), required=False, allow_null=True)
    conversation = KeyRelatedField(
        queryset=Conversation.objects.none(), required=False, allow_null=True
    )

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        if tenant is not None:
            self.fields["bot"].queryset = Bot.objects.for_tenant(tenant)
            self.fields["conversation"].queryset = Conversation.objects.for_tenant(tenant)


class CommentSerializer(serializers.ModelSerializer):
    from_support = serializers.BooleanField(read_only=True)

    class Meta:
        model = TicketComment
        fields = ["id", "body", "author_name", "from_support", "created_at"]
        read_only_fields = ["id", "author_name", "from_support", "created_at"]


class TicketViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Tickets of the API key's tenant. Internal comments of the support team never show."""

    queryset = Ticket.objects.order_by("-created_at", "-id")
    serializer_class = TicketSerializer

    @extend_schema(request=TicketCreateSerializer, responses={201: TicketSerializer})
    def create(self, request):
        params = TicketCreateSerializer(data=request.data, tenant=self.tenant)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        ticket = services.ticket_create(
            tenant=self.tenant,
            title=data["title"],
            description=data["description"],
            severity=data["severity"],
            source=Ticket.Source.API,
            reporter_name=data["reporter_name"] or f"API key {request.auth.name}",
            reporter_email=data["reporter_email"],
            bot=data.get("bot"),
            conversation=data.get("conversation"),
        )
        return Response(TicketSerializer(ticket).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], request=None, responses={200: CommentSerializer(many=True)})
    @extend_schema(methods=["POST"], request=CommentSerializer, responses={201: CommentSerializer})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, pk=None):
        ticket = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.ticket_public_comments(ticket=ticket))
            return self.get_paginated_response(CommentSerializer(page, many=True).data)
        params = CommentSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        comment = services.ticket_comment_add(
            ticket=ticket,
            body=params.validated_data["body"],
            origin=TicketComment.Origin.TENANT,
            author_name=f"API key {request.auth.name}",
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
