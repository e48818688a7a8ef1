"""Support tickets, their comments, holidays, and the Trello mirror's mapping and outbox."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chattonic.tenancy.models import TenantOwned


class Ticket(TenantOwned):
    """A problem or question a tenant reported to the platform's support."""

    class Severity(models.TextChoices):
        INTERRUPTION = "interruption", "Service interruption"
        HIGH = "high", "High"
        NORMAL = "normal", "Normal"
        LOW = "low", "Low"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        WAITING = "waiting", "Waiting on customer"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Source(models.TextChoices):
        DASHBOARD = "dashboard", "Dashboard"
        API = "api", "API"
        AWAY_FORM = "away_form", "After-hours handoff"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    severity = models.CharField(
        max_length=12,
        choices=Severity.choices,
        default=Severity.NORMAL,
        help_text=(
            "Service interruption: the service is down or unusable. High: a feature does not "
            "work. Normal: a problem with a workaround. Low: a question or a request."
        ),
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    source = models.CharField(max_length=10, choices=Source.choices, editable=False)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    # Who to answer when the reporter is not a dashboard user (an API caller, a visitor).
    reporter_name = models.CharField(max_length=200, blank=True)
    reporter_email = models.EmailField(blank=True)
    bot = models.ForeignKey(
        "bots.Bot", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation = models.ForeignKey(
        "conversations.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lead = models.ForeignKey(
        "leads.Lead",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    # Fixed when the ticket is created (or its severity changes), from the support hours then.
    first_response_due_at = models.DateTimeField(editable=False)
    first_response_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the status last changed (Trello's time for a move made in Trello): a Trello move
    # from before it, delivered late or again, changes nothing.
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set once by the breach check, which notifies the operators at the same time.
    breach_flagged_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "created_at"]),
            models.Index(
                fields=["first_response_due_at"],
                name="ticket_awaiting_response",
                condition=Q(first_response_at__isnull=True, breach_flagged_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class TicketComment(TenantOwned):
    """A reply on a ticket. Internal comments are for the support team only."""

    class Origin(models.TextChoices):
        TENANT = "tenant", "Tenant"
        SUPPORT = "support", "Support"
        TRELLO = "trello", "Trello"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=200, blank=True)
    origin = models.CharField(max_length=8, choices=Origin.choices)
    body = models.TextField()
    is_internal = models.BooleanField(default=False)
    # The Trello action that carries this comment (ours once posted, or the one it came from).
    trello_action_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # A webhook delivered twice: one comment.
            models.UniqueConstraint(
                fields=["tenant", "trello_action_id"],
                name="ticketcomment_trello_action_unique",
                condition=~Q(trello_action_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"Comment #{self.pk} on ticket #{self.ticket_id}"

    @property
    def from_support(self) -> bool:
        return self.origin in (self.Origin.SUPPORT, self.Origin.TRELLO)


class SupportHoliday(models.Model):
    """A day without support hours (platform-wide): it does not count toward targets."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}"


# --- Trello ---------------------------------------------------------------------------------


class TrelloCard(TenantOwned):
    """The Trello card that mirrors a ticket: one per ticket, whatever the retries."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="trello_card")
    # Trello's ids are global; the webhook finds the ticket from the card before the tenant.
    card_id = models.CharField(max_length=64, db_index=True)
    short_url = models.URLField(blank=True)
    list_id = models.CharField(max_length=64, blank=True)
    # The Trello members the card carries (the tenant's developer and coordinator).
    member_ids = models.JSONField(default=list, blank=True)
    # The last card move applied from Trello's webhook: the same action again changes nothing.
    last_move_action_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ticket"], name="trellocard_ticket_unique"),
            models.UniqueConstraint(fields=["tenant", "card_id"], name="trellocard_card_unique"),
        ]

    def __str__(self) -> str:
        return self.short_url or self.card_id


class TrelloOutbox(TenantOwned):
    """One change to carry to Trello, kept until Trello has it (the mirror's durable queue).

    Entries of a ticket are carried in order; a failing entry waits (``next_attempt_at``)
    and holds back the later ones of its ticket.
    """

    class Kind(models.TextChoices):
        CREATE_CARD = "create_card", "Create the card"
        MOVE_CARD = "move_card", "Move the card to the status's list"
        ADD_COMMENT = "add_comment", "Add a comment"
        STATUS_NOTE = "status_note", "Tell the ticket's people of a status change"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    comment = models.ForeignKey(
        TicketComment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker's claim: another worker leaves the entry alone until then.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # For moves: the list the card was put in, so that Trello's echo of it is recognised.
    target_list_id = models.CharField(max_length=64, blank=True)
    echo_seen = models.BooleanField(default=False)
    # For status notes: the status the note tells of, and the comment's action once posted.
    status = models.CharField(max_length=12, blank=True)
    trello_action_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "ticket"],
                name="trellooutbox_one_create_per_ticket",
                condition=Q(kind="create_card"),
            ),
            models.UniqueConstraint(
                fields=["tenant", "comment"],
                name="trellooutbox_one_entry_per_comment",
                condition=Q(comment__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for ticket #{self.ticket_id} ({self.state})"


class TrelloState(models.Model):
    """The mirror's own record (one row): list ids, the webhook, last sync and last error."""

    lists = models.JSONField(default=dict, blank=True)  # list name -> id on the board
    usernames = models.JSONField(default=dict, blank=True)  # member id -> username (mentions)
    board_id = models.CharField(max_length=64, blank=True)
    webhook_id = models.CharField(max_length=64, blank=True)
    webhook_callback_url = models.URLField(blank=True)
    webhook_attempted_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_webhook_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Trello mirror state"

    def __str__(self) -> str:
        return "Trello mirror"
