"""Reads for conversations shared by the doors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Subquery

from bots.models import Bot
from chattonic.tenancy.selectors import staff_display_name
from contacts.models import ContactIdentity
from conversations import hooks
from conversations.models import ChannelKind, Conversation, Message

HISTORY_PAGE = 50


def _webchat_visitors(*, tenant_id: int, bot, visitor_id: str, sandbox: bool):
    """The web chat visitor's conversations with this bot. A visitor's conversations are
    those their session token opened (``recipient_id``), never those of whoever shares their
    contact. ``tenant_id`` is the tenant's id, or the outer query's (``webchat_opening``)."""
    return Conversation.objects.filter(
        tenant_id=tenant_id,
        channel__isnull=True,  # the (channel, recipient_id) index
        recipient_id=visitor_id,
        channel_kind=ChannelKind.WEBCHAT,
        bot=bot,
        is_sandbox=sandbox,
    )


def webchat_current(*, tenant_id: int, bot, visitor_id: str, sandbox: bool):
    """The web chat visitor's open conversations with this bot, newest first (the first is
    the current one)."""
    mine = _webchat_visitors(tenant_id=tenant_id, bot=bot, visitor_id=visitor_id, sandbox=sandbox)
    return mine.exclude(status=Conversation.Status.RESOLVED).order_by("-created_at")


@dataclass(frozen=True)
class WebchatOpening:
    """What a widget socket needs to open: the bot of its public key (None: no such bot), the
    visitor's current conversation with it (id and status; None: none open), when none is
    open the last one resolved (``earlier``: shown above the new one), and whether the visitor
    gave their details and consent before (``consented``: the pre-chat form is not asked
    again)."""

    bot: Bot | None
    conversation: int | None = None
    status: str | None = None
    earlier: int | None = None
    consented: bool = False


def webchat_opening(*, public_key: str, visitor_id: str | None, sandbox: bool) -> WebchatOpening:
    """What a widget socket needs to open, in one query (WebchatOpening). The caller checks
    that the visitor's token was signed for this bot."""
    bots = Bot.objects.filter(public_key=public_key).select_related("tenant")
    annotations = ("current_id", "current_status", "earlier_id", "consented")
    if visitor_id:
        mine = {
            "tenant_id": OuterRef("tenant_id"),
            "bot": OuterRef("pk"),
            "visitor_id": visitor_id,
            "sandbox": sandbox,
        }
        current = webchat_current(**mine)
        bots = bots.annotate(
            current_id=Subquery(current.values("pk")[:1]),
            current_status=Subquery(current.values("status")[:1]),
            earlier_id=Subquery(webchat_resolved(**mine).values("pk")[:1]),
            consented=Exists(
                ContactIdentity.objects.filter(
                    tenant_id=OuterRef("tenant_id"),
                    kind=ChannelKind.WEBCHAT,
                    channel__isnull=True,
                    external_id=visitor_id,
                    contact__attributes__consent=True,
                )
            ),
        )
    bot = next(iter(bots[:1]), None)
    if bot is None:
        return WebchatOpening(None)
    found = {name: bot.__dict__.pop(name, None) for name in annotations}
    return WebchatOpening(
        bot,
        conversation=found["current_id"],
        status=found["current_status"],
        earlier=found["earlier_id"] if found["current_id"] is None else None,
        consented=bool(found["consented"]),
    )


def webchat_resolved(*, tenant_id: int, bot, visitor_id: str, sandbox: bool):
    """The web chat visitor's resolved conversations with this bot, the last resolved first."""
    mine = _webchat_visitors(tenant_id=tenant_id, bot=bot, visitor_id=visitor_id, sandbox=sandbox)
    return mine.filter(status=Conversation.Status.RESOLVED).order_by("-resolved_at", "-created_at")


def conversation_history(
    *, conversation: Conversation, before: int | None = None, limit: int = HISTORY_PAGE
) -> list[Message]:
    """The newest ``limit`` messages (older than ``before``), oldest first."""
    messages = Message.objects.for_tenant(conversation.tenant_id).filter(conversation=conversation)
    if before is not None:
        messages = messages.filter(pk__lt=before)
    page = list(messages.select_related("agent").order_by("-created_at", "-id")[:limit])
    page.reverse()
    return page


@dataclass(frozen=True)
class TranscriptLine:
    """One message as the dashboard's transcript shows it: who wrote it, in words."""

    id: int
    sender: str  # Message.Sender: contact, bot, agent or system
    sender_name: str
    text: str
    kind: str  # Message.Kind's label when it is not plain text, else ""
    options: list[str]  # the titles of the quick replies offered with it
    media: str  # what the platform sent or we attached, as a short description
    created_at: datetime
    direction: str
    status: str  # the delivery status's label of a reply, "" for what came in
    error: str


def conversation_transcript(*, conversation: Conversation) -> list[TranscriptLine]:
    """Every message of the conversation, oldest first, each with its sender's name: the
    contact's (or "Visitor"), the bot's, the agent's (the name they chose, else their login:
    this is the staff side) or "System"; among them, at their times, the agents' private
    notes and the changes of hands (``hooks.staff_entries``: sender "note" or "handoff").
    Nothing internal (ids, payloads, tokens)."""
    messages = (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation)
        .select_related("agent")
        .order_by("created_at", "id")
    )
    visitor = _contact_name(conversation.contact)
    bot = conversation.bot.name
    lines = [_line(message, visitor, bot) for message in messages]
    lines += [
        TranscriptLine(
            id=0,
            sender=entry.kind,
            sender_name=entry.who,
            text=entry.text,
            kind="",
            options=[],
            media="",
            created_at=entry.created_at,
            direction="staff",
            status="",
            error="",
        )
        for entry in hooks.staff_entries(conversation=conversation)
    ]
    return sorted(lines, key=lambda line: line.created_at)  # stable: messages first on a tie


def _contact_name(contact) -> str:
    return contact.name or contact.email or contact.phone or "Visitor"


def _staff_name(user) -> str:
    if user is None:
        return "Agent"
    return staff_display_name(user)


def _line(message: Message, visitor: str, bot: str) -> TranscriptLine:
    names = {
        Message.Sender.CONTACT: visitor,
        Message.Sender.BOT: bot,
        Message.Sender.SYSTEM: "System",
    }
    sender_name = (
        _staff_name(message.agent)
        if message.sender == Message.Sender.AGENT
        else names.get(message.sender, message.get_sender_display())
    )
    data = message.data if isinstance(message.data, dict) else {}
    options = [
        str(option.get("title") or "")
        for option in data.get("quick_replies") or []
        if isinstance(option, dict) and option.get("title")
    ]
    media = data.get("media")
    outbound = message.direction == Message.Direction.OUT
    return TranscriptLine(
        id=message.pk,
        sender=message.sender,
        sender_name=sender_name,
        text=message.text,
        kind="" if message.kind == Message.Kind.TEXT else message.get_kind_display(),
        options=options,
        media=_media(media) if media else "",
        created_at=message.created_at,
        direction=message.direction,
        status=message.get_status_display() if outbound else "",
        error=message.error if outbound and message.status == Message.Status.FAILED else "",
    )


def _media(media) -> str:
    if not isinstance(media, dict):
        return "an attachment"
    kind = media.get("kind") or media.get("mime_type") or "file"
    return f"{kind}: {media['caption']}" if media.get("caption") else str(kind)
