"""The Trello mirror: the outbox that carries ticket changes to the board, in order, once.

- ``outbox_add`` (inside a ticket service's transaction) records a change and queues
  :func:`support.tasks.trello_outbox_drain` for after the commit.
- ``outbox_drain`` carries one ticket's pending entries in order, each claimed by one worker
  at a time; a failure holds back that ticket's later entries and waits its back-off.
- ``outbox_catch_up`` (periodic) drains every ticket with due entries: after an outage,
  everything that piled up goes out, in order, and nothing twice.

A card is never created twice for a ticket: the mapping (``TrelloCard``) is unique per
ticket, an entry that finds it does nothing, and an entry whose earlier attempt may have
reached Trello (a time-out, a dropped connection, a 5xx, a crashed worker) first looks for
its card on the board by the link back in the card's description. A worker renews its
lease on the entry before every request to Trello, so a slow Trello never lets a second
worker claim an entry that the first is still carrying; a worker that finds its lease taken
stops without sending anything more.

Each card carries the tenant's developer and project coordinator as members (Trello alerts
members of every change to a card); a change of status and a tenant's comment mention them.
"""

from __future__ import annotations

import functools
import logging
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Min, Q
from django.urls import reverse
from django.utils import timezone

from chattonic.core.public_urls import absolute_url
from support.models import Ticket, TicketComment, TrelloCard, TrelloOutbox, TrelloState
from support.trello.client import TrelloClient, TrelloConfig, TrelloError

logger = logging.getLogger(__name__)

Kind = TrelloOutbox.Kind
State = TrelloOutbox.State
LEASE = timedelta(seconds=90)
# Back-off after a 429 (Trello sends no Retry-After): a full window first, then doubling.
RATE_BACKOFF_BASE, RATE_BACKOFF_CAP = 10.0, 600.0
# Back-off after an outage (time-outs, 5xx, refused connections, refused credentials).
OUTAGE_BACKOFF_BASE, OUTAGE_BACKOFF_CAP = 15.0, 900.0
WEBHOOK_RETRY = timedelta(hours=1)
ECHO_WINDOW = timedelta(minutes=10)
KEEP_DONE = timedelta(days=30)
CATCH_UP_BATCH = 500
INTERNAL_PREFIX = "[internal]"


def enabled() -> bool:
    return TrelloConfig.from_settings() is not None


def callback_url() -> str:
    """The webhook's callback URL: what Trello signs along with each body."""
    return absolute_url(reverse("trello-webhook"))


def ticket_admin_path(ticket: Ticket) -> str:
    return reverse("admin:support_ticket_change", args=[ticket.pk])


def ticket_link(ticket: Ticket) -> str:
    return absolute_url(ticket_admin_path(ticket))


def card_marker(ticket: Ticket) -> str:
    """The line in the card's description that links back and identifies the ticket."""
    return f"Chat-Tonic ticket: {ticket_link(ticket)}"


def status_list_name(status: str) -> str:
    return settings.TRELLO_LISTS.get(status) or Ticket.Status(status).label


def status_for_list(*, list_id: str, list_name: str = "") -> str | None:
    """The ticket status a board list stands for (by its id, else by its name)."""
    lists = _state().lists
    by_id = {list_id_: name for name, list_id_ in lists.items()}
    name = by_id.get(list_id) or list_name
    for status in Ticket.Status.values:
        wanted = status_list_name(status)
        if wanted == list_id or wanted.casefold() == (name or "").casefold():
            return status
    return None


def ticket_member_ids(ticket: Ticket) -> list[str]:
    """The Trello members of the ticket's card: the tenant's developer and coordinator (the
    deployment's defaults where the tenant has none)."""
    tenant = ticket.tenant
    ids = [
        tenant.trello_developer_id or settings.TRELLO_DEVELOPER_ID,
        tenant.trello_coordinator_id or settings.TRELLO_COORDINATOR_ID,
    ]
    return list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))


def comment_text(comment: TicketComment, *, mentions: str = "") -> str:
    """How one of our comments reads on the card (a tenant's starts with the mentions)."""
    who = comment.author_name or "Someone"
    where = "support" if comment.origin == TicketComment.Origin.SUPPORT else comment.tenant.name
    text = f"{who} ({where}) wrote:\n\n{comment.body}"
    if comment.is_internal:
        return f"{INTERNAL_PREFIX} {text}"
    return f"{mentions} {text}" if mentions else text


