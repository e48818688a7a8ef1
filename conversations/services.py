"""Writes for conversations other than their messages (conversations.receive): a web chat's
conversation opened, statuses, reads, the HTTP node's response, the sandbox's purge."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from bots.engine import Event
from bots.models import Bot
from chattonic.core.errors import Conflict, ValidationFailed
from contacts.models import Contact
from contacts.services import contact_fill_blanks
from conversations import hooks, realtime
from conversations.models import ChannelKind, Conversation, Message

# The one service that writes messages (conversations.receive), and what the other rooms
# call of it through here.
from conversations.receive import (  # noqa: F401 - agents' and bots' calls
    BOT_ERROR_REASON,
    MAX_TEXT,
    SANDBOX_CONTACT_NAME,
    Inbound,
    bot_turn,
    contact_for_identity,
    conversation_start,
    engine_step,
    message_deliver,
    outbound_message,
    reply_data,
    system_message,
    turn_event,
    webchat_conversation_current,
)

logger = logging.getLogger(__name__)


# --- Ratings ---------------------------------------------------------------------------------


@transaction.atomic
def conversation_rate(*, conversation: Conversation, score: int) -> Conversation:
    """The contact's 1-5 rating of a resolved conversation (a new rating replaces the old).
    The statistics of the resolution's day are brought up to date after the commit."""
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationFailed.for_field("score", "A whole number from 1 to 5.")
    conversation = Conversation.objects.select_for_update().get(
        pk=conversation.pk, tenant_id=conversation.tenant_id
    )
    if conversation.status != Conversation.Status.RESOLVED or conversation.resolved_at is None:
        raise Conflict("Only a resolved conversation can be rated.", code="not_resolved")
    if conversation.is_sandbox:
        return conversation
    conversation.csat = score
    conversation.save(update_fields=["csat"])
    day = conversation.resolved_at.astimezone(UTC).date()
    tenant_id = conversation.tenant_id
    if day < timezone.now().astimezone(UTC).date() - timedelta(days=1):
        # Older than what the statistics' periodic rebuild covers.
        transaction.on_commit(lambda: hooks.conversation_rated(tenant_id=tenant_id, day=day))
    return conversation


# --- Statuses and the HTTP node ---------------------------------------------------------------


STATUS_ORDER = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
}


@transaction.atomic
def message_status_update(
    *, message: Message, status: str, at: datetime | None = None, error: str = ""
) -> Message:
    """Move an outbound message's status forward (sent < delivered < read); never back.
    ``failed`` is final unless the message was already delivered or read."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    current = message.status
    if status == Message.Status.FAILED:
        if current in (Message.Status.DELIVERED, Message.Status.READ, Message.Status.FAILED):
            return message
    elif current == Message.Status.FAILED or STATUS_ORDER.get(status, -1) <= STATUS_ORDER.get(
        current, -1
    ):
        return message
    message.status = status
    message.status_at = at or timezone.now()
    message.error = error[:2000]
    message.save(update_fields=["status", "status_at", "error"])
    realtime.send_on_commit(
        realtime.conversation_group(message.conversation_id),
        {"type": "message.status", "id": message.pk, "status": status},
    )
    return message


@transaction.atomic
def bot_http_resume(
    *, conversation: Conversation, action_id: str, http: dict, request_id: int | None = None
) -> list[Message]:
    """Resume the flow with the outcome of its HTTP request, once per request; the engine
    ignores a response whose ``request_id`` is not the request it waits for."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.awaiting_action != action_id:
        return []
    realtime.send_on_commit(
        realtime.conversation_group(conversation.pk),
        {"type": "typing", "sender": "bot", "on": False},
    )
    if conversation.status != Conversation.Status.BOT:
        conversation.awaiting_action = ""
        conversation.save(update_fields=["awaiting_action"])
        return []
    event = Event(type="http_response", http=http, request_id=request_id)
    return bot_turn(conversation=conversation, event=event)


