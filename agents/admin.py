"""The dashboard's teams, agents and canned responses."""

from django.contrib import admin

from agents.models import AgentProfile, CannedResponse, HandoffEvent, Team
from chattonic.tenancy.admin import TenantScopedAdmin


@admin.register(Team)
class TeamAdmin(TenantScopedAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(AgentProfile)
class AgentProfileAdmin(TenantScopedAdmin):
    list_display = ["__str__", "presence", "capacity", "last_seen_at"]
    list_filter = ["presence", "teams"]
    fields = ["user", "teams", "capacity", "presence", "last_seen_at"]
    readonly_fields = ["user", "presence", "last_seen_at"]
    filter_horizontal = ["teams"]

    def has_add_permission(self, request, *args, **kwargs):
        return False  # a profile appears when a member first opens the console


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantScopedAdmin):
    list_display = ["shortcut", "text"]
    search_fields = ["shortcut", "text"]


@admin.register(HandoffEvent)
class HandoffEventAdmin(TenantScopedAdmin):
    list_display = [
        "conversation",
        "from_status",
        "to_status",
        "reason",
        "actor",
        "agent",
        "created_at",
    ]
    list_filter = ["reason", "to_status"]
    readonly_fields = [
        "conversation",
        "from_status",
        "to_status",
        "reason",
        "actor",
        "agent",
        "team",
        "detail",
        "created_at",
    ]

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False
