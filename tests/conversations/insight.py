"""Helpers for the contacts, leads, privacy, statistics and API tests."""

from __future__ import annotations

from datetime import UTC, datetime

from rest_framework.test import APIClient

from chattonic.tenancy.models import Membership
from chattonic.tenancy.services import api_key_create, api_key_revoke
from conversations.models import Conversation, Message
from tests.conftest import api_client_for
from tests.factories import (
    BotFactory,
    ContactFactory,
    ConversationFactory,
    MembershipFactory,
    MessageFactory,
)


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2030, month, day, hour, minute, second, tzinfo=UTC)


def staff(tenant):
    return MembershipFactory(tenant=tenant, role=Membership.Role.ADMIN).user


def client_with(tenant, scopes, created_by=None) -> APIClient:
    return api_client_for(
        api_key_create(tenant=tenant, name="k", scopes=scopes, created_by=created_by)
    )


def auth_failures(tenant, method: str, url: str, payload=None, needs: str = "read"):
    """(status, code) of the request with no key, a revoked key and a key one scope short."""
    results = []
    anonymous = APIClient()
    results.append(_call(anonymous, method, url, payload))
    api_key, secret = api_key_create(tenant=tenant, name="gone", scopes=["admin"])
    api_key_revoke(api_key=api_key)
    results.append(_call(api_client_for((api_key, secret)), method, url, payload))
    short = {"read": None, "write": ["read"], "admin": ["write"]}[needs]
    if short is not None:
        results.append(_call(client_with(tenant, short), method, url, payload))
    return results


def _call(client, method, url, payload):
    response = getattr(client, method)(url, payload or {}, format="json")
    return response.status_code, response.json()["error"]["code"]


def expected_auth_failures(needs: str) -> list[tuple[int, str]]:
    expected = [(401, "not_authenticated"), (401, "revoked_api_key")]
    if needs != "read":
        expected.append((403, "permission_denied"))
    return expected


def conversation_with_messages(tenant, *, bot=None, contact=None, n_in=2, n_out=3, **kwargs):
    bot = bot or BotFactory(tenant=tenant)
    contact = contact or ContactFactory(tenant=tenant)
    conversation = ConversationFactory(tenant=tenant, bot=bot, contact=contact, **kwargs)
    created = kwargs.get("created_at")
    for _ in range(n_in):
        MessageFactory(
            tenant=tenant,
            conversation=conversation,
            direction=Message.Direction.IN,
            sender=Message.Sender.CONTACT,
            **({"created_at": created} if created else {}),
        )
    for _ in range(n_out):
        MessageFactory(
            tenant=tenant,
            conversation=conversation,
            direction=Message.Direction.OUT,
            sender=Message.Sender.BOT,
            status=Message.Status.SENT,
            **({"created_at": created} if created else {}),
        )
    return conversation


def snapshot_rows(*models) -> dict:
    """Every row of the models, as plain values: to assert that nothing changed."""
    return {
        model.__name__: sorted(map(repr, model.objects.values_list()))
        for model in models or (Conversation,)
    }
