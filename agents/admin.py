"""The dashboard's teams, agents and canned responses."""

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from agents.models import AgentProfile, CannedResponse, HandoffEvent, Team
from chattonic.tenancy.admin import TenantScopedAdmin
from chattonic.tenancy.selectors import staff_display_name
from conversations.admin import SandboxFilter
from conversations.models import Conversation


class ConversationStatusFilter(admin.ChoicesFieldListFilter):
    """The "to" filter, by the conversation's status labels (the column has no choices)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "to"

    def choices(self, changelist):
        yield {
            "selected": not self.lookup_val,
            "query_string": changelist.get_query_string(remove=[self.lookup_kwarg]),
            "display": "All",
        }
        for value, label in Conversation.Status.choices:
            yield {
                "selected": self.lookup_val is not None and value in self.lookup_val,
                "query_string": changelist.get_query_string({self.lookup_kwarg: value}),
                "display": label,
            }


@admin.register(Team)
class TeamAdmin(TenantScopedAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(AgentProfile)
class AgentProfileAdmin(TenantScopedAdmin):
    list_display = ["__str__", "presence", "capacity", "last_seen_at"]
    list_filter = ["presence", "teams"]
    list_select_related = ["user"]
    fields = ["user", "teams", "capacity", "presence", "last_seen_at"]
    readonly_fields = ["user", "presence", "last_seen_at"]
    filter_horizontal = ["teams"]

    def has_add_permission(self, request, *args, **kwargs):
        return False  # a profile appears when a member first opens the console

    def changelist_view(self, request, extra_context=None):
        # How an agent gets here: the page offered only "Delete selected agents".
        intro = format_html(
            'An agent is a member of your staff who opens the <a href="{}">agent console</a>: '
            "they appear here the first time they do. To add one, the account's owner invites "
            'them (<a href="{}">Invitations</a>); here you set their teams and how many '
            "conversations they hold at once.",
            reverse("console"),
            reverse("admin:tenancy_invitation_changelist"),
        )
        return super().changelist_view(request, {"list_intro": intro, **(extra_context or {})})


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantScopedAdmin):
    list_display = ["shortcut", "text"]
    search_fields = ["shortcut", "text"]


STATUS_LABELS = dict(Conversation.Status.choices)


def _person(user) -> str:
    """A staff member as the dashboard names them (``staff_display_name``)."""
    return staff_display_name(user)


class HandoffSandboxFilter(SandboxFilter):
    """The Conversations list's filter, over the events' conversations: a test chat's
    handoffs (which reach no agent) are left out unless asked for."""

    def test_chats(self) -> Q:
        return Q(conversation__is_sandbox=True)


@admin.register(HandoffEvent)
class HandoffEventAdmin(TenantScopedAdmin):
    list_display = [
        "conversation",
        "from_state",
        "to_state",
        "why",
        "actor_name",
        "agent_name",
        "created_at",
    ]
    list_filter = ["reason", ("to_status", ConversationStatusFilter), HandoffSandboxFilter]
    list_select_related = ["conversation__contact", "actor", "agent"]
    # Newest first, by the primary key's index (the model's order, oldest first, has none:
    # every event of the tenant joined and sorted for a page).
    ordering = ["-pk"]
    readonly_fields = [
        "conversation",
        "from_state",
        "to_state",
        "reason",
        "actor_name",
        "agent_name",
        "team",
        "detail",
        "created_at",
    ]
    # These only: the model's own status fields hold codes ("assigned"), told above in words.
    fields = readonly_fields

    @admin.display(description="reason", ordering="reason")
    def why(self, obj):
        """The reason, and a flow's own code for it (the handoff node's ``reason``)."""
        label = obj.get_reason_display()
        if obj.reason == HandoffEvent.Reason.FLOW and obj.detail:
            return f"{label}: {obj.detail}"
        return label

    @admin.display(description="actor", ordering="actor")
    def actor_name(self, obj):
        return _person(obj.actor)

    @admin.display(description="agent", ordering="agent")
    def agent_name(self, obj):
        return _person(obj.agent)

    @admin.display(description="from", ordering="from_status")
    def from_state(self, obj):
        return STATUS_LABELS.get(obj.from_status, obj.from_status)

    @admin.display(description="to", ordering="to_status")
    def to_state(self, obj):
        return STATUS_LABELS.get(obj.to_status, obj.to_status)

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False
