"""What ``conversations`` asks of the apps above it, which register the answers in their
``AppConfig.ready()`` (conversations imports none of them; the machinery and its rules are in
``chattonic/core/hooks.py``, the map of the apps in docs/architecture.md).

- ``hand_off`` (agents): the flow, the visitor or a failing bot asks for a person.
- ``away_contact_leave`` (agents): the widget's away form, the visitor's details while
  nobody can answer.
- ``contact_exporting`` (agents): a contact's export, what else is held about its
  conversations (notes, handoff history).
- ``contact_erasing`` (agents, support): an erase, what else is held about the contacts
  (notes, handoff history, tickets' text).
- ``erasure_recorded`` (backups): an erase, before anything is deleted (the erasure ledger).

Each is called inside the caller's transaction: an exception rolls the whole verb back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chattonic.core.hooks import Event, Slot

if TYPE_CHECKING:
    from conversations.models import Contact, Conversation, Lead


# --- Handoff ----------------------------------------------------------------------------------


class HandOff(Protocol):
    def __call__(
        self, *, conversation: Conversation, reason: str, team: str | None = None, actor=None
    ) -> Conversation: ...


_hand_off: Slot[HandOff] = Slot("conversations.hooks.hand_off", answered_by="agents")


def hand_off_register(answer: HandOff) -> None:
    _hand_off.register(answer)


def hand_off(
    *, conversation: Conversation, reason: str, team: str | None = None, actor=None
) -> Conversation:
    """Queue the conversation for a person (``team``: a team's name, "" or None for any).
    Changes ``conversation`` in place; the visitor gets the away message when nobody can
    answer."""
    return _hand_off.answer(conversation=conversation, reason=reason, team=team, actor=actor)


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


# --- Privacy: export and erase ----------------------------------------------------------------


class ContactExporting(Protocol):
    def __call__(
        self, *, tenant_id: int, conversation_ids: list[int]
    ) -> dict[int, dict[str, list[dict[str, Any]]]]: ...


_contact_exporting: Event[ContactExporting] = Event(
    "conversations.hooks.contact_exporting", answered_by="agents"
)


def contact_exporting_register(listener: ContactExporting) -> None:
    _contact_exporting.register(listener)


def contact_exporting(
    *, tenant_id: int, conversation_ids: list[int]
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """What the listeners hold about these conversations, as named lists per conversation
    id (``{conversation_id: {"notes": [...], "handoffs": [...]}}``), JSON-ready."""
    sections: dict[int, dict[str, list[dict[str, Any]]]] = {pk: {} for pk in conversation_ids}
    for listener in _contact_exporting.listeners:
        for pk, named in listener(tenant_id=tenant_id, conversation_ids=conversation_ids).items():
            sections[pk].update(named)
    return sections


@dataclass(frozen=True)
class ContactErasing:
    """An erase about to happen: the contacts (the erased one and those merged into it, with
    their details, so that listeners can scrub text that quotes them), their conversations
    and their leads. Everything listed here is deleted after the listeners return."""

    tenant_id: int
    contacts: list[Contact]
    conversation_ids: list[int]
    lead_ids: list[int]


class ContactErasingListener(Protocol):
    def __call__(self, *, erasing: ContactErasing) -> None: ...


_contact_erasing: Event[ContactErasingListener] = Event(
    "conversations.hooks.contact_erasing", answered_by="agents and support"
)


def contact_erasing_register(listener: ContactErasingListener) -> None:
    _contact_erasing.register(listener)


def contact_erasing(*, erasing: ContactErasing) -> None:
    """Every listener deletes or scrubs what it holds about the erased contacts."""
    for listener in _contact_erasing.listeners:
        listener(erasing=erasing)


@dataclass(frozen=True)
class Erasure:
    """What an erase removed, without anything personal: the tenant, and each contact's id
    with its creation time (together they name the contact in an older copy of the
    database, and nothing that a later contact could share)."""

    tenant_id: int
    contacts: list[tuple[int, datetime]]
    erased_at: datetime


class ErasureRecorder(Protocol):
    def __call__(self, erasure: Erasure) -> None: ...


_erasure_recorded: Event[ErasureRecorder] = Event(
    "conversations.hooks.erasure_recorded", answered_by="backups"
)


def erasure_recorded_register(listener: ErasureRecorder) -> None:
    _erasure_recorded.register(listener)


def erasure_recorded(erasure: Erasure) -> None:
    """Before anything is deleted: the backups app writes the erase into its ledger (a copy
    taken before the erase must not bring the contact back when it is restored)."""
    for listener in _erasure_recorded.listeners:
        listener(erasure)
