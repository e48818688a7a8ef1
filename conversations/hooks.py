"""What ``conversations`` asks of the apps above it, which register the answers in their
``AppConfig.ready()`` (conversations imports none of them; the machinery and its rules are in
``chattonic/core/hooks.py``, the map of the apps in docs/architecture.md).

- ``hand_off`` (agents): the flow, the visitor or a failing bot asks for a person.
- ``away_contact_leave`` (agents): the widget's away form, the visitor's details while
  nobody can answer.
- ``lead_capture`` (leads): the flow's capture node, a lead from the conversation's fields.
- ``message_send_enqueue`` (messaging): an outbound message to a platform, to be sent after
  the commit.
- ``callback_answer`` (messaging): a tapped Telegram button, answered after the commit.
- ``numbered_reply_resolve`` (messaging): "2" typed on SMS, the second quick reply offered.
- ``conversation_rated`` (stats): a rating of a conversation resolved on an older day.
- ``staff_entries`` (agents): a conversation's private notes and changes of hands, for the
  dashboard's transcript.

Each is called inside the caller's transaction: an exception rolls the whole verb back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from chattonic.core.hooks import Event, Slot

if TYPE_CHECKING:
    from conversations.models import Conversation
    from leads.models import Lead


# --- Handoff ----------------------------------------------------------------------------------


class HandOff(Protocol):
    def __call__(
        self,
        *,
        conversation: Conversation,
        reason: str,
        team: str | None = None,
        actor=None,
        text: str = "",
        own_text: bool = False,
    ) -> Conversation: ...


_hand_off: Slot[HandOff] = Slot("conversations.hooks.hand_off", answered_by="agents")


def hand_off_register(answer: HandOff) -> None:
    _hand_off.register(answer)


def hand_off(
    *,
    conversation: Conversation,
    reason: str,
    team: str | None = None,
    actor=None,
    text: str = "",
    own_text: bool = False,
) -> Conversation:
    """Queue the conversation for a person (``team``: a team's name, "" or None for any).
    Changes ``conversation`` in place. ``text`` (the handoff's text) is said to the visitor
    when a person can take it; when nobody can, the away message is said instead, unless
    the text is the flow's own (``own_text``) and the visitor left their details in the
    conversation already (the flow took them itself)."""
    return _hand_off.answer(
        conversation=conversation,
        reason=reason,
        team=team,
        actor=actor,
        text=text,
        own_text=own_text,
    )


class AwayContactLeave(Protocol):
    def __call__(self, *, conversation: Conversation, fields: dict) -> Lead: ...


_away_contact_leave: Slot[AwayContactLeave] = Slot(
    "conversations.hooks.away_contact_leave", answered_by="agents"
)


def away_contact_leave_register(answer: AwayContactLeave) -> None:
    _away_contact_leave.register(answer)


def away_contact_leave(*, conversation: Conversation, fields: dict) -> Lead:
    """The visitor's details, left while nobody could answer: a lead (and, where the bot
    says so, a ticket). Raises a ServiceError when the away form is not on offer."""
    return _away_contact_leave.answer(conversation=conversation, fields=fields)


# --- The staff's side of a transcript ---------------------------------------------------------


@dataclass(frozen=True)
class StaffEntry:
    """A line of a conversation's staff-side history that is not a message: an agent's
    private note, or a change of hands (queued, claimed, transferred, resolved...)."""

    kind: str  # "note" or "handoff"
    who: str  # the note's author, or who moved it ("" for the platform)
    text: str
    created_at: datetime


class StaffEntries(Protocol):
    def __call__(self, *, conversation: Conversation) -> list[StaffEntry]: ...


_staff_entries: Slot[StaffEntries] = Slot("conversations.hooks.staff_entries", answered_by="agents")


def staff_entries_register(answer: StaffEntries) -> None:
    _staff_entries.register(answer)


def staff_entries(*, conversation: Conversation) -> list[StaffEntry]:
    """The conversation's notes and changes of hands, oldest first (the dashboard's
    transcript shows them among the messages; never the visitor)."""
    return _staff_entries.answer(conversation=conversation)


# --- Leads -----------------------------------------------------------------------------------


class LeadCapture(Protocol):
    def __call__(self, *, conversation: Conversation, fields: dict) -> Lead | None: ...


_lead_capture: Slot[LeadCapture] = Slot("conversations.hooks.lead_capture", answered_by="leads")


def lead_capture_register(answer: LeadCapture) -> None:
    _lead_capture.register(answer)


def lead_capture(*, conversation: Conversation, fields: dict) -> Lead | None:
    """A lead from the flow's capture node: the conversation's fields (none for a sandbox
    conversation), in the caller's transaction."""
    return _lead_capture.answer(conversation=conversation, fields=fields)


# --- Messaging: what the platforms need -------------------------------------------------------


class MessageSendEnqueue(Protocol):
    def __call__(self, message_id: int) -> None: ...


_message_send_enqueue: Slot[MessageSendEnqueue] = Slot(
    "conversations.hooks.message_send_enqueue", answered_by="messaging"
)


def message_send_enqueue_register(answer: MessageSendEnqueue) -> None:
    _message_send_enqueue.register(answer)


def message_send_enqueue(message_id: int) -> None:
    """Queue the outbound message's send to its platform (called after the commit)."""
    _message_send_enqueue.answer(message_id)


class CallbackAnswer(Protocol):
    def __call__(self, *, channel_id: int, query_id: str) -> None: ...


_callback_answer: Slot[CallbackAnswer] = Slot(
    "conversations.hooks.callback_answer", answered_by="messaging"
)


def callback_answer_register(answer: CallbackAnswer) -> None:
    _callback_answer.register(answer)


def callback_answer(*, channel_id: int, query_id: str) -> None:
    """Answer a tapped inline button's callback query (Telegram shows a spinner until then);
    called after the commit."""
    _callback_answer.answer(channel_id=channel_id, query_id=query_id)


class NumberedReplyResolve(Protocol):
    def __call__(self, text: str, quick_replies: list[dict]) -> dict | None: ...


_numbered_reply_resolve: Slot[NumberedReplyResolve] = Slot(
    "conversations.hooks.numbered_reply_resolve", answered_by="messaging"
)


def numbered_reply_resolve_register(answer: NumberedReplyResolve) -> None:
    _numbered_reply_resolve.register(answer)


def numbered_reply_resolve(text: str, quick_replies: list[dict]) -> dict | None:
    """The quick reply a number typed on SMS chooses ("2": the second one offered), or None."""
    return _numbered_reply_resolve.answer(text, quick_replies)


# --- Statistics -------------------------------------------------------------------------------


class ConversationRated(Protocol):
    def __call__(self, *, tenant_id: int, day: date) -> None: ...


_conversation_rated: Event[ConversationRated] = Event(
    "conversations.hooks.conversation_rated", answered_by="stats"
)


def conversation_rated_register(listener: ConversationRated) -> None:
    _conversation_rated.register(listener)


def conversation_rated(*, tenant_id: int, day: date) -> None:
    """A conversation resolved on ``day`` (UTC), older than what the periodic rebuild covers,
    was rated: its day's statistics are brought up to date (after the commit)."""
    for listener in _conversation_rated.listeners:
        listener(tenant_id=tenant_id, day=day)
