"""``/api/v1/tenant/``: the tenant of the calling API key."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from chattonic.tenancy.models import Tenant


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "created_at"]


class TenantView(APIView):
    @extend_schema(responses=TenantSerializer, summary="The caller's tenant")
    def get(self, request):
        return Response(TenantSerializer(request.auth.tenant).data)
