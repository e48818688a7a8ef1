"""``/api/v1/leads/`` and their CSV export."""

from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from chattonic.core.api import (
    DateOrDateTimeField,
    KeyField,
    KeyRelatedField,
    TenantScopedMixin,
    filter_params,
)
from contacts.models import Contact
from conversations.models import Conversation
from leads import services as leads
from leads.models import Lead

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
        return _filter_leads(queryset, filter_params(LeadFilterSerializer, self.request))

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
        data = filter_params(LeadFilterSerializer, request)
        queryset = _filter_leads(Lead.objects.for_tenant(request.auth.tenant), data)
        response = StreamingHttpResponse(leads.leads_csv(queryset), content_type="text/csv")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
        return response
