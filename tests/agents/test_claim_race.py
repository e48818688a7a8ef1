"""Twenty agents claim one conversation at the same instant: exactly one wins.

Twenty threads, each with its own database connection, released together by a barrier.
On PostgreSQL (the run with DATABASE_URL) the claims really overlap: the winner's
conditional UPDATE holds the row and the others find it no longer queued. On SQLite the
write lock (IMMEDIATE transactions) serialises them, so there the test checks that the
nineteen late claims are refused rather than the overlap itself.
"""

import itertools
import threading
import time

import pytest
from django.db import connection

from agents import services
from chattonic.core.errors import Conflict
from conversations.models import Conversation
from tests.factories import AgentProfileFactory, ConversationFactory, TenantFactory, launched_bot

CLAIMANTS = 20


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_claims_have_exactly_one_winner():
    tenant = TenantFactory()
    bot = launched_bot(tenant=tenant)
    conversation = ConversationFactory(tenant=tenant, bot=bot)
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.QUEUED)
    agents = [AgentProfileFactory(tenant=tenant).user for _ in range(CLAIMANTS)]
    barrier = threading.Barrier(CLAIMANTS)
    outcomes: list[str] = []
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def claim(agent):
        started = None
        try:
            barrier.wait()
            started = time.perf_counter()
            services.conversation_claim(conversation=conversation, agent=agent)
            result = f"won:{agent.pk}"
        except Conflict as exc:
            result = exc.code
        except Exception as exc:  # noqa: BLE001 - reported below
            result = f"error:{exc!r}"
        finally:
            ended = time.perf_counter()
            connection.close()
        with lock:
            outcomes.append(result)
            if started is not None:
                spans.append((started, ended))

    threads = [threading.Thread(target=claim, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(outcomes) == CLAIMANTS
    # The claims were in flight together (not one after the other).
    spans.sort()
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    assert len(winners) == 1, outcomes
    assert outcomes.count("already_assigned") == CLAIMANTS - 1, outcomes
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ASSIGNED
    assert f"won:{conversation.assigned_agent_id}" == winners[0]
    assert conversation.handoff_events.filter(reason="claim").count() == 1
