"""What ``contacts`` asks of the apps above it, which register the answers in their
``AppConfig.ready()`` (the machinery is in ``chattonic/core/hooks.py``).

- ``contact_merging`` (conversations, leads): a merge, what they hold of the merged contact
  moves to the one it is merged into.

Called inside the merge's transaction: an exception rolls the merge back.
"""

from __future__ import annotations

from typing import Protocol

from chattonic.core.hooks import Event


class ContactMerging(Protocol):
    def __call__(self, *, tenant_id: int, source_id: int, target_id: int) -> None: ...


_contact_merging: Event[ContactMerging] = Event(
    "contacts.hooks.contact_merging", answered_by="conversations and leads"
)


def contact_merging_register(listener: ContactMerging) -> None:
    _contact_merging.register(listener)


def contact_merging(*, tenant_id: int, source_id: int, target_id: int) -> None:
    """Every listener moves its rows of contact ``source_id`` to ``target_id``."""
    for listener in _contact_merging.listeners:
        listener(tenant_id=tenant_id, source_id=source_id, target_id=target_id)
