"""The web chat lane's worker processes (webchat.lane_workers): what crosses between a web
process and its workers, and a real web process not ready while its worker loads, whose
worker is then frozen, then killed.

The other tests' lanes run their batches in a database thread (tests/conftest.py); the
servers the multi-process and browser tests start have their workers, as in production."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from channels.layers import get_channel_layer

from chattonic.core.errors import ValidationFailed
from conversations.models import Message
from conversations.receive import Arrival, Inbound
from tests.conversations.faults import alive
from tests.factories import launched_bot
from tests.processes import ROOT, Process, free_port, http_json, http_status, uvicorn, wait_for
from tests.processes import test_database_env as database_env
from tests.sockets import Frames
from webchat import lane, lane_workers

SITE = "https://shop.example.com"
PRICES = "Plans start at $10."


def arrival(bot, visitor: str, client_id: str, text: str = "how much is it") -> Arrival:
    return Arrival(
        bot=bot,
        visitor_id=visitor,
        inbound=Inbound(text=text, external_id=client_id),
        origin=f"socket-of-{visitor}",
    )


@pytest.mark.django_db(transaction=True)
def test_a_batch_crosses_to_a_worker_and_its_outcomes_come_back(settings):
    """What a web process sends a worker and what comes back, through pickle as on the
    socket: the worker's own copy of the bot, the stored message and the bot's replies onto
    the web process's arrivals, a visitor's mistake and the rate limit as their errors."""
    settings.WEBCHAT_MESSAGES_PER_10S = 1
    bot = launched_bot(allowed_origins=[SITE])
    mine = [
        arrival(bot, "v1", "c1"),
        arrival(bot, "v2", "c1", text=" "),
        arrival(bot, "v3", "c1"),
        arrival(bot, "v3", "c2"),
    ]
    wire = pickle.loads(pickle.dumps(lane_workers.items_of(mine)))  # noqa: S301 - ours
    theirs = lane_workers.arrivals_of(wire)
    assert theirs[0].bot is not bot and theirs[0].bot.pk == bot.pk
    outcomes, counts = lane.lane_batch(theirs, get_channel_layer())
    back = pickle.loads(pickle.dumps(lane_workers.outcomes_sent(outcomes)))  # noqa: S301 - ours

    received = lane_workers.outcomes_received(mine, back)

    assert [ok for ok, _ in received] == [True, False, True, False]
    assert received[0][1] is mine[0] and mine[0].message["text"] == "how much is it"
    assert mine[0].replies[-1]["text"] == PRICES
    assert Message.objects.get(pk=mine[0].message["id"]).conversation_id == mine[0].conversation
    error = received[1][1]
    assert isinstance(error, ValidationFailed) and error.fields == {
        "text": ["A message needs some text."]
    }
    assert isinstance(received[3][1], lane.RateLimited) and received[3][1].code == "rate_limited"
    assert isinstance(counts, dict)  # nobody else listens: no socket here
    assert Message.objects.filter(direction="in").count() == 2


# --- A real web process and its worker -------------------------------------------------------


def workers_of(server: Process) -> list[int]:
    """The live lane workers the web process started (their parent is the web process)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
            if parent == server.popen.pid and b"webchat.lane_workers" in command:
                found.append(int(entry.name))
    return [pid for pid in found if alive(pid)]


WORKERS_LOADING = f"still loading {lane_workers.WARM_UP}"


