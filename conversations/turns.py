"""Group commit for the web chat's messages.

Each socket's message is a small transaction (the message, the bot's turn, the reply, the
conversation), and a transaction per message costs a hop to the database thread and a
commit each. Under load the messages of many sockets wait for that thread at once; here they
are taken together: one hop and one transaction for all that are waiting, while the next ones
gather behind. A lone message goes through alone, at once (no waiting for company).

If any message of a batch fails, the batch is rolled back and each of its messages runs again
in its own transaction, so one bad message costs only itself (its caller gets its error).
Each message's broadcasts are collected on commit, so a rolled-back run sends nothing.

``TurnBatcher`` gathers the works; the web chat's lane (webchat.lane) is one, whose
batches count the rate limit and hand their messages to the receive service together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

# The longest batch: a bound on how long the first of them waits for the last.
MAX_BATCH = 100


class TurnBatcher:
    """One per event loop (each web process has one): ``await run(work, key)`` runs the sync
    ``work()`` (database work, no commit of its own) in the next batch's transaction.

    ``key`` is the conversation the work locks (0 for one not known yet): a batch runs its
    works ordered by it (each conversation's in arrival order), so that batches of several web
    processes running at once on PostgreSQL lock conversations in the same order and do not
    deadlock. ``in_flight``: batches under way at once (one by default)."""

    def __init__(self, to_thread: Callable, in_flight: int = 1):
        self._to_thread = to_thread  # sync callable -> awaitable, in a database thread
        self._in_flight = in_flight
        self._running = 0
        self._pending: list[tuple[int, Callable[[], Any], asyncio.Future]] = []

    async def run(self, work: Callable[[], Any], key: int = 0) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((key, work, future))
        self._start_batches()
        return await future

    def _start_batches(self) -> None:
        while self._pending and self._running < self._in_flight:
            batch = sorted(self._pending[:MAX_BATCH], key=lambda item: item[0])  # stable
            del self._pending[:MAX_BATCH]
            self._running += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list) -> None:
        try:
            try:
                outcomes = await self._process([work for _, work, _ in batch])
            except asyncio.CancelledError:
                for _, _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - the hop itself failed: tell each caller
                outcomes = [(False, exc)] * len(batch)
            for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue  # its socket went away meanwhile
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        finally:
            self._running -= 1
            self._start_batches()

    async def _process(self, works: list) -> list[tuple[bool, Any]]:
        """(True, result) or (False, error) for each of ``works``, in order: the subclass's
        batch (the web chat's lane)."""
        raise NotImplementedError


def in_one_transaction(works: list) -> tuple[list | None, Exception | None]:
    """The works' results, or (None, the error) when the transaction rolled back. A callback
    failing after the commit (a broker outage) is logged: the works stand, and running them
    again would only find them stored."""
    committed: list = []
    results: list = []
    try:
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(True))  # the first to run
            results = [work() for work in works]
    except Exception as exc:
        if not committed:
            return None, exc
        logger.exception("a callback after the commit of %d messages failed", len(works))
    return results, None
