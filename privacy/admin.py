"""The dashboard's record of contacts' data exported or erased."""

from django.contrib import admin

from chattonic.tenancy.admin import TenantScopedAdmin
from privacy.models import PrivacyAudit


@admin.register(PrivacyAudit)
class PrivacyAuditAdmin(TenantScopedAdmin):
    list_display = ["created_at", "action", "contact_ref", "door", "actor", "api_key"]
    list_filter = ["action", "door"]
    list_select_related = ["actor", "api_key"]
    readonly_fields = ["action", "contact_ref", "door", "actor", "api_key", "what", "created_at"]
    fields = readonly_fields

    @admin.display(description="what it covered")
    def what(self, obj):
        summary = obj.summary if isinstance(obj.summary, dict) else {}
        return ", ".join(f"{summary[key]} {key}" for key in sorted(summary)) or "-"

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit outlives what it records
