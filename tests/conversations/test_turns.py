"""conversations.turns: the web chat's group commit. Messages that wait together run in one
transaction; a batch with a failing message is rolled back and each of its messages runs
alone, so only the failing one is lost (its caller gets the error)."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from chattonic.core.errors import ValidationFailed
from contacts.models import Contact
from conversations.turns import TurnBatcher, in_one_transaction
from tests.factories import TenantFactory
from webchat.consumers import message_sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_the_threads_connection():
    yield
    await database_sync_to_async(connections.close_all)()


class Batcher(TurnBatcher):
    """A group commit of plain works, as the web chat's lane runs the receive service's
    batches: all in one transaction, or, when that fails, each in its own."""

    async def _process(self, works):
        return await self._to_thread(run_works)(works)


def run_works(works):
    if len(works) > 1:
        results, _ = in_one_transaction(works)
        if results is not None:
            return [(True, result) for result in results]
    outcomes = []
    for work in works:
        results, error = in_one_transaction([work])
        outcomes.append((True, results[0]) if results is not None else (False, error))
    return outcomes


class Recording:
    """message_sync_to_async, noting how many works each hop to the database thread ran."""

    def __init__(self):
        self.batches: list[int] = []

    def __call__(self, func):
        def counted(works):
            self.batches.append(len(works))
            return func(works)

        return message_sync_to_async(counted)


def writes(tenant_id: int, name: str, fail: bool = False):
    def work():
        Contact.objects.create(tenant_id=tenant_id, name=name)
        if fail:
            raise ValidationFailed.for_field("text", "A message needs some text.")
        return name

    return work


async def test_messages_waiting_together_run_in_one_batch_in_order():
    tenant = await database_sync_to_async(TenantFactory)()
    hops = Recording()
    batcher = Batcher(hops)
    names = [f"visitor {n}" for n in range(5)]

    results = await asyncio.gather(*(batcher.run(writes(tenant.pk, name)) for name in names))

    assert results == names
    assert hops.batches == [1, 4]  # the first goes at once; the others gathered behind it
    stored = await database_sync_to_async(
        lambda: list(Contact.objects.filter(tenant=tenant).order_by("id").values_list("name"))
    )()
    assert [name for (name,) in stored] == names


async def test_a_failing_message_costs_only_itself():
    tenant = await database_sync_to_async(TenantFactory)()
    batcher = Batcher(Recording())
    works = [
        writes(tenant.pk, "first"),  # runs alone: the others queue behind it
        writes(tenant.pk, "second"),
        writes(tenant.pk, "broken", fail=True),
        writes(tenant.pk, "third"),
    ]

    results = await asyncio.gather(*(batcher.run(work) for work in works), return_exceptions=True)

    assert results[:2] == ["first", "second"] and results[3] == "third"
    assert isinstance(results[2], ValidationFailed)
    stored = await database_sync_to_async(
        lambda: sorted(Contact.objects.filter(tenant=tenant).values_list("name", flat=True))
    )()
    assert stored == ["first", "second", "third"]  # the broken one's row was rolled back


async def test_a_batch_runs_each_conversations_messages_in_order_sorted_by_conversation():
    tenant = await database_sync_to_async(TenantFactory)()
    batcher = Batcher(Recording())
    keys = [0, 9, 3, 9, 3]  # the first runs alone; the rest: 3, 3, 9, 9 in arrival order
    names = ["opener", "nine-a", "three-a", "nine-b", "three-b"]

    await asyncio.gather(
        *(
            batcher.run(writes(tenant.pk, name), key=key)
            for key, name in zip(keys, names, strict=True)
        )
    )

    stored = await database_sync_to_async(
        lambda: list(Contact.objects.filter(tenant=tenant).order_by("id").values_list("name"))
    )()
    assert [name for (name,) in stored] == ["opener", "three-a", "three-b", "nine-a", "nine-b"]


async def test_a_callback_failing_after_the_commit_leaves_the_batch_standing():
    """A broker outage after the commit (an on_commit publish raising) is not a failed batch:
    the messages are stored once and their callers get their results."""
    from django.db import transaction

    tenant = await database_sync_to_async(TenantFactory)()
    hops = Recording()
    batcher = Batcher(hops)

    def broker_down():
        raise ConnectionError("the broker is down")

    def publishing(name):
        def work():
            Contact.objects.create(tenant_id=tenant.pk, name=name)
            transaction.on_commit(broker_down)
            return name

        return work

    names = ["lone", "a", "b", "c"]
    results = await asyncio.gather(
        *(batcher.run(publishing(name)) for name in names), return_exceptions=True
    )

    assert results == names  # the lone one and the batch of three stand
    assert hops.batches == [1, 3]  # and was not run again message by message
    stored = await database_sync_to_async(
        lambda: sorted(Contact.objects.filter(tenant=tenant).values_list("name", flat=True))
    )()
    assert stored == ["a", "b", "c", "lone"]
