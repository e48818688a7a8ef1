"""Reads shared by the dashboard, the API and the operators' tools."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Min, QuerySet

from support.models import Ticket, TicketComment, TrelloOutbox, TrelloState
from support.trello import sync


def ticket_public_comments(*, ticket: Ticket) -> QuerySet[TicketComment]:
    """What the tenant sees of a ticket's thread: never the internal comments."""
    return (
        TicketComment.objects.for_tenant(ticket.tenant_id)
        .filter(ticket=ticket, is_internal=False)
        .select_related("tenant")
        .order_by("created_at", "id")
    )


def ticket_comments_for(*, ticket: Ticket, user) -> QuerySet[TicketComment]:
    """The thread as ``user`` may see it: operators see the internal comments too."""
    if user.is_superuser:
        return (
            TicketComment.objects.filter(ticket=ticket)
            .select_related("tenant")
            .order_by("created_at", "id")
        )
    return ticket_public_comments(ticket=ticket)


@dataclass(frozen=True)
class MirrorStatus:
    enabled: bool
    message: str
    board_id: str = ""
    webhook: str = ""
    last_success_at: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    last_webhook_at: datetime | None = None
    pending: int = 0
    failed: int = 0
    oldest_pending_at: datetime | None = None


def trello_status() -> MirrorStatus:
    """Whether tickets are mirrored to Trello, and how the mirror is doing."""
    missing = [
        name
        for name in ("TRELLO_KEY", "TRELLO_TOKEN", "TRELLO_BOARD_ID")
        if not getattr(settings, name)
    ]
    if missing:
        return MirrorStatus(
            enabled=False,
            message=(
                f"Trello mirroring is off: {', '.join(missing)} not set. "
                "Tickets work as usual; they are not copied to Trello."
            ),
        )
    state = TrelloState.objects.filter(pk=1).first() or TrelloState()
    pending = TrelloOutbox.objects.filter(state=TrelloOutbox.State.PENDING)
    stats = pending.aggregate(oldest=Min("created_at"))
    if not settings.TRELLO_SECRET:
        webhook = "off: TRELLO_SECRET is not set, so changes made in Trello do not come back"
    elif state.webhook_id and state.webhook_callback_url == sync.callback_url():
        webhook = f"registered for {state.webhook_callback_url}"
    else:
        webhook = "not registered yet (the catch-up task registers it)"
    count = pending.count()
    message = (
        "Trello mirroring is on."
        if not count
        else f"Trello mirroring is on; {count} change(s) waiting to be carried to Trello."
    )
    return MirrorStatus(
        enabled=True,
        message=message,
        board_id=settings.TRELLO_BOARD_ID,
        webhook=webhook,
        last_success_at=state.last_success_at,
        last_error=state.last_error,
        last_error_at=state.last_error_at,
        last_webhook_at=state.last_webhook_at,
        pending=count,
        failed=TrelloOutbox.objects.filter(state=TrelloOutbox.State.FAILED).count(),
        oldest_pending_at=stats["oldest"],
    )
