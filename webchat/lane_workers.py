"""The web chat lane's worker processes: where a web process's lane batches do their database
work (``webchat.lane.lane_batch``), beside the process rather than in one of its threads.

Why: a web process's event loop (the sockets' frames, acks and broadcasts) and a database
thread share one interpreter lock; each held it about half of every batch's cycle, so neither
could overlap the other (docs/webchat.md, "Performance"). A worker is a Python process of its
own: while it plans and writes one batch, the loop sends the last batch's acks and gathers
the next one.

- ``WEBCHAT_LANE_PROCESSES`` workers per web process (0: none, the batches run in the
  database thread, as in the tests). They start with the web process (``chattonic/asgi.py``
  calls ``start``), each loading Django and the intent matcher's models; ``/readyz`` answers
  503 ("lane workers") until they are ready.
- Each talks to its web process over a socket pair: a batch goes as its arrivals' fields (the
  bot by its id: a worker keeps its own copies, read again after ``BOT_TTL`` seconds and
  whenever the receive service finds one changed), the outcomes come back in the same order.
  Two batches may be under way at once (``webchat.lane.IN_FLIGHT_WORKERS``); a worker takes
  its batches in turn.
- A worker that dies (killed, out of memory), or holds a batch longer than
  ``WEBCHAT_LANE_BATCH_TIMEOUT`` seconds (and is then killed), fails the batches it held with
  ``unavailable`` (the socket tells its visitor to send again: a message its batch committed
  is then found by its client id, not stored twice), and another is started in its place. A
  worker whose web process is gone (even one stopped while the worker loaded) finds its
  socket closed and exits, quietly.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings

from chattonic.core import health
from chattonic.core.errors import ServiceError

logger = logging.getLogger(__name__)

WARM_UP = "lane workers"
READY = b"R"
BOT_TTL = 30.0  # seconds a worker keeps its copy of a bot before reading it again
START_TIMEOUT = 120.0  # seconds a worker may take to load before it is given up
WAIT_TIMEOUT = 30.0  # seconds a batch waits for a worker when none is live


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"


LOST = "That message did not get through; send it again."


# --- The frames: a length, then a pickle -----------------------------------------------------


def _frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(4, "big") + data


def _unpickled(data: bytes) -> Any:
    """A frame's value. Pickle is safe here: both ends are the same code, a web process and
    the children it started, over a socket pair that nothing else holds."""
    return pickle.loads(data)  # noqa: S301 - see above


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes; None when the other end has gone (closed, or reset: it closed with
    bytes of ours unread)."""
    data = bytearray()
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


# --- In the worker ---------------------------------------------------------------------------


_bots: dict[int, tuple[float, Any]] = {}


def _bot(bot_id: int):
    """This worker's copy of the bot (with its tenant), read again after BOT_TTL seconds."""
    # This module is the worker's __main__, which imports models only after django.setup().
    from bots.models import Bot  # why: after django.setup() in the worker (main)

    now = time.monotonic()
    known = _bots.get(bot_id)
    if known is None or now - known[0] > BOT_TTL:
        known = _bots[bot_id] = (now, Bot.objects.select_related("tenant").get(pk=bot_id))
    return known[1]


def arrivals_of(items: list[tuple]) -> list:
    # why: models are imported only after django.setup() in the worker (see _bot).
    from conversations.receive import Arrival

    return [
        Arrival(
            bot=_bot(bot_id),
            visitor_id=visitor_id,
            inbound=inbound,
            conversation_id=conversation_id,
            sandbox=sandbox,
            language=language,
            origin=origin,
        )
        for bot_id, visitor_id, inbound, conversation_id, sandbox, language, origin in items
    ]


def items_of(arrivals: list) -> list[tuple]:
    """What a worker needs of each arrival (the bot by its id)."""
    return [
        (a.bot.pk, a.visitor_id, a.inbound, a.conversation_id, a.sandbox, a.language, a.origin)
        for a in arrivals
    ]


def outcomes_sent(outcomes: list[tuple[bool, Any]]) -> list[tuple[bool, Any]]:
    return [
        (True, (a.conversation, a.message, a.duplicate, a.replies, a.events)) if ok else (False, a)
        for ok, a in outcomes
    ]


