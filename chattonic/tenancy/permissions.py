"""API key scopes: reads need ``read``, writes ``write``; a view may ask for ``admin``."""

from rest_framework import exceptions, permissions

from chattonic.tenancy.models import ApiKey


class HasApiKeyScope(permissions.BasePermission):
    def has_permission(self, request, view):
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated(
                "An API key is required: 'Authorization: Bearer <key>'."
            )
        scope = getattr(view, "required_scope", None) or (
            ApiKey.Scope.READ if request.method in permissions.SAFE_METHODS else ApiKey.Scope.WRITE
        )
        if not api_key.has_scope(scope):
            raise exceptions.PermissionDenied(f"This API key lacks the '{scope}' scope.")
        return True
