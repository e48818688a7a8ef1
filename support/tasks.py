"""Support on the worker: carrying ticket changes to Trello, and the breach check."""

from __future__ import annotations

from celery import shared_task

from support import services
from support.trello import sync


@shared_task
def trello_outbox_drain(ticket_id: int) -> None:
    """Carry one ticket's pending changes to its Trello card (a gone ticket has none)."""
    sync.outbox_drain(ticket_id=ticket_id)


@shared_task
def trello_outbox_catch_up() -> None:
    """Carry every due change to Trello (after an outage or a back-off), and register the
    board's webhook if it is missing."""
    sync.outbox_catch_up()


@shared_task
def support_breaches_flag() -> None:
    """Flag tickets past their first-response due time and email the operators, once each."""
    services.sla_breaches_flag()