async def send(frames: Frames, client_id: str) -> dict:
    await frames.socket.send(
        json.dumps({"type": "message", "client_id": client_id, "text": "how much is it"})
    )
    return await frames.until(
        lambda f: f["type"] in ("ack", "error") and f.get("client_id", client_id) == client_id
    )


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_frozen_worker_is_stopped_its_batch_sent_again_and_a_new_one_answers(tmp_path):
    bot = launched_bot(allowed_origins=[SITE])
    port = free_port()
    env = {**database_env(), "WEBCHAT_LANE_PROCESSES": "1", "WEBCHAT_LANE_BATCH_TIMEOUT": "2"}
    server = Process(uvicorn(port), env, tmp_path / "web.log")
    with server:
        # While its worker loads (held here: stopped as soon as it is seen), the web process
        # is not ready: a load balancer sends it nobody.
        [first] = wait_for(lambda: workers_of(server), 60, interval=0.01, what="the lane worker")
        os.kill(first, signal.SIGSTOP)

        def loading_workers() -> dict | None:
            answer = http_json(f"http://127.0.0.1:{port}/readyz")
            return answer if answer.get("checks", {}).get("warm_up") == WORKERS_LOADING else None

        try:
            waiting = wait_for(
                loading_workers,
                60,
                what=f"/readyz to wait for the lane worker alone:\n{server.output()}",
            )
        finally:
            os.kill(first, signal.SIGCONT)
        assert waiting["status"] == "unavailable" and waiting["failed"] == ["warm_up"]
        wait_for(
            lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200,
            90,
            what=f"the web process and its worker to be ready:\n{server.output()}",
        )
        assert workers_of(server) == [first]

        async def visit() -> tuple[dict, dict, dict]:
            url = f"ws://127.0.0.1:{port}/ws/webchat/{bot.public_key}/"
            async with contextlib.AsyncExitStack() as stack:
                sockets = [
                    await stack.enter_async_context(websockets.connect(url, origin=SITE))
                    for _ in range(4)
                ]
                visitors = [Frames(socket) for socket in sockets]
                for frames in visitors:
                    await frames.until(lambda f: f["type"] == "session")
                # Four first messages at once: batches that ask for the worker while it is
                # being adopted by the first start no second one.
                answers = await asyncio.gather(*(send(frames, "c1") for frames in visitors))
                assert server.output().count("starting 1 web chat lane worker(s)") == 1
                frames, answered = visitors[0], answers[0]
                os.kill(first, signal.SIGSTOP)  # frozen: c2's batch is never answered
                try:
                    lost = await send(frames, "c2")
                finally:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(first, signal.SIGKILL)
                again = await send(frames, "c2")  # the visitor (the widget) sends it again
                return answered, lost, again

        answered, lost, again = asyncio.run(visit())
        replacement = wait_for(lambda: workers_of(server), 10, what="the new lane worker")
        assert first not in replacement
        output = server.output()
    assert answered["type"] == "ack" and answered["replies"][-1]["text"] == PRICES
    assert lost == {
        "type": "error",
        "code": "unavailable",
        "message": lane_workers.LOST,
        "client_id": "c2",
    }
    assert again["type"] == "ack" and not again["duplicate"]
    assert [r["text"] for r in again["replies"]] == [PRICES]
    assert Message.objects.filter(external_id="c2").count() == 1
    assert output.count("starting 1 web chat lane worker(s)") == 2  # the first, its replacement
    # The web process gone, its workers go too (their socket closes).
    wait_for(lambda: not any(alive(pid) for pid in replacement), 10, what="the workers to exit")
    assert "a web chat lane worker held a batch over 2 s: stopped" in output
    assert "a web chat lane worker went away" in output


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("when", ["loading", "ready, unread", "serving"])
def test_a_worker_whose_web_process_is_gone_leaves_quietly(tmp_path, when):
    """A web process stopped while its worker loads (or works on a batch) leaves the worker
    nobody to answer: it exits, without a traceback in the server's log (the socket pair's
    other end closed before the worker's READY, after it but with it unread, or before the
    worker's answer)."""
    bot = launched_bot(allowed_origins=[SITE])
    ours, theirs = socket.socketpair()
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "webchat.lane_workers", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            cwd=ROOT,
            env=database_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    theirs.close()
    if when == "ready, unread":
        # Closed with the worker's READY unread: the worker, waiting for a batch, is reset.
        assert select.select([ours], [], [], 120)[0], "the worker never said it was ready"
    if when == "serving":
        assert ours.recv(1) == lane_workers.READY
        # A visitor's message: stored, but its answer has nobody to go to.
        items = lane_workers.items_of([arrival(bot, "v1", "c1")])
        ours.sendall(lane_workers._frame(items))
    ours.close()
    try:
        code = worker.wait(timeout=120)  # a safety net for a hung worker, not a timing
    finally:
        if worker.poll() is None:
            worker.kill()
    output = log.read_text()
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "web process is gone: leaving" in output
    assert Message.objects.filter(external_id="c1").count() == (when == "serving")
