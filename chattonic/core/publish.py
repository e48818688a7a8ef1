"""Publishing Celery tasks off the request thread, several calls in one message under load.

A publish to the broker costs about a millisecond of CPU and a round trip, on the request's
path, and every thread of a process shares its one core's worth of Python (the GIL). A
:class:`Batcher` takes items from the request thread at the cost of a queue put and hands
them, in batches of what has piled up, to a daemon thread that publishes one task call per
batch.

What it gives up: an item accepted but not yet published dies with a process that is killed
(a process that exits publishes what is queued, at exit). Callers use it only where a sweep
finds such work again (``messaging.tasks.channel_sweep`` for the channel messages stored
but never handled). When Celery runs tasks eagerly (tests, ``CELERY_TASK_ALWAYS_EAGER``), the
batch of one runs at once, in the caller's thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Batcher:
    """``submit(item)`` returns at once; ``publish(items)`` runs in a daemon thread with
    every item submitted since its last run (at most ``max_batch``), waiting ``linger``
    seconds after the first for more: a little latency for fewer publishes under load."""

    def __init__(
        self,
        name: str,
        publish: Callable[[list], None],
        *,
        max_batch: int = 100,
        linger: float = 0.0,
    ):
        self.name = name
        self.publish = publish
        self.max_batch = max_batch
        self.linger = linger  # seconds a batch waits for more items after its first
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid: int | None = None  # the thread belongs to the process that started it

    def submit(self, item) -> None:
        from celery import current_app

        if current_app.conf.task_always_eager:
            self.publish([item])
            return
        if self._pid != os.getpid():
            self._start()
        self._queue.put(item)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.SimpleQueue()  # a forked child does not inherit the parent's
            threading.Thread(target=self._run, name=f"batcher-{self.name}", daemon=True).start()
            if self._pid is None:
                atexit.register(self.flush)  # a stopping process publishes what is queued
            self._pid = os.getpid()

    def flush(self) -> None:
        """Publish what is queued now, in this thread (at the process's exit)."""
        batch = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for start in range(0, len(batch), self.max_batch):
            try:
                self.publish(batch[start : start + self.max_batch])
            except Exception:  # the sweep behind this batcher takes them
                logger.exception("%s: publishing %d items failed", self.name, len(batch))

    def _run(self) -> None:
        pending = self._queue
        while True:
            batch = [pending.get()]
            deadline = time.monotonic() + self.linger
            while len(batch) < self.max_batch:
                try:
                    batch.append(pending.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self.publish(batch)
            except Exception:  # the broker is down: the sweep behind this batcher takes them
                logger.exception("%s: publishing %d items failed", self.name, len(batch))
