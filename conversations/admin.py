"""The dashboard's conversations: the list and each one's transcript."""

from django.contrib import admin
from django.db.models import Q

from bots.models import Bot
from chattonic.core.admin_filters import TestChatFilter
from chattonic.tenancy.admin import TenantScopedAdmin
from conversations.models import Conversation
from conversations.selectors import conversation_transcript


class SandboxFilter(TestChatFilter):
    """Test chats (the bot page's sandbox) are left out of the list unless asked for: they
    were mixed in with the visitors' conversations. "With test chats" shows both, "Test chats
    only" those alone; the channel column says which is which."""

    def test_chats(self) -> Q:
        return Q(is_sandbox=True)


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    """A conversation's page: what it is (contact, bot, channel, agent, times) above its
    transcript, every message with its sender's name, time and delivery; read-only (a
    conversation is carried on in the agent console). Internal values (the recipient's id on
    the platform, the engine's state) are not shown."""

    list_display = [
        "__str__",
        "bot",
        "channel_column",
        "status",
        "agent",
        "last_message_at",
    ]
    list_select_related = ["contact", "bot", "assigned_agent"]
    # Dates by the lean filter (today, 7 days, this month...): a date hierarchy reads the
    # months of every conversation of the tenant at each page.
    list_filter = [
        "status",
        "channel_kind",
        "bot",
        ("created_at", admin.DateFieldListFilter),
        SandboxFilter,
    ]
    # Newest first, read from an index; "last message at" sorts on a click.
    ordering = ["-created_at", "-pk"]
    search_fields = ["contact__name", "contact__email", "contact__phone"]
    change_form_template = "admin/conversations/conversation/change_form.html"
    fields = [
        "contact",
        "bot",
        "bot_version",
        "channel_name",
        "status",
        "agent",
        "team",
        "handoff_reason",
        "language_name",
        "test_chat",
        "created_at",
        "last_message_at",
        "queued_at",
        "assigned_at",
        "first_agent_response_at",
        "resolved_at",
        "rating",
    ]
    readonly_fields = fields

    @admin.display(description="language")
    def language_name(self, obj):
        return dict(Bot.Language.choices).get(obj.language, obj.language)

    @admin.display(description="test chat")
    def test_chat(self, obj):
        """In words: the readonly checkbox showed as an empty row."""
        return "Yes: the dashboard's test chat, not a visitor" if obj.is_sandbox else "No"

    @admin.display(description="satisfaction (CSAT)")
    def rating(self, obj):
        return "-" if obj.csat is None else f"{obj.csat} / 5"

    @admin.display(description="channel", ordering="channel_kind")
    def channel_column(self, obj):
        """The channel, and a test chat said as such: it sits among the real ones."""
        kind = obj.get_channel_kind_display()
        return f"{kind} (test chat)" if obj.is_sandbox else kind

    @admin.display(description="channel")
    def channel_name(self, obj):
        if obj.channel_id:
            return f"{obj.channel.name} ({obj.get_channel_kind_display()})"
        return obj.get_channel_kind_display()

    @admin.display(description="agent", ordering="assigned_agent")
    def agent(self, obj):
        if obj.assigned_agent is None:
            return "-"
        user = obj.assigned_agent
        return user.get_full_name() or user.get_username()

    def has_add_permission(self, request, *args, **kwargs):
        return False  # conversations start at the doors, not in the dashboard

    def has_change_permission(self, request, obj=None):
        return False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            transcript = conversation_transcript(conversation=obj)
            context["transcript"] = transcript
            context["message_count"] = sum(1 for line in transcript if line.id)
        return super().render_change_form(request, context, add, change, form_url, obj)