def status_note_text(status: str, *, mentions: str) -> str:
    return f"{mentions} Chat-Tonic: the ticket is now {Ticket.Status(status).label.lower()}."


_MENTIONS = re.compile(r"^(?:@[A-Za-z0-9_]+ )+")
_STATUS_NOTE = re.compile(r"^Chat-Tonic: the ticket is now [a-z ]+\.$")


def _without_mentions(text: str) -> str:
    return _MENTIONS.sub("", text, count=1)


def is_comment_echo(*, ticket: Ticket, text: str) -> bool:
    """Whether a card comment is one of ours coming back (before its action id was stored):
    a ticket comment of ours, or a status note."""
    bare = _without_mentions(text)
    if text != bare and _STATUS_NOTE.match(bare):
        return True
    ours = (
        TicketComment.objects.for_tenant(ticket.tenant_id)
        .filter(ticket=ticket)
        .exclude(origin=TicketComment.Origin.TRELLO)
    )
    return any(comment_text(c) == bare for c in ours.select_related("tenant"))


def move_echo_consume(*, card: TrelloCard, list_id: str) -> bool:
    """Whether a card move is one of ours coming back; each of our moves is recognised once."""
    echo = (
        TrelloOutbox.objects.for_tenant(card.tenant_id)
        .filter(ticket_id=card.ticket_id, kind=Kind.MOVE_CARD, target_list_id=list_id)
        .filter(echo_seen=False)
        # Trello reports within seconds; an old move's echo that never came is not waited for.
        .filter(Q(state=State.PENDING) | Q(done_at__gte=timezone.now() - ECHO_WINDOW))
        .order_by("id")
        .first()
    )
    if echo is None:
        return False
    return bool(TrelloOutbox.objects.filter(pk=echo.pk, echo_seen=False).update(echo_seen=True))


# --- Recording changes ------------------------------------------------------------------------


def outbox_add(*, ticket: Ticket, kind: str, comment: TicketComment | None = None) -> None:
    """Record a change for Trello (inside the caller's transaction); carry it after commit.
    Does nothing while mirroring is off."""
    if not enabled():
        return
    if kind != Kind.CREATE_CARD:
        # A ticket from before mirroring was on gets its card first.
        outbox_add(ticket=ticket, kind=Kind.CREATE_CARD)
    if kind == Kind.CREATE_CARD:
        exists = TrelloOutbox.objects.for_tenant(ticket.tenant_id).filter(
            ticket=ticket, kind=Kind.CREATE_CARD
        )
        if exists.exists():
            return
    TrelloOutbox.objects.create(
        tenant_id=ticket.tenant_id, ticket=ticket, kind=kind, comment=comment
    )
    if kind == Kind.MOVE_CARD and ticket_member_ids(ticket):
        TrelloOutbox.objects.create(
            tenant_id=ticket.tenant_id, ticket=ticket, kind=Kind.STATUS_NOTE, status=ticket.status
        )
    ticket_id = ticket.pk

    def queue():
        from support.tasks import trello_outbox_drain

        trello_outbox_drain.delay(ticket_id)

    # Robust: with the broker down, the entry still waits in the outbox for the catch-up.
    transaction.on_commit(queue, robust=True)


# --- Carrying them ----------------------------------------------------------------------------


class LeaseLost(Exception):
    """Another worker holds the entry now (this one was too slow): stop, send nothing."""


@dataclass
class DrainResult:
    done: int = 0
    stopped: str = ""  # "", "waiting", "busy", "failed", "retry" (Trello down or rate-limited)


