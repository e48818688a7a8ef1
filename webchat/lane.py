"""The web chat's lane: visitors' messages to a bot, many sockets' at once, into the receive
service.

A socket's ``message`` (or ``quick_reply``) frame becomes an :class:`~conversations.receive.
Arrival`, which joins the next batch of its web process (the group commit of
conversations.turns). A batch goes to where its database work runs: one of the web process's
lane worker processes (``webchat.lane_workers``, ``WEBCHAT_LANE_PROCESSES``), or with none,
a database thread. There ``lane_batch`` does, with blocking clients (no step waits behind
the event loop's bursts of frames):

1. counts each visitor's messages against ``WEBCHAT_MESSAGES_PER_10S`` in one Redis round
   trip (a message over the limit gets the ``rate_limited`` error and is not stored);
2. hands the others to the receive service (``receive.messages_receive``), which stores
   them, lets the bot answer and carries out what the turns cause, in one transaction;
3. asks Redis, in one round trip, how many processes listen to the conversations the
   batch's events go to.

Back on the event loop, the events a socket's own ack already carries (its message, the
bot's replies, the conversation it opened) are kept only where someone else hears them
(another tab of the visitor, an agent: ``_keep_heard_events``). The socket that sent a message
gets its ``ack`` from here, not back through Redis.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from django.conf import settings

from chattonic.core import ratelimit
from chattonic.core.errors import ServiceError
from conversations import realtime, receive
from conversations.receive import Arrival
from conversations.turns import TurnBatcher

logger = logging.getLogger(__name__)


# Batches under way at once in a web process. PostgreSQL: one, in one database thread, while
# the next one gathers on the event loop. Two at once (two threads taking the GIL from the loop
# and from each other) took half the messages each and spent more CPU time on each
# (bench/webchat.py, eight alternating runs: 112 us a message in the threads against 98, a
# throughput ratio of 0.47 against 0.60, medians); three or four were slower still.
IN_FLIGHT = 1
# With worker processes (webchat.lane_workers): two, whatever their number (each worker takes
# its batches in turn).
IN_FLIGHT_WORKERS = 2
# SQLite: two, both for its one database thread: the second waits in the thread's queue and
# starts as the first ends, without waiting for a turn of the busy event loop (two alternating
# runs each: ratios 0.54 and 0.72 against 0.45 and 0.46 with one).
IN_FLIGHT_ONE_THREAD = 2


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"


# --- The batch, on the event loop ----------------------------------------------------------------


class Lane(TurnBatcher):
    """One per event loop: ``await run(arrival, key)`` fills in ``arrival``'s outcome or
    raises its error (ServiceError for the visitor's mistakes and the rate limit)."""

    def __init__(self, to_thread, channel_layer, in_flight: int = IN_FLIGHT, workers=None):
        super().__init__(to_thread, in_flight)
        self._layer = channel_layer
        self._workers = workers  # webchat.lane_workers.Workers; None: the database thread

    async def _process(self, arrivals: list[Arrival]) -> list[tuple[bool, Any]]:
        if self._workers is not None:
            outcomes, counts = await self._workers.run(arrivals)
        else:
            outcomes, counts = await self._to_thread(lane_batch)(arrivals, self._layer)
        _keep_heard_events(
            [arrival for ok, arrival in outcomes if ok], counts, self._layer.loop_layer()
        )
        return outcomes


def lane_batch(arrivals: list[Arrival], channel_layer) -> tuple[list[tuple[bool, Any]], Any]:
    """A batch of the lane, in a worker process or the database thread: the rate count, the
    receive service for the messages within the limit, then how many processes listen to the
    conversations of the events that a socket's ack carries (None: not known). Redis is
    asked from here, with a blocking client: through the event loop, each of the two round
    trips waited behind the loop's bursts of frames (4 and 2 ms a batch, measured)."""
    limit = settings.WEBCHAT_MESSAGES_PER_10S
    within = ratelimit.hit_many_blocking(
        [f"webchat.msg.{arrival.visitor_id}" for arrival in arrivals], limit=limit, window=10
    )
    allowed = [arrival for arrival, ok in zip(arrivals, within, strict=True) if ok]
    if allowed:
        receive.messages_receive(allowed)
    outcomes = []
    for arrival, ok in zip(arrivals, within, strict=True):
        if not ok:
            message = f"At most {limit} messages per 10 seconds; wait a moment."
            outcomes.append((False, RateLimited(message)))
        elif arrival.error is not None:
            outcomes.append((False, arrival.error))
        else:
            outcomes.append((True, arrival))
    stored = [arrival for ok, arrival in outcomes if ok]
    groups = sorted({g for a in stored for g, e in a.events if _own(a, g, e)})
    if not groups:
        return outcomes, {}
    try:
        counts = channel_layer.counting_layer().subscriber_counts(groups)
    except Exception:  # not knowing, tell everyone
        logger.exception("could not ask the channel layer who listens")
        counts = None
    return outcomes, counts


def _own(arrival: Arrival, group: str, event: dict) -> bool:
    """Whether the socket's ack already tells what ``event`` does: its message and the bot's
    replies (marked with its ``origin``), and the conversation it opened, announced to its
    visitor's tabs (the socket joins that conversation itself)."""
    if event.get("origin") == arrival.origin:
        return True
    return event.get("type") == "conversation.started" and group == realtime.visitor_group(
        arrival.visitor_id
    )


def _keep_heard_events(arrivals: list[Arrival], counts: dict | None, layer) -> None:
    """Drop the events a socket's ack already carries (``_own``) where nobody but that socket
    would hear them (``counts``: ``lane_batch``'s; None, not known: keep them all). (A new
    conversation's announcement to its visitor's tabs was one PUBLISH each through the event
    loop, in turn behind the channel layer's one lock: 200 visitors' first messages waited
    200 ms on average for them, up to 0.4 s, in bench/webchat.py.)"""
    if counts is None:
        return
    own = [a for a in arrivals if any(_own(a, g, e) for g, e in a.events)]
    if not own:
        return
    pairs = {(g, a.origin) for a in own for g, e in a.events if _own(a, g, e)}
    heard = layer.others_listening(sorted(pairs), counts)
    for arrival in own:
        arrival.events = [
            (group, event)
            for group, event in arrival.events
            if (group, arrival.origin) in heard or not _own(arrival, group, event)
        ]


_lanes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lane(to_thread, channel_layer, in_flight: int = IN_FLIGHT, workers=None) -> Lane:
    """This event loop's lane (made with the first caller's arguments)."""
    loop = asyncio.get_running_loop()
    found = _lanes.get(loop)
    if found is None:
        found = _lanes[loop] = Lane(to_thread, channel_layer, in_flight, workers)
    return found
