"""Tickets: report, answer, move; the breach check; what Trello's webhook tells us.

Every change that Trello should see adds an outbox entry in the same transaction
(:func:`support.trello.sync.outbox_add`), carried after the commit by a Celery task.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from chattonic.core import notices
from chattonic.core.errors import Conflict, ValidationFailed
from chattonic.tenancy.models import Tenant
from privacy.hooks import ContactErasing
from privacy.services import ERASED
from support import targets
from support.models import Ticket, TicketComment, TrelloCard
from support.trello import sync
from support.trello.webhook import CardCommented, CardMoved

logger = logging.getLogger(__name__)

Status = Ticket.Status
Origin = TicketComment.Origin
MAX_TITLE = 200
MAX_TEXT = 20_000
# Statuses in which support has visibly answered the reporter.
ANSWERING_STATUSES = (Status.WAITING, Status.RESOLVED, Status.CLOSED)
INTERNAL_PREFIX = "[internal]"


def _clean_text(field: str, value: str, *, required: bool, limit: int) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed.for_field(field, "This field is required.")
    if len(text) > limit:
        raise ValidationFailed.for_field(field, f"At most {limit} characters.")
    return text


@transaction.atomic
def ticket_create(
    *,
    tenant: Tenant,
    title: str,
    description: str = "",
    severity: str = Ticket.Severity.NORMAL,
    source: str,
    reporter=None,
    reporter_name: str = "",
    reporter_email: str = "",
    bot=None,
    conversation=None,
    lead=None,
    now: datetime | None = None,
) -> Ticket:
    """Open a ticket with its first-response due time; queue its Trello card after commit."""
    title = _clean_text("title", title, required=True, limit=MAX_TITLE)
    description = _clean_text("description", description, required=False, limit=MAX_TEXT)
    if severity not in Ticket.Severity.values:
        raise ValidationFailed.for_field(
            "severity", f"Choose one of {', '.join(Ticket.Severity.values)}."
        )
    if source not in Ticket.Source.values:
        raise ValidationFailed.for_field("source", "Unknown source.")
    reporter_email = (reporter_email or "").strip()
    if reporter_email:
        try:
            validate_email(reporter_email)
        except ValidationError:
            raise ValidationFailed.for_field(
                "reporter_email", "Enter a valid email address."
            ) from None
    for field, obj in (("bot", bot), ("conversation", conversation), ("lead", lead)):
        if obj is not None and obj.tenant_id != tenant.pk:
            raise ValidationFailed.for_field(field, f"No such {field}.")
    if conversation is not None and conversation.is_sandbox:
        raise ValidationFailed.for_field(
            "conversation", "Sandbox conversations do not open tickets."
        )
    if reporter is not None:
        reporter_name = reporter_name or reporter.get_full_name() or reporter.get_username()
        reporter_email = reporter_email or reporter.email
    now = now or timezone.now()
    ticket = Ticket.objects.create(
        tenant=tenant,
        title=title,
        description=description,
        severity=severity,
        source=source,
        reporter=reporter,
        reporter_name=(reporter_name or "")[:200],
        reporter_email=reporter_email,
        bot=bot if bot is not None else getattr(conversation, "bot", None),
        conversation=conversation,
        lead=lead,
        created_at=now,
        updated_at=now,
        first_response_due_at=targets.first_response_due(created_at=now, severity=severity),
    )
    sync.outbox_add(ticket=ticket, kind=sync.Kind.CREATE_CARD)
    logger.info("ticket.created id=%s tenant=%s severity=%s", ticket.pk, tenant.pk, severity)
    return ticket


@transaction.atomic
def ticket_from_away_form(*, conversation, lead) -> Ticket | None:
    """A ticket from the contact details a visitor left when nobody could take the handoff
    (the away form's, or a flow's own questions'), with every field they left.

    Sandbox conversations never open tickets: this returns None for them, raising nothing.
    Leaving the details twice for one lead opens one ticket.
    """
    if conversation.is_sandbox:
        return None
    existing = Ticket.objects.for_tenant(conversation.tenant_id).filter(lead=lead).first()
    if existing is not None:
        return existing
    fields = {k: str(v).strip() for k, v in (lead.fields or {}).items() if str(v).strip()}
    who = fields.get("name") or fields.get("email") or fields.get("phone") or "a visitor"
    email = fields.get("email", "")
    try:
        validate_email(email)
    except ValidationError:
        email = ""
    details = "\n".join(
        f"{label}: {fields[key]}"
        for key, label in (("name", "Name"), ("email", "Email"), ("phone", "Phone"))
        if key in fields
    )
    description = (
        f"Left after hours, when nobody could take the conversation (#{conversation.pk}) "
        f"with the bot {conversation.bot}.\n\n{details}"
    )
    if fields.get("message"):
        description += f"\n\nMessage:\n{fields['message']}"
    # What else the visitor left (a flow's own questions: "problem", "order"), by its name.
    others = [k for k in fields if k not in ("name", "email", "phone", "message")]
    if others:
        description += "\n\n" + "\n".join(
            f"{key.replace('_', ' ').capitalize()}: {fields[key]}" for key in others
        )
    return ticket_create(
        tenant=conversation.tenant,
        title=f"After-hours request from {who}"[:MAX_TITLE],
        description=description[:MAX_TEXT],
        source=Ticket.Source.AWAY_FORM,
        reporter_name=fields.get("name", ""),
        reporter_email=email,
        bot=conversation.bot,
        conversation=conversation,
        lead=lead,
    )


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


@transaction.atomic
def ticket_comment_add(
    *,
    ticket: Ticket,
    body: str,
    origin: str,
    author=None,
    author_name: str = "",
    is_internal: bool = False,
    trello_action_id: str = "",
    now: datetime | None = None,
) -> TicketComment:
    """Add a comment; support's first public one answers the ticket; the reporter's reopens
    a resolved ticket or takes a waiting one back to support. Mirrored to Trello after commit."""
    body = _clean_text("body", body, required=True, limit=MAX_TEXT)
    if origin not in Origin.values:
        raise ValidationFailed.for_field("origin", "Unknown origin.")
    if origin == Origin.TENANT and is_internal:
        raise ValidationFailed.for_field("is_internal", "Only support writes internal comments.")
    ticket = _locked(ticket)
    if origin == Origin.TENANT and ticket.status == Status.CLOSED:
        raise Conflict("This ticket is closed: report a new problem instead.", code="ticket_closed")
    now = now or timezone.now()
    if author is not None and not author_name:
        author_name = author.get_full_name() or author.get_username()
    comment = TicketComment.objects.create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        author=author,
        author_name=(author_name or "")[:200],
        origin=origin,
        body=body,
        is_internal=is_internal,
        trello_action_id=trello_action_id,
        created_at=now,
    )
    changes = {"updated_at": now}
    if origin != Origin.TENANT and not is_internal and ticket.first_response_at is None:
        changes["first_response_at"] = now
    Ticket.objects.filter(pk=ticket.pk).update(**changes)
    if origin != Origin.TRELLO:
        sync.outbox_add(ticket=ticket, kind=sync.Kind.ADD_COMMENT, comment=comment)
    if origin == Origin.TENANT and ticket.status in (Status.WAITING, Status.RESOLVED):
        back_to = Status.IN_PROGRESS if ticket.status == Status.WAITING else Status.OPEN
        _status_set(ticket=ticket, status=back_to, answers=False, mirror=True, now=now)
    return comment


# Where the reporter may take a ticket: close it (no more help needed). Support may move
# a ticket to any other status; the reporter's comments reopen (see ticket_comment_add).
TENANT_TRANSITIONS = {
    Status.OPEN: {Status.CLOSED},
    Status.IN_PROGRESS: {Status.CLOSED},
    Status.WAITING: {Status.CLOSED},
    Status.RESOLVED: {Status.CLOSED},
    Status.CLOSED: set(),
}


@transaction.atomic
def ticket_status_change(
    *,
    ticket: Ticket,
    status: str,
    by_support: bool,
    from_trello: bool = False,
    now: datetime | None = None,
) -> Ticket:
    """Move a ticket to ``status``; support's move to waiting, resolved or closed answers it.
    The card follows after commit, unless the move came from Trello."""
    if status not in Status.values:
        raise ValidationFailed.for_field("status", f"Choose one of {', '.join(Status.values)}.")
    ticket = _locked(ticket)
    if ticket.status == status:
        return ticket
    allowed = set(Status.values) if by_support else TENANT_TRANSITIONS[Status(ticket.status)]
    if status not in allowed:
        raise ValidationFailed.for_field(
            "status",
            f"A ticket that is {ticket.get_status_display().lower()} cannot become "
            f"{Status(status).label.lower()} here.",
        )
    return _status_set(
        ticket=ticket, status=status, answers=by_support, mirror=not from_trello, now=now
    )


def _status_set(
    *, ticket: Ticket, status: str, answers: bool, mirror: bool, now: datetime | None
) -> Ticket:
    """Set the status of a locked ticket, its timestamps, and queue the card's move."""
    now = now or timezone.now()
    previous = ticket.status
    ticket.status = status
    ticket.updated_at = now
    ticket.status_changed_at = now
    if status == Status.RESOLVED:
        ticket.resolved_at = now
    elif status == Status.CLOSED:
        ticket.closed_at = now
    else:
        ticket.resolved_at = ticket.closed_at = None
    if answers and status in ANSWERING_STATUSES and ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.save(
        update_fields=[
            "status",
            "updated_at",
            "status_changed_at",
            "resolved_at",
            "closed_at",
            "first_response_at",
        ]
    )
    if mirror:
        sync.outbox_add(ticket=ticket, kind=sync.Kind.MOVE_CARD)
    logger.info("ticket.status id=%s %s -> %s", ticket.pk, previous, status)
    return ticket


@transaction.atomic
def ticket_severity_change(*, ticket: Ticket, severity: str) -> Ticket:
    """Support re-rates a ticket: its first-response due time is counted again from its report."""
    if severity not in Ticket.Severity.values:
        raise ValidationFailed.for_field(
            "severity", f"Choose one of {', '.join(Ticket.Severity.values)}."
        )
    ticket = _locked(ticket)
    if ticket.severity == severity:
        return ticket
    ticket.severity = severity
    ticket.first_response_due_at = targets.first_response_due(
        created_at=ticket.created_at, severity=severity
    )
    if (
        ticket.first_response_at is None
        and ticket.breach_flagged_at
        and (ticket.first_response_due_at > timezone.now())
    ):
        ticket.breach_flagged_at = None
    ticket.updated_at = timezone.now()
    ticket.save(
        update_fields=["severity", "first_response_due_at", "breach_flagged_at", "updated_at"]
    )
    return ticket


def sla_breaches_flag(*, now: datetime | None = None) -> list[int]:
    """Flag, once each, the tickets past their first-response due time without an answer;
    tell the operators through the notices outbox (retried until the mail is sent) and in
    the log. The flags and the notice are written together."""
    now = now or timezone.now()
    candidates = (
        Ticket.objects.filter(
            first_response_at__isnull=True,
            breach_flagged_at__isnull=True,
            first_response_due_at__lt=now,
        )
        .exclude(status=Ticket.Status.CLOSED)  # its reporter closed it: nothing is due
        .order_by("first_response_due_at")
    )
    flagged: list[Ticket] = []
    with transaction.atomic():
        for ticket in candidates.select_related("tenant")[:500]:
            # The conditional update makes a concurrent run flag (and tell) each ticket once.
            won = Ticket.objects.filter(pk=ticket.pk, breach_flagged_at__isnull=True).update(
                breach_flagged_at=now
            )
            if won:
                flagged.append(ticket)
                logger.warning(
                    "ticket.breached id=%s tenant=%s severity=%s due=%s",
                    ticket.pk,
                    ticket.tenant_id,
                    ticket.severity,
                    ticket.first_response_due_at.isoformat(),
                )
        if flagged:
            lines = [
                f"#{t.pk} [{t.get_severity_display()}] {t.title} — {t.tenant} — "
                f"due {targets.format_local(t.first_response_due_at)}\n"
                f"    {sync.ticket_link(t)}"
                for t in flagged
            ]
            notices.notice_queue(
                key=f"ticket.breach:{now.isoformat()}:{','.join(str(t.pk) for t in flagged)}",
                subject=f"{len(flagged)} support ticket(s) breached the first-response target",
                body="These tickets have no first answer and are past their due time:\n\n"
                + "\n".join(lines),
            )
    return [t.pk for t in flagged]


# --- What Trello's webhook tells us -----------------------------------------------------------


@transaction.atomic
def trello_action_apply(*, action: CardMoved | CardCommented) -> str:
    """Apply a verified Trello action to its ticket: a move changes the status, a comment
    becomes a ticket comment. Our own changes coming back, redeliveries and cards we do not
    know change nothing. Returns what happened, in a word."""
    card = TrelloCard.objects.select_related("ticket").filter(card_id=action.card_id).first()
    if card is None:
        return "unknown_card"
    ticket = card.ticket
    if isinstance(action, CardMoved):
        # The card's row, locked: deliveries of one card are applied one at a time.
        card = TrelloCard.objects.select_for_update().select_related("ticket").get(pk=card.pk)
        ticket = card.ticket
        if card.last_move_action_id == action.action_id:
            return "duplicate"
        TrelloCard.objects.filter(pk=card.pk).update(last_move_action_id=action.action_id)
        if sync.move_echo_consume(card=card, list_id=action.list_after_id):
            return "echo"
        changed_at = ticket.status_changed_at
        if action.date is not None and changed_at is not None and action.date <= changed_at:
            return "stale"  # an older move delivered late or again: the later change stands
        status = sync.status_for_list(
            list_id=action.list_after_id, list_name=action.list_after_name
        )
        TrelloCard.objects.filter(pk=card.pk).update(list_id=action.list_after_id)
        if status is None:
            return "unmapped_list"
        if ticket.status == status:
            return "unchanged"
        ticket_status_change(
            ticket=ticket, status=status, by_support=True, from_trello=True, now=action.date
        )
        return "status"
    known = (
        TicketComment.objects.for_tenant(ticket.tenant_id)
        .filter(trello_action_id=action.action_id)
        .first()
    )
    if known is not None:
        return "duplicate" if known.origin == Origin.TRELLO else "echo"
    if sync.is_comment_echo(ticket=ticket, text=action.text):
        return "echo"
    text = action.text.strip()
    internal = text.lower().startswith(INTERNAL_PREFIX)
    if internal:
        text = text[len(INTERNAL_PREFIX) :].strip()
    try:
        with transaction.atomic():
            ticket_comment_add(
                ticket=ticket,
                body=text,
                origin=Origin.TRELLO,
                author_name=action.author_name,
                is_internal=internal,
                trello_action_id=action.action_id,
            )
    except IntegrityError:
        return "duplicate"  # the same delivery, handled concurrently
    except ValidationFailed:
        return "ignored"  # an empty comment, say
    return "comment"


# --- Privacy ----------------------------------------------------------------------------------


def tickets_scrub_erased(*, erasing: ContactErasing) -> None:
    """An erase (``privacy.hooks.contact_erasing``): tickets opened from the erased
    contacts' conversations or leads, or reported from their email, lose their title, text and
    reporter, and their comments lose every quote of the contacts' names, emails and phones."""
    tenant_id = erasing.tenant_id
    contacts = erasing.contacts
    needles = sorted(
        {v for c in contacts for v in (c.email, c.phone, c.name) if v and len(v) >= 3}, key=len
    )
    tickets = Ticket.objects.for_tenant(tenant_id).filter(
        Q(conversation_id__in=erasing.conversation_ids)
        | Q(lead_id__in=erasing.lead_ids)
        | Q(reporter_email__in=[c.email for c in contacts if c.email])
    )
    ticket_ids = list(tickets.values_list("pk", flat=True))
    tickets.update(title=f"Request from an {ERASED} contact", description=ERASED)
    Ticket.objects.filter(pk__in=ticket_ids).update(reporter_name="", reporter_email="")
    for comment in TicketComment.objects.for_tenant(tenant_id).filter(ticket_id__in=ticket_ids):
        body = comment.body
        for needle in reversed(needles):  # the longest first: a name inside an email stays whole
            body = re.sub(re.escape(needle), ERASED, body, flags=re.IGNORECASE)
        if body != comment.body:
            TicketComment.objects.filter(pk=comment.pk).update(body=body)