def outbox_drain(
    *, ticket_id: int, now: datetime | None = None, client: TrelloClient | None = None
) -> DrainResult:
    """Carry a ticket's pending entries to Trello, in order, until one fails or waits."""
    result = DrainResult()
    config = TrelloConfig.from_settings()
    if config is None:
        return result
    client = client or TrelloClient(config)
    while True:
        moment = now or timezone.now()
        entry = (
            TrelloOutbox.objects.filter(ticket_id=ticket_id, state=State.PENDING)
            .order_by("id")
            .first()
        )
        if entry is None:
            return result
        if entry.next_attempt_at > moment:
            result.stopped = "waiting"
            return result
        token = _claim(entry, moment)
        if token is None:
            result.stopped = "busy"
            return result
        entry.refresh_from_db()
        client.before_request = functools.partial(_renew, entry, token, moment)
        try:
            _carry(entry, client)
        except LeaseLost:
            logger.warning("trello.outbox entry=%s: lease taken by another worker", entry.pk)
            result.stopped = "busy"
            return result
        except TrelloError as exc:
            _record_failure(entry, exc, moment, client)
            result.stopped = "retry" if exc.retryable else "failed"
            if exc.retryable:
                return result
            continue  # a permanent failure does not hold the ticket's later entries
        except Exception as exc:
            logger.exception("trello.outbox entry=%s crashed", entry.pk)
            error = TrelloError(client.redact(f"Internal error: {exc!r}"), retryable=True)
            _record_failure(entry, error, moment, client)
            result.stopped = "retry"
            return result
        finally:
            client.before_request = None
        TrelloOutbox.objects.filter(pk=entry.pk, attempts=token).update(
            state=State.DONE, done_at=timezone.now(), locked_until=None, last_error=""
        )
        _state_update(last_success_at=timezone.now())
        result.done += 1


def outbox_catch_up(*, now: datetime | None = None) -> dict:
    """Drain every ticket with due entries (oldest first); stop at the first sign that
    Trello is down or rate-limiting, to try again at the next run."""
    summary = {"done": 0, "tickets": 0, "stopped": ""}
    config = TrelloConfig.from_settings()
    if config is None:
        return summary
    client = TrelloClient(config)
    moment = now or timezone.now()
    webhook_ensure(client=client, now=moment)
    old_done = TrelloOutbox.objects.filter(state=State.DONE, done_at__lt=moment - KEEP_DONE)
    TrelloOutbox.objects.filter(pk__in=list(old_done.values_list("pk", flat=True)[:1000])).delete()
    ticket_ids = (
        TrelloOutbox.objects.filter(state=State.PENDING, next_attempt_at__lte=moment)
        .values("ticket_id")
        .annotate(first=Min("id"))
        .order_by("first")
        .values_list("ticket_id", flat=True)[:CATCH_UP_BATCH]
    )
    for ticket_id in list(ticket_ids):
        result = outbox_drain(ticket_id=ticket_id, now=now, client=client)
        summary["done"] += result.done
        summary["tickets"] += 1
        if result.stopped == "retry":
            summary["stopped"] = "retry"
            break
    return summary


def _claim(entry: TrelloOutbox, now: datetime) -> int | None:
    """Take the entry for this worker (a lease), counting the attempt; the attempt's number
    (the lease's token), or None if another worker holds it."""
    claimed = (
        TrelloOutbox.objects.filter(pk=entry.pk, state=State.PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + LEASE, attempts=F("attempts") + 1)
    )
    if claimed != 1:
        return None
    return TrelloOutbox.objects.values_list("attempts", flat=True).get(pk=entry.pk)


def _renew(entry: TrelloOutbox, token: int, moment: datetime) -> None:
    """Extend this worker's lease before a request to Trello; LeaseLost if another worker
    claimed the entry meanwhile (its attempt count moved on)."""
    until = max(timezone.now(), moment) + LEASE
    renewed = TrelloOutbox.objects.filter(pk=entry.pk, state=State.PENDING, attempts=token).update(
        locked_until=until
    )
    if renewed != 1:
        raise LeaseLost


