"""``/api/v1/contacts/``: contacts, their merge, and their export and erase (the privacy
app's)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from chattonic.core.api import (
    KeyRelatedField,
    TenantScopedMixin,
    filter_params,
)
from chattonic.tenancy.models import ApiKey
from contacts import services as contacts
from contacts.models import Contact, ContactIdentity
from privacy import services as privacy
from privacy.models import PrivacyAudit

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
        data = filter_params(ContactFilterSerializer, self.request)
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
