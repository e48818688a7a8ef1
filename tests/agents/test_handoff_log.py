"""The dashboard's Handoff log: the visitors' handoffs, not the staff's test chats'."""

from __future__ import annotations

import pytest

from agents.models import HandoffEvent
from agents.services import conversation_hand_off
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

LOG = "/dashboard/agents/handoffevent/"


def _listed(client, query: str = "") -> set[int]:
    response = client.get(LOG + query)
    assert response.status_code == 200
    return {event.pk for event in response.context["cl"].result_list}


def test_a_test_chats_handoffs_are_hidden_until_asked_for(owner_client, tenant):
    """A test chat reaches no agent, yet its handoffs were listed beside the visitors'."""
    visitor = conversation_hand_off(
        conversation=ConversationFactory(tenant=tenant), reason=HandoffEvent.Reason.VISITOR_REQUEST
    )
    tested = conversation_hand_off(
        conversation=ConversationFactory(tenant=tenant, is_sandbox=True),
        reason=HandoffEvent.Reason.VISITOR_REQUEST,
    )
    real = HandoffEvent.objects.get(conversation=visitor)
    test = HandoffEvent.objects.get(conversation=tested)

    assert _listed(owner_client) == {real.pk}
    assert _listed(owner_client, "?test_chats=with") == {real.pk, test.pk}
    assert _listed(owner_client, "?test_chats=only") == {test.pk}
    assert "Without test chats" in owner_client.get(LOG).content.decode()
    assert owner_client.get(f"{LOG}{test.pk}/change/").status_code == 200  # opened by URL
