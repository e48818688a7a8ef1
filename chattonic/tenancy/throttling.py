"""Per-key request rate for the REST API; over it, 429 with ``Retry-After``."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self):
        return f"{settings.API_RATE_PER_MINUTE}/min"

    def get_cache_key(self, request, view):
        api_key = getattr(request, "auth", None)
        if api_key is None:
            return None
        return f"{api_key.tenant_id}.throttle.api_key.{api_key.pk}"
