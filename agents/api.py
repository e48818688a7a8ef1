"""``/api/v1/conversations/``: the actions that act as an agent on a conversation (send a
message, hand off, resolve), added to the conversations app's read-only
:class:`conversations.api.ConversationViewSet` (the router registers this one).

They name the agent: a user id of the tenant's staff, by default the user who created the
API key.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import selectors, services
from chattonic.core.api import KeyField
from chattonic.tenancy.models import ApiKey
from conversations import api as conversations_api
from conversations.api import CONFLICT, ConversationSerializer, MessageSerializer


class AgentSerializer(serializers.Serializer):
    agent = KeyField(
        required=False,
        help_text="The agent's user id; by default the user who created the API key.",
    )


class SendSerializer(AgentSerializer):
    text = serializers.CharField(max_length=services.MAX_REPLY)


class HandOffSerializer(serializers.Serializer):
    team = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=80, help_text="A team's name."
    )
    reason = serializers.CharField(required=False, default="api", max_length=20)


def _agent(request, data: dict):
    """The user acting as the agent: a staff member of the key's tenant."""
    api_key: ApiKey = request.auth
    user_id = data.get("agent") or api_key.created_by_id
    if user_id is None:
        raise serializers.ValidationError(
            {"agent": ["Name the agent: a user id of your tenant's staff."]}
        )
    user = selectors.tenant_agent(tenant_id=api_key.tenant_id, user_id=user_id)
    if user is None:
        raise serializers.ValidationError({"agent": ["No such agent in your tenant."]})
    return user


class ConversationViewSet(conversations_api.ConversationViewSet):
    """The tenant's conversations (not the sandbox's), newest activity first."""

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={200: MessageSerializer(many=True)},
        summary="A conversation's messages, oldest first",
    )
    @extend_schema(
        methods=["POST"],
        request=SendSerializer,
        responses={201: MessageSerializer, 409: CONFLICT},
        summary="Send a message as an agent (taking the conversation over if needed)",
    )
    @action(detail=True, methods=["get", "post"])
    def messages(self, request, pk=None):
        conversation = self.get_object()
        if request.method == "GET":
            return self.messages_list(conversation)
        params = SendSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        message = services.agent_send(
            conversation=conversation,
            agent=_agent(request, params.validated_data),
            text=params.validated_data["text"],
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=HandOffSerializer,
        responses={200: ConversationSerializer, 409: CONFLICT},
        summary="Hand the conversation off to the agents' queue",
    )
    @action(detail=True, methods=["post"], url_path="hand-off")
    def hand_off(self, request, pk=None):
        conversation = self.get_object()
        params = HandOffSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        team = None
        if data["team"]:
            team = selectors.team_named(tenant_id=self.tenant.pk, name=data["team"])
            if team is None:
                raise serializers.ValidationError({"team": ["No such team."]})
        conversation = services.conversation_hand_off(
            conversation=conversation, reason=data["reason"] or "api", team=team
        )
        return Response(ConversationSerializer(self._fresh(conversation)).data)

    @extend_schema(
        request=AgentSerializer,
        responses={200: ConversationSerializer, 409: CONFLICT},
        summary="Resolve the conversation",
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        conversation = self.get_object()
        params = AgentSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        conversation = services.conversation_resolve(
            conversation=conversation, actor=_agent(request, params.validated_data)
        )
        return Response(ConversationSerializer(self._fresh(conversation)).data)