# --- The web chat -----------------------------------------------------------------------------


@transaction.atomic
def webchat_open(
    *,
    bot: Bot,
    visitor_id: str,
    sandbox: bool = False,
    fields: dict | None = None,
    language: str = "",
) -> tuple[Conversation, bool]:
    """The visitor's open conversation with the bot, or a new one started with the greeting.
    Returns it and whether it is new; every tab of the visitor hears of a new one."""
    contact = contact_for_identity(
        tenant=bot.tenant_id,
        kind=ChannelKind.WEBCHAT,
        external_id=visitor_id,
        name=SANDBOX_CONTACT_NAME if sandbox else "",
    )
    # One visitor, several tabs, one conversation: serialise on the contact.
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if fields:
        _apply_prechat(contact, fields)
    conversation = webchat_conversation_current(bot=bot, visitor_id=visitor_id, sandbox=sandbox)
    if conversation is not None:
        return conversation, False
    conversation = conversation_start(
        bot=bot,
        contact=contact,
        channel_kind=ChannelKind.WEBCHAT,
        recipient_id=visitor_id,
        sandbox=sandbox,
        language=language,
    )
    realtime.send_on_commit(
        realtime.visitor_group(visitor_id),
        {"type": "conversation.started", "conversation": conversation.pk},
    )
    return conversation, True


def _apply_prechat(contact: Contact, fields: dict) -> None:
    name = str(fields.get("name", "")).strip()[:200]
    email = str(fields.get("email", "")).strip().lower()[:254]
    if email:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        try:
            validate_email(email)
        except ValidationError:
            raise ValidationFailed.for_field("email", "Enter a valid email address.") from None
    contact_fill_blanks(contact, name=name, email=email)
    if "consent" in fields:
        contact.attributes = {**contact.attributes, "consent": bool(fields["consent"])}
        contact.updated_at = timezone.now()
        contact.save(update_fields=["attributes", "updated_at"])


@transaction.atomic
def messages_mark_read(*, conversation: Conversation, up_to_id: int, by_staff: bool = False) -> int:
    """Every message up to ``up_to_id`` was read: by the visitor, our outbound ones; by the
    staff (an agent has the conversation in view), the visitor's, whose widget then says
    "Read" under them. Each side hears it (``message.read``)."""
    if by_staff:
        direction, statuses = Message.Direction.IN, [Message.Status.RECEIVED]
    else:
        direction, statuses = Message.Direction.OUT, [Message.Status.SENT, Message.Status.DELIVERED]
    unread = Message.objects.for_tenant(conversation.tenant_id).filter(
        conversation=conversation, direction=direction, pk__lte=up_to_id, status__in=statuses
    )
    ids = list(unread.values_list("pk", flat=True))
    if not ids:
        return 0
    now = timezone.now()
    Message.objects.filter(pk__in=ids).update(status=Message.Status.READ, status_at=now)
    realtime.send_on_commit(
        realtime.conversation_group(conversation.pk),
        {"type": "message.read", "ids": ids},
    )
    return len(ids)


SANDBOX_RETENTION_DAYS = 7


def sandbox_purge(*, older_than_days: int = SANDBOX_RETENTION_DAYS) -> int:
    """Delete the dashboard's test conversations (and their contacts) after a week."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    stale = Conversation.objects.filter(is_sandbox=True, last_message_at__lt=cutoff)
    contact_ids = set(stale.values_list("contact_id", flat=True))
    deleted, _ = stale.delete()
    # Contacts who only ever talked to a sandbox go too.
    Contact.objects.filter(pk__in=contact_ids, conversations__isnull=True).delete()
    return deleted


def conversations_move_to_contact(*, tenant_id: int, source_id: int, target_id: int) -> None:
    """A merge of contacts (``contacts.hooks.contact_merging``): the merged contact's
    conversations are the other's now."""
    Conversation.objects.for_tenant(tenant_id).filter(contact_id=source_id).update(
        contact_id=target_id
    )