def _carry(entry: TrelloOutbox, client: TrelloClient) -> None:
    ticket = Ticket.objects.select_related("tenant").get(pk=entry.ticket_id)
    if entry.kind == Kind.CREATE_CARD:
        _create_card(entry, ticket, client)
        return
    card = TrelloCard.objects.filter(ticket=ticket).first()
    if card is None:
        raise TrelloError("The ticket has no card (its creation failed).")
    _card_members_ensure(card, ticket, client)
    if entry.kind == Kind.STATUS_NOTE:
        if entry.trello_action_id:
            return
        mentions = _mentions(client, card.member_ids)
        if not mentions:
            return
        action = client.add_comment(
            card.card_id, text=status_note_text(entry.status or ticket.status, mentions=mentions)
        )
        TrelloOutbox.objects.filter(pk=entry.pk).update(trello_action_id=str(action["id"]))
    elif entry.kind == Kind.MOVE_CARD:
        target = _list_id(client, status_list_name(ticket.status))
        if card.list_id == target:
            return  # already there: nothing to send, no echo to expect
        # Recorded before sending, so that Trello's echo is recognised even if it comes first.
        TrelloOutbox.objects.filter(pk=entry.pk).update(target_list_id=target)
        client.move_card(card.card_id, list_id=target)
        TrelloCard.objects.filter(pk=card.pk).update(list_id=target)
    elif entry.kind == Kind.ADD_COMMENT:
        comment = TicketComment.objects.select_related("tenant").get(pk=entry.comment_id)
        if comment.trello_action_id:
            return
        mentions = ""
        if comment.origin == TicketComment.Origin.TENANT:
            mentions = _mentions(client, card.member_ids)
        action = client.add_comment(card.card_id, text=comment_text(comment, mentions=mentions))
        TicketComment.objects.filter(pk=comment.pk).update(trello_action_id=str(action["id"]))


def _card_name(ticket: Ticket) -> str:
    severity = Ticket.Severity(ticket.severity).name.replace("_", " ").title()
    return f"[{severity}] #{ticket.pk} {ticket.title} ({ticket.tenant.name})"[:500]


def _card_desc(ticket: Ticket) -> str:
    from support.targets import format_local

    lines = [
        f"**Tenant:** {ticket.tenant.name}",
        f"**Severity:** {ticket.get_severity_display()}",
        f"**Reported by:** {ticket.reporter_name or '—'} {ticket.reporter_email}".rstrip(),
        f"**Source:** {ticket.get_source_display()}",
        f"**First response due:** {format_local(ticket.first_response_due_at)}",
        "",
        ticket.description[:12000],
        "",
        "---",
        card_marker(ticket),
    ]
    return "\n".join(lines)


def _create_card(entry: TrelloOutbox, ticket: Ticket, client: TrelloClient) -> None:
    if TrelloCard.objects.filter(ticket=ticket).exists():
        return  # a retried task, or a card adopted already
    if entry.attempts > 1:
        # An earlier attempt may have created the card without our hearing of it.
        marker = card_marker(ticket)
        for card in client.board_cards():
            if marker in (card.get("desc") or ""):
                _card_store(ticket, card)
                return
    list_id = _list_id(client, status_list_name(ticket.status))
    card = client.create_card(
        list_id=list_id,
        name=_card_name(ticket),
        desc=_card_desc(ticket),
        member_ids=ticket_member_ids(ticket),
    )
    _card_store(ticket, card)


def _card_members_ensure(card: TrelloCard, ticket: Ticket, client: TrelloClient) -> None:
    """Make the card carry the tenant's people of now (an operator may have changed them)."""
    wanted = ticket_member_ids(ticket)
    if sorted(card.member_ids or []) == sorted(wanted):
        return
    client.set_members(card.card_id, member_ids=wanted)
    TrelloCard.objects.filter(pk=card.pk).update(member_ids=wanted)
    card.member_ids = wanted


def _mentions(client: TrelloClient, member_ids: list[str]) -> str:
    """``@username`` of each member (looked up once, then kept), for comments."""
    known = dict(_state().usernames or {})
    missing = [i for i in member_ids if i not in known]
    for member_id in missing:
        known[member_id] = str(client.member(member_id).get("username") or "")
    if missing:
        _state_update(usernames=known)
    return " ".join(f"@{known[i]}" for i in member_ids if known.get(i))


def _card_store(ticket: Ticket, card: dict) -> None:
    try:
        with transaction.atomic():
            TrelloCard.objects.create(
                tenant_id=ticket.tenant_id,
                ticket=ticket,
                card_id=str(card["id"]),
                short_url=card.get("shortUrl") or card.get("url") or "",
                list_id=str(card.get("idList") or ""),
                member_ids=list(card.get("idMembers") or []),
            )
    except IntegrityError:
        logger.warning("trello.card ticket=%s already mapped; card %s", ticket.pk, card.get("id"))


