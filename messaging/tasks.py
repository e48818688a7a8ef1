"""The platforms' tasks: the bot's turn on a channel's stored messages, the sends, the sweeps."""

from __future__ import annotations

import logging

from celery import shared_task

from conversations.models import Message
from conversations.receive import messages_answer, messages_answer_failed

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, typing=False)  # typing: no signature check on the hot path
def conversation_handle(message_id: int) -> int:
    """Let the bot answer the new inbound messages of a channel message's conversation
    (stored by the webhook); sends its replies through message_send. Safe to run twice."""

    try:
        return len(messages_answer(message_id=message_id))
    except Exception:
        _count_failure(message_id)
        raise


def _count_failure(message_id: int) -> None:
    """receive.messages_answer_failed, never hiding the turn's own error behind its own. Not for
    a database that is away (OperationalError): that is no fault of the conversation's, and
    the sweep tries again."""
    import sys

    from django.conf import settings
    from django.db import OperationalError

    if isinstance(sys.exc_info()[1], OperationalError):
        return
    try:
        messages_answer_failed(
            message_id=message_id, max_failures=settings.CHANNEL_HANDLE_MAX_FAILURES
        )
    except Exception:
        logger.exception("message %s: the failed turn could not be counted", message_id)


@shared_task(acks_late=True, typing=False)
def conversations_handle(message_ids: list[int]) -> int:
    """conversation_handle for each message of a burst a web process stored (one task call
    per batch, see channels.handle_later). A message whose turn fails is logged, counted
    (receive.messages_answer_failed) and left to the channel sweep; the others go on."""

    replies = 0
    failed: set[int] = set()  # conversations whose turn failed: their other ids would again
    for message_id in message_ids:
        conversation_id = (
            Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).first()
        )
        if conversation_id in failed:
            continue
        try:
            replies += len(messages_answer(message_id=message_id))
        except Exception:
            logger.exception("message %s: the bot's turn failed; the sweep retries it", message_id)
            failed.add(conversation_id)
            _count_failure(message_id)
    return replies


@shared_task(bind=True, acks_late=True, max_retries=None)
def message_send(self, message_id: int) -> str:
    """Send one outbound message to its platform; a wait before the next try goes in the
    due-sends set (delivery.send_later), never on the broker. Marks the message sent or
    failed. A second run of a sent (or failed) message sends nothing."""
    from messaging.delivery import message_send as send
    from messaging.delivery import send_dequeued, send_later

    send_dequeued(message_id)
    outcome = send(message_id=message_id)
    if outcome.retry_in is None:
        return outcome.state
    if self.request.is_eager:
        # In-process runs (tests, CELERY_TASK_ALWAYS_EAGER) try again at once, in a loop
        # rather than a recursion; the attempt budget ends the loop.
        while outcome.retry_in is not None and outcome.counts_as_retry:
            outcome = send(message_id=message_id, skip_waits=True)
        return outcome.state
    # Not a countdown on the broker: a worker killed during the wait would hold it until the
    # visibility time-out. Should Redis not take it, the database sweep finds it when due.
    try:
        send_later(message_id, outcome.retry_in)
    except Exception:  # noqa: BLE001 - Redis away: the sweep finds the send once it is back
        logger.warning("message %s: could not put its next try in the due set", message_id)
    return outcome.state


@shared_task(acks_late=True)
def sends_due_queue() -> int:
    """Queue the sends whose wait (a back-off, a rate limit, a wait for a status) has ended."""
    from messaging.delivery import sends_due_queue as queue

    return queue()


@shared_task(acks_late=True)
def message_send_sweep() -> int:
    """Queue each conversation's next reply that is due and has no task on its way (a lost
    task, a dead worker's lease, a wait whose entry in the due set was lost)."""
    from messaging.delivery import pending_sends_requeue

    return pending_sends_requeue()


@shared_task(bind=True, acks_late=True, max_retries=3, default_retry_delay=5)
def channel_status_later(self, channel_id: int, status: dict) -> int:
    """Apply a delivery status whose message was not known yet (its send still being
    recorded); tries a few times, seconds apart, then lets it go."""
    from datetime import datetime

    from messaging.connectors import StatusUpdate
    from messaging.models import Channel
    from messaging.services import channel_status_apply

    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return 0
    update = StatusUpdate(
        external_id=status["external_id"],
        status=status["status"],
        timestamp=datetime.fromisoformat(status["timestamp"]) if status.get("timestamp") else None,
        error=status.get("error"),
        recipient_id=status.get("recipient_id"),
    )
    known = Message.objects.filter(channel=channel, external_id=update.external_id).exists()
    if not known:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            return 0
        raise self.retry()
    return channel_status_apply(channel=channel, status=update, retry=False)


@shared_task
def channel_sweep() -> dict:
    """Queue again the inbound channel messages a lost task left unhandled (safe to run
    twice); the replies have their own sweep, message_send_sweep."""
    from messaging.services import unhandled_messages_requeue

    return {"handled": unhandled_messages_requeue()}


@shared_task(acks_late=True)
def telegram_callback_answer(channel_id: int, callback_query_id: str) -> bool:
    """Stop the spinner on a Telegram inline button the contact tapped."""
    from messaging.delivery import telegram_callback_answer as answer

    return answer(channel_id=channel_id, callback_query_id=callback_query_id)


def callback_answer_later(*, channel_id: int, query_id: str) -> None:
    """A tapped inline button's callback query, answered by a worker
    (``conversations.hooks.callback_answer``)."""
    telegram_callback_answer.delay(channel_id, query_id)
