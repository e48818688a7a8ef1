"""The dashboard's conversations, contacts, leads and channels."""

from django.contrib import admin

from chattonic.tenancy.admin import TenantScopedAdmin
from conversations.models import Contact, ContactIdentity, Conversation, Lead, Message


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "direction", "sender", "kind", "text", "status", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["created_at", "id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    list_display = [
        "id",
        "contact",
        "bot",
        "channel_kind",
        "status",
        "assigned_agent",
        "last_message_at",
    ]
    list_filter = ["status", "channel_kind", "bot", "is_sandbox"]
    search_fields = ["contact__name", "contact__email", "contact__phone"]
    date_hierarchy = "created_at"
    inlines = [MessageInline]
    readonly_fields = [
        "bot",
        "bot_version",
        "contact",
        "channel_kind",
        "channel",
        "recipient_id",
        "is_sandbox",
        "status",
        "assigned_agent",
        "team",
        "handoff_reason",
        "language",
        "created_at",
        "last_message_at",
        "queued_at",
        "assigned_at",
        "first_agent_response_at",
        "resolved_at",
    ]
    exclude = ["engine_state", "awaiting_action"]

    def has_add_permission(self, request, *args, **kwargs):
        return False  # conversations start at the doors, not in the dashboard

    def has_change_permission(self, request, obj=None):
        return False


class IdentityInline(admin.TabularInline):
    model = ContactIdentity
    fields = ["kind", "channel", "external_id", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(TenantScopedAdmin):
    list_display = ["__str__", "email", "phone", "created_at"]
    search_fields = ["name", "email", "phone"]
    readonly_fields = ["merged_into", "created_at", "updated_at"]
    inlines = [IdentityInline]

    def has_add_permission(self, request, *args, **kwargs):
        return False


@admin.register(Lead)
class LeadAdmin(TenantScopedAdmin):
    list_display = ["id", "contact", "status", "source", "bot", "channel_kind", "created_at"]
    list_filter = ["status", "source", "bot", "channel_kind"]
    search_fields = ["contact__name", "contact__email", "contact__phone"]
    readonly_fields = ["contact", "conversation", "bot", "channel_kind", "source", "created_at"]
    fields = ["status", "fields", *readonly_fields]

    def has_add_permission(self, request, *args, **kwargs):
        return False
