"""``Authorization: Bearer <api key>`` for the REST API; the key names the tenant."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from chattonic.tenancy.selectors import api_key_from_token
from chattonic.tenancy.services import api_key_touch


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # NotAuthenticated (401) from the permission check
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme != self.keyword or not token or " " in token:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; expected 'Bearer <api key>'.",
                code="malformed_credentials",
            )
        api_key = api_key_from_token(token)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed(
                "This API key was revoked.", code="revoked_api_key"
            )
        api_key_touch(api_key=api_key)
        return (None, api_key)

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "chattonic.tenancy.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API key: `ct_<prefix>_<secret>`.",
        }
