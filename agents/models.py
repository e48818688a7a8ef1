"""Live agents: presence and capacity, teams, the handoff's history, canned replies, notes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from chattonic.tenancy.models import TenantOwned
from conversations.models import Conversation, HandoffReason


class Team(TenantOwned):
    """A department that handoffs can be routed to (sales, billing, ...)."""

    name = models.CharField(max_length=80)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="team_tenant_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class AgentProfile(TenantOwned):
    """An agent's presence, capacity and teams."""

    class Presence(models.TextChoices):
        ONLINE = "online", "Online"
        AWAY = "away", "Away"
        OFFLINE = "offline", "Offline"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile"
    )
    teams = models.ManyToManyField(Team, blank=True, related_name="agents")
    capacity = models.PositiveSmallIntegerField(
        default=5, help_text="The most conversations this agent holds at once."
    )
    presence = models.CharField(max_length=8, choices=Presence.choices, default=Presence.OFFLINE)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Open console sockets; the agent goes offline when the last one closes.
    connections = models.PositiveIntegerField(default=0, editable=False)
    # Round-robin fairness: the agent who waited longest since an assignment goes first.
    last_assigned_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()


class HandoffEvent(TenantOwned):
    """One transition of a conversation's handoff state: who, when, why."""

    Reason = HandoffReason  # one list: the conversation's handoff_reason reads it too

    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="handoff_events"
    )
    from_status = models.CharField(max_length=10)
    to_status = models.CharField(max_length=10)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        labels = dict(Conversation.Status.choices)
        moved = f"{labels.get(self.from_status, self.from_status)} → "
        return f"{moved}{labels.get(self.to_status, self.to_status)} ({self.get_reason_display()})"


class CannedResponse(TenantOwned):
    """A saved reply agents insert by typing ``/shortcut``."""

    shortcut = models.SlugField(max_length=40)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["shortcut"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "shortcut"], name="canned_tenant_shortcut_unique"
            )
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class Note(TenantOwned):
    """A private note on a conversation: seen by agents, never sent to the visitor."""

    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="notes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Note #{self.pk}"


class ConversationSeen(TenantOwned):
    """How far an agent has read a conversation: the newest message they had in view. The
    console's unread count is the visitor's messages after it."""

    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="+"
    )
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message_id = models.BigIntegerField(default=0)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "conversation", "agent"], name="seen_tenant_conversation_agent"
            )
        ]

    def __str__(self) -> str:
        return f"Seen #{self.conversation_id} up to {self.message_id}"