def outcomes_received(arrivals: list, sent: list[tuple[bool, Any]]) -> list[tuple[bool, Any]]:
    outcomes = []
    for arrival, (ok, value) in zip(arrivals, sent, strict=True):
        if ok:
            (arrival.conversation, arrival.message, arrival.duplicate) = value[:3]
            arrival.replies, arrival.events = value[3], value[4]
            outcomes.append((True, arrival))
        else:
            outcomes.append((False, value))
    return outcomes


def _send(sock: socket.socket, data: bytes) -> bool:
    """Whether ``data`` went to the web process (False: it is gone, stopped while this
    worker loaded or worked: the worker then leaves quietly)."""
    try:
        sock.sendall(data)
    except OSError:  # BrokenPipeError, ConnectionResetError: nobody at the other end
        return False
    return True


def serve(sock: socket.socket) -> None:
    """A worker's life: batches in, outcomes out, in order, until the web process goes."""
    from channels.layers import get_channel_layer
    from django.db import connections

    from webchat.lane import lane_batch

    layer = get_channel_layer()
    while True:
        head = _recv_exactly(sock, 4)
        if head is None:
            return
        data = _recv_exactly(sock, int.from_bytes(head, "big"))
        if data is None:
            return
        try:
            outcomes, counts = lane_batch(arrivals_of(_unpickled(data)), layer)
            answer = _frame(("ok", outcomes_sent(outcomes), counts))
        except Exception as exc:
            logger.exception("a lane batch failed in its worker")
            connections.close_all()  # a broken connection is not kept for the next batch
            try:
                answer = _frame(("error", exc))
            except Exception:  # noqa: BLE001 - an error that does not pickle
                answer = _frame(("error", RuntimeError(repr(exc))))
        if not _send(sock, answer):
            return


def main() -> None:
    """``python -m webchat.lane_workers FD``: FD is the worker's end of its socket pair."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chattonic.settings")
    import django

    django.setup()
    import gc

    # why: after django.setup(), above.
    from bots.nlu.encoder import warm_up
    from bots.selectors import runtimes_warm_here  # why: after django.setup(), above.

    # Ctrl+C reaches the whole process group: the worker leaves when its web process does
    # (its socket closes), not in the middle of a batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        warm_up()
        runtimes_warm_here()
    except Exception:  # as the web process's warm-up: loaded when a message needs it
        logger.exception("a web chat lane worker's warm-up failed")
    gc.freeze()  # as the web process does (chattonic/asgi.py)
    if _send(sock, READY):
        serve(sock)  # until the web process goes
    logger.info("a web chat lane worker's web process is gone: leaving")


# --- In the web process ----------------------------------------------------------------------


class _Worker:
    """One worker process, from its start; on an event loop once ``adopt``ed."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webchat.lane_workers", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self.socket = ours
        self.ready = False
        self.writer: asyncio.StreamWriter | None = None
        self.waiting: collections.deque[asyncio.Future] = collections.deque()

    def wait_ready(self) -> bool:
        """Block until the worker has loaded (or failed to); whether it is ready."""
        self.socket.settimeout(START_TIMEOUT)
        try:
            self.ready = _recv_exactly(self.socket, 1) == READY
        except OSError:
            self.ready = False
        self.socket.settimeout(None)
        if not self.ready:
            logger.error("a web chat lane worker did not start (exit code %s)", self.stop())
        return self.ready

    async def adopt(self, lost) -> None:
        """Talk to the worker from this event loop; ``lost()`` is called if it goes away."""
        self.lost = lost
        reader, self.writer = await asyncio.open_connection(sock=self.socket, limit=2**26)
        self.reading = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head = await reader.readexactly(4)
                answer = _unpickled(await reader.readexactly(int.from_bytes(head, "big")))
                future = self.waiting.popleft()
                if future.done():
                    continue
                if answer[0] == "ok":
                    future.set_result(answer[1:])
                else:
                    future.set_exception(answer[1])
        except asyncio.CancelledError:  # the web process is stopping
            self.ready = False
            self.stop()
            raise
        except (asyncio.IncompleteReadError, OSError):
            pass
        self.ready = False
        logger.error("a web chat lane worker went away (exit code %s)", self.stop())
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(Unavailable(LOST))
        self.lost()

    def send(self, items: list[tuple]) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.writer.write(_frame(items))
        return future

    def stop(self) -> int | None:
        """Close the socket, kill the process if it lives, and reap it; its exit code."""
        self.socket.close()
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()


