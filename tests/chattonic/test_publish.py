"""chattonic.core.publish.Batcher: items submitted on the request thread reach ``publish`` in
batches from a daemon thread (or at once when Celery runs eagerly), and a failed publish
does not stop the next ones."""

from __future__ import annotations

import threading

import pytest

from chattonic.celery import app
from chattonic.core.publish import Batcher

WAIT = 10  # seconds: a safety net for a broken thread, not a timing assertion


class Collector:
    """A publish callable that records its batches and lets a test wait for a count."""

    def __init__(self, fail_first: bool = False):
        self.batches: list[list] = []
        self.fail_first = fail_first
        self.threads: set[str] = set()
        self._changed = threading.Condition()

    def __call__(self, items: list) -> None:
        with self._changed:
            self.threads.add(threading.current_thread().name)
            if self.fail_first and not self.batches:
                self.batches.append([])
                self._changed.notify_all()
                raise ConnectionError("the broker is down")
            self.batches.append(list(items))
            self._changed.notify_all()

    def wait_for(self, count: int) -> list:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.items) >= count, timeout=WAIT)
            return self.items

    @property
    def items(self) -> list:
        return [item for batch in self.batches for item in batch]


@pytest.fixture
def not_eager():
    app.conf.task_always_eager = False  # the autouse fixture of conftest restores it


def test_eager_runs_publish_at_once_in_the_callers_thread():
    collector = Collector()
    Batcher("eager", collector).submit(7)
    assert collector.batches == [[7]]
    assert collector.threads == {threading.current_thread().name}


def test_a_burst_is_published_in_order_in_few_batches_off_the_callers_thread(not_eager):
    collector = Collector()
    batcher = Batcher("burst", collector, max_batch=20, linger=0.5)
    for item in range(50):
        batcher.submit(item)

    assert collector.wait_for(50) == list(range(50))
    assert max(len(batch) for batch in collector.batches) <= 20
    assert len(collector.batches) < 50  # batched, not one publish per item
    assert collector.threads == {"batcher-burst"}


def test_a_failed_publish_does_not_stop_the_next_ones(not_eager):
    collector = Collector(fail_first=True)
    batcher = Batcher("flaky", collector)
    batcher.submit("lost")  # the sweep behind a batcher finds such items again
    with collector._changed:
        assert collector._changed.wait_for(lambda: collector.batches, timeout=WAIT)
    batcher.submit("next")
    assert collector.wait_for(1) == ["next"]


def test_the_handle_batcher_puts_one_task_call_per_batch_on_the_real_broker(not_eager):
    from kombu.serialization import loads

    from messaging.services import _handle_published

    batcher = Batcher("broker", _handle_published, max_batch=20, linger=0.5)
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        client.delete("celery")
        for message_id in (101, 102, 103):
            batcher.submit(message_id)
        calls: list = []
        while sum(len(ids) for ids in _ids(calls)) < 3:
            popped = client.brpop("celery", timeout=WAIT)  # blocks until a call is queued
            assert popped is not None, f"only {calls} were queued"
            calls.append(loads(popped[1], "application/json", "utf-8"))
    assert sorted(i for ids in _ids(calls) for i in ids) == [101, 102, 103]
    assert {call["headers"]["task"] for call in calls} <= {
        "messaging.tasks.conversations_handle",
        "messaging.tasks.conversation_handle",
    }


def _ids(calls: list) -> list[list[int]]:
    """The message ids each queued task call carries (Celery's message protocol 2)."""
    import base64
    import json

    found = []
    for call in calls:
        args = json.loads(base64.b64decode(call["body"]))[0]
        found.append(args[0] if isinstance(args[0], list) else [args[0]])
    return found