def _list_id(client: TrelloClient, name: str) -> str:
    """The id of the board's list ``name`` (a configured id is used as is). The first time,
    every status's list that the board lacks is created, in the statuses' order, so that
    people can move cards to any status in Trello."""
    state = _state()
    if state.board_id != client.config.board_id:
        state.lists = {}
        _state_update(board_id=client.config.board_id, lists={})
    if name in state.lists:
        return state.lists[name]
    lists = {item["name"]: item["id"] for item in client.board_lists() if not item.get("closed")}
    ids = set(lists.values())
    for status in Ticket.Status.values:
        wanted = status_list_name(status)
        if wanted not in lists and wanted not in ids:
            lists[wanted] = client.create_list(wanted)["id"]
    _state_update(lists=lists)
    if name not in lists and name in ids:
        return name  # TRELLO_LISTS gave a list id
    if name not in lists:
        lists[name] = client.create_list(name)["id"]
        _state_update(lists=lists)
    return lists[name]


def _backoff(entry: TrelloOutbox, exc: TrelloError) -> float:
    attempts = max(1, entry.attempts)
    if exc.wait is not None:
        return exc.wait
    base, cap = (
        (RATE_BACKOFF_BASE, RATE_BACKOFF_CAP)
        if exc.rate_limited
        else (OUTAGE_BACKOFF_BASE, OUTAGE_BACKOFF_CAP)
    )
    delay = min(cap, base * 2 ** (attempts - 1))
    return delay + random.uniform(0, delay * 0.1)


def _record_failure(
    entry: TrelloOutbox, exc: TrelloError, now: datetime, client: TrelloClient
) -> None:
    entry.refresh_from_db()
    changes = {"locked_until": None, "last_error": exc.message[:2000]}
    if entry.kind == Kind.MOVE_CARD:
        changes["target_list_id"] = ""
    if exc.retryable:
        delay = _backoff(entry, exc)
        changes["next_attempt_at"] = now + timedelta(seconds=delay)
        if exc.status == 429:
            # Every worker holds back for the token, not only this entry.
            from support.trello import ratelimit

            ratelimit.pause(client.config.token, delay)
        logger.warning(
            "trello.outbox entry=%s ticket=%s %s: %s; retry in %.0fs",
            entry.pk,
            entry.ticket_id,
            entry.kind,
            exc.message,
            delay,
        )
    else:
        changes["state"] = State.FAILED
        if exc.status in (400, 404):
            _state_update(lists={})  # a list may have been archived: look the lists up again
        logger.error(
            "trello.outbox entry=%s ticket=%s %s failed: %s",
            entry.pk,
            entry.ticket_id,
            entry.kind,
            exc.message,
        )
    TrelloOutbox.objects.filter(pk=entry.pk).update(**changes)
    if not exc.wait:  # waiting for our own limiter is not an error worth showing
        _state_update(last_error=exc.message[:2000], last_error_at=timezone.now())


# --- The webhook -------------------------------------------------------------------------------


def webhook_ensure(*, client: TrelloClient, now: datetime) -> None:
    """Register the board's webhook with Trello once (retried hourly while it fails)."""
    if not settings.TRELLO_SECRET:
        return
    state = _state()
    url = callback_url()
    if state.webhook_id and state.webhook_callback_url == url:
        return
    if state.webhook_attempted_at and now - state.webhook_attempted_at < WEBHOOK_RETRY:
        return
    _state_update(webhook_attempted_at=now)
    try:
        existing = [
            hook
            for hook in client.token_webhooks()
            if hook.get("idModel") == client.config.board_id and hook.get("callbackURL") == url
        ]
        hook = (
            existing[0]
            if existing
            else client.create_webhook(callback_url=url, description="Chat-Tonic support tickets")
        )
    except TrelloError as exc:
        _state_update(
            last_error=f"Webhook registration: {exc.message}"[:2000], last_error_at=timezone.now()
        )
        return
    _state_update(webhook_id=str(hook["id"]), webhook_callback_url=url)


def state_touch_webhook() -> None:
    _state_update(last_webhook_at=timezone.now())


# --- The mirror's state ------------------------------------------------------------------------


def _state() -> TrelloState:
    try:
        with transaction.atomic():
            state, _ = TrelloState.objects.get_or_create(pk=1)
    except IntegrityError:  # created by another worker meanwhile
        state = TrelloState.objects.get(pk=1)
    return state


def _state_update(**changes) -> None:
    _state()
    TrelloState.objects.filter(pk=1).update(**changes)