class Workers:
    """A web process's lane workers (``start`` starts them; the loop that first runs a batch
    talks to them)."""

    def __init__(self, count: int):
        self.count = count
        self._lock = threading.Lock()
        self._launching = 0  # started, not yet ready (or failed)
        self._ready: list[_Worker] = []  # ready, not yet on the loop
        self._adopting = 0  # ready, being put on the loop
        self._live: list[_Worker] = []  # on the loop

    def start(self) -> None:
        """Start the workers; ``/readyz`` waits for them (in a thread: this does not)."""
        health.warming_started(WARM_UP)
        self._launch_in_thread(self.count, then=lambda: health.warming_done(WARM_UP))

    def _launch_in_thread(self, count: int, then=None) -> None:
        logger.info("starting %d web chat lane worker(s)", count)
        with self._lock:
            self._launching += count
        threading.Thread(target=self._launch, args=(count, then), daemon=True).start()

    def _launch(self, count: int, then) -> None:
        try:
            workers = [_Worker() for _ in range(count)]
            ready = [worker for worker in workers if worker.wait_ready()]
            with self._lock:
                self._ready += ready
        finally:
            with self._lock:
                self._launching -= count
            if then is not None:
                then()

    async def run(self, arrivals: list) -> tuple[list[tuple[bool, Any]], dict | None]:
        """``lane_batch(arrivals)``'s outcomes and counts, from the least busy worker. A
        worker that holds a batch longer than ``WEBCHAT_LANE_BATCH_TIMEOUT`` seconds (frozen,
        or waiting on a frozen database) is stopped: its batches get ``unavailable``."""
        worker = await self._worker()
        answer = worker.send(items_of(arrivals))
        timeout = settings.WEBCHAT_LANE_BATCH_TIMEOUT
        try:
            sent, counts = await asyncio.wait_for(asyncio.shield(answer), timeout)
        except TimeoutError:
            answer.add_done_callback(lambda f: f.cancelled() or f.exception())  # seen
            logger.error("a web chat lane worker held a batch over %s s: stopped", timeout)
            worker.ready = False  # no batch goes there any more
            worker.process.kill()  # its socket closes: _read fails what it held
            raise Unavailable(LOST) from None
        return outcomes_received(arrivals, sent), counts

    def _replace(self) -> None:
        """Start workers for those that went away or failed to start (in a thread)."""
        live = [worker for worker in self._live if worker.ready]
        with self._lock:
            missing = self.count - len(live) - len(self._ready) - self._adopting - self._launching
        if missing > 0:
            self._launch_in_thread(missing)

    async def _worker(self) -> _Worker:
        """The live worker with the fewest batches under way; with none live, wait for one
        (at most WAIT_TIMEOUT): one that went away is replaced at once (``_replace``)."""
        deadline = time.monotonic() + WAIT_TIMEOUT
        while True:
            with self._lock:
                adopting, self._ready = self._ready, []
                self._adopting += len(adopting)
            # Another batch may ask for a worker while these are adopted (an await): they
            # count as live (``_replace``), or it would start one more.
            try:
                for worker in adopting:
                    await worker.adopt(lost=self._replace)
            finally:
                with self._lock:
                    self._adopting -= len(adopting)
            self._live = [worker for worker in self._live + adopting if worker.ready]
            self._replace()  # any that failed to start
            if self._live:
                return min(self._live, key=lambda worker: len(worker.waiting))
            if time.monotonic() > deadline:
                raise Unavailable(LOST)
            await asyncio.sleep(0.05)  # a worker loading (a second or two): look again


_workers: Workers | None = None


def start(count: int) -> Workers:
    """The web process's workers, started (once)."""
    global _workers
    if _workers is None:
        _workers = Workers(count)
        _workers.start()
    return _workers


def workers() -> Workers | None:
    """The web process's workers, if it has started any."""
    return _workers


if __name__ == "__main__":
    main()
