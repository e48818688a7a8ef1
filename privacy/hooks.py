"""What ``privacy`` asks of the apps above it when a contact's data is exported or erased; they
register the answers in their ``AppConfig.ready()`` (the machinery is in
``chattonic/core/hooks.py``).

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

from chattonic.core.hooks import Event

if TYPE_CHECKING:
    from contacts.models import Contact


# --- Privacy: export and erase ----------------------------------------------------------------


class ContactExporting(Protocol):
    def __call__(
        self, *, tenant_id: int, conversation_ids: list[int]
    ) -> dict[int, dict[str, list[dict[str, Any]]]]: ...


_contact_exporting: Event[ContactExporting] = Event(
    "privacy.hooks.contact_exporting", answered_by="agents"
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
    "privacy.hooks.contact_erasing", answered_by="agents and support"
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
    "privacy.hooks.erasure_recorded", answered_by="backups"
)


def erasure_recorded_register(listener: ErasureRecorder) -> None:
    _erasure_recorded.register(listener)


def erasure_recorded(erasure: Erasure) -> None:
    """Before anything is deleted: the backups app writes the erase into its ledger (a copy
    taken before the erase must not bring the contact back when it is restored)."""
    for listener in _erasure_recorded.listeners:
        listener(erasure)
