"""The dashboard's Contacts list: the visitors, not the staff's test chats."""

from __future__ import annotations

import pytest

from bots.models import Bot
from conversations.services import SANDBOX_CONTACT_NAME, webchat_open
from tests.factories import ContactFactory, ConversationFactory, launched_bot

pytestmark = pytest.mark.django_db

CONTACTS = "/dashboard/contacts/contact/"


def _listed(client, query: str = "") -> set[int]:
    response = client.get(CONTACTS + query)
    assert response.status_code == 200
    return {contact.pk for contact in response.context["cl"].result_list}


def test_contacts_of_test_chats_only_are_hidden_until_asked_for(owner_client, tenant):
    """The bot page's test chat made a "Test chat visitor" row per chat, among the visitors
    (its page says test chats reach no statistics, exports, channels or tickets)."""
    bot = Bot.objects.get(pk=launched_bot(tenant=tenant).pk)
    tester = webchat_open(bot=bot, visitor_id="s" * 32, sandbox=True)[0].contact
    assert tester.name == SANDBOX_CONTACT_NAME
    visitor = webchat_open(bot=bot, visitor_id="v" * 32)[0].contact
    both = ContactFactory(tenant=tenant)  # tested, and talked for real too: a contact
    ConversationFactory(tenant=tenant, bot=bot, contact=both, is_sandbox=True)
    ConversationFactory(tenant=tenant, bot=bot, contact=both)
    by_api = ContactFactory(tenant=tenant)  # no conversation yet (the API made it)

    real = {visitor.pk, both.pk, by_api.pk}
    assert _listed(owner_client) == real
    assert _listed(owner_client, "?test_chats=with") == real | {tester.pk}
    assert _listed(owner_client, "?test_chats=only") == {tester.pk}
    page = owner_client.get(CONTACTS).content.decode()
    assert "Without test chats" in page and "3 contacts" in page
    # Its own page still opens by its URL (a link from the test chat's conversation).
    opened = owner_client.get(f"{CONTACTS}{tester.pk}/change/")
    assert opened.status_code == 200 and SANDBOX_CONTACT_NAME in opened.content.decode()
