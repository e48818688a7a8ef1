"""Contacts: merged by staff only; what a visitor types is a claim that merges nothing."""

from __future__ import annotations

import pytest

from chattonic.core.errors import NotFound, ValidationFailed
from contacts import services as contacts
from contacts.models import Contact, ContactIdentity
from conversations.models import Conversation
from leads.models import Lead
from leads.services import lead_capture
from tests.factories import (
    ContactFactory,
    ContactIdentityFactory,
    ConversationFactory,
    LeadFactory,
)

pytestmark = pytest.mark.django_db


def test_merge_moves_identities_conversations_and_leads(tenant):
    target = ContactFactory(tenant=tenant, name="", email="ann@example.com", phone="")
    source = ContactFactory(tenant=tenant, name="Ann", email="", phone="+4420794600")
    ContactIdentityFactory(tenant=tenant, contact=target)
    ContactIdentityFactory(tenant=tenant, contact=source, kind="telegram", external_id="42")
    conversations = [ConversationFactory(tenant=tenant, contact=c) for c in (target, source)]
    lead = LeadFactory(tenant=tenant, contact=source)

    merged = contacts.contact_merge(target=target, source=source)

    assert merged.pk == target.pk
    assert set(
        Conversation.objects.filter(pk__in=[c.pk for c in conversations]).values_list(
            "contact_id", flat=True
        )
    ) == {target.pk}
    assert ContactIdentity.objects.filter(contact=target).count() == 2
    assert Lead.objects.get(pk=lead.pk).contact_id == target.pk
    target.refresh_from_db()
    source.refresh_from_db()
    assert (target.name, target.email, target.phone) == ("Ann", "ann@example.com", "+4420794600")
    assert source.merged_into_id == target.pk
    assert (source.name, source.email, source.phone) == ("", "", "")


def test_merge_refuses_itself_other_tenants_and_merged_contacts(tenant, other_tenant):
    a, b = ContactFactory(tenant=tenant), ContactFactory(tenant=tenant)
    with pytest.raises(ValidationFailed) as error:
        contacts.contact_merge(target=a, source=a)
    assert "source" in error.value.fields
    with pytest.raises(NotFound):
        contacts.contact_merge(target=a, source=ContactFactory(tenant=other_tenant))
    contacts.contact_merge(target=a, source=b)
    with pytest.raises(ValidationFailed):
        contacts.contact_merge(target=a, source=Contact.objects.get(pk=b.pk))


def test_a_flow_capturing_a_known_email_merges_nothing(tenant):
    """A typed email is a claim: the lead records it, the contacts stay apart."""
    known = ContactFactory(tenant=tenant, email="bob@example.com", name="Bob")
    old_conversation = ConversationFactory(tenant=tenant, contact=known)
    visitor = ContactFactory(tenant=tenant, email="", name="")
    ContactIdentityFactory(tenant=tenant, contact=visitor, external_id="visitor-1")
    conversation = ConversationFactory(tenant=tenant, contact=visitor)

    lead = lead_capture(conversation=conversation, fields={"email": " Bob@Example.com "})

    assert lead.contact_id == visitor.pk and lead.fields == {"email": " Bob@Example.com "}
    assert conversation.contact_id == visitor.pk
    assert list(Conversation.objects.filter(contact=known).values_list("pk", flat=True)) == [
        old_conversation.pk
    ]
    assert ContactIdentity.objects.get(external_id="visitor-1").contact_id == visitor.pk
    assert not Contact.objects.filter(merged_into__isnull=False).exists()
    visitor.refresh_from_db()
    assert visitor.email == "bob@example.com"  # the visitor's own claim, on their own contact


def test_a_known_phone_in_another_format_merges_nothing_either(tenant):
    known = ContactFactory(tenant=tenant, email="", phone="+442079460958")
    conversation = ConversationFactory(tenant=tenant, contact=ContactFactory(tenant=tenant))
    lead = lead_capture(conversation=conversation, fields={"phone": "0044 20 7946-0958"})
    assert lead.contact_id == conversation.contact_id != known.pk
    assert not Contact.objects.filter(merged_into__isnull=False).exists()


def test_a_claim_never_overwrites_a_contacts_details(tenant):
    contact = ContactFactory(tenant=tenant, name="Dee", email="dee@example.com", phone="")
    conversation = ConversationFactory(tenant=tenant, contact=contact)
    lead_capture(
        conversation=conversation,
        fields={"name": "Eve", "email": "eve@example.com", "phone": "+34600000000"},
    )
    contact.refresh_from_db()
    assert (contact.name, contact.email, contact.phone) == (
        "Dee",
        "dee@example.com",
        "+34600000000",
    )


def test_a_new_email_stays_on_the_contact_and_merges_nothing(tenant):
    ContactFactory(tenant=tenant, email="someone@example.com")
    contact = ContactFactory(tenant=tenant, email="")
    conversation = ConversationFactory(tenant=tenant, contact=contact)
    lead = lead_capture(conversation=conversation, fields={"email": "New@Example.com"})
    contact.refresh_from_db()
    assert lead.contact_id == contact.pk and contact.email == "new@example.com"
    assert Contact.objects.filter(merged_into__isnull=False).count() == 0


def test_another_tenants_contact_with_the_same_email_is_never_merged(tenant, other_tenant):
    ContactFactory(tenant=other_tenant, email="carl@example.com")
    conversation = ConversationFactory(tenant=tenant)
    lead = lead_capture(conversation=conversation, fields={"email": "carl@example.com"})
    assert lead.contact.tenant_id == tenant.pk
    assert Contact.objects.filter(merged_into__isnull=False).count() == 0


def test_update_validates_and_merges_on_a_known_email(tenant):
    older = ContactFactory(tenant=tenant, email="dee@example.com")
    newer = ContactFactory(tenant=tenant, email="")
    with pytest.raises(ValidationFailed) as error:
        contacts.contact_update(contact=newer, email="not-an-email")
    assert "email" in error.value.fields
    with pytest.raises(ValidationFailed) as error:
        contacts.contact_update(contact=newer, phone="12")
    assert "phone" in error.value.fields
    live = contacts.contact_update(contact=newer, email="DEE@example.com")
    assert live.pk == older.pk


def test_update_merges_on_a_known_phone_compared_by_its_digits(tenant):
    """docs/api.md: phones compare by digits (``+44 20…``, ``0044 20…``)."""
    older = ContactFactory(tenant=tenant, email="", phone="+442079460958")
    newer = ContactFactory(tenant=tenant, email="", phone="")
    live = contacts.contact_update(contact=newer, phone="0044 20 7946-0958")
    assert live.pk == older.pk
    newer.refresh_from_db()
    assert newer.merged_into_id == older.pk


def test_dashboard_merges_the_selected_contacts_into_the_oldest(owner_client, tenant):
    first = ContactFactory(tenant=tenant)
    second = ContactFactory(tenant=tenant)
    conversation = ConversationFactory(tenant=tenant, contact=second)
    response = owner_client.post(
        "/dashboard/contacts/contact/",
        {"action": "merge_contacts", "_selected_action": [first.pk, second.pk]},
    )
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.contact_id == first.pk
    assert Contact.objects.get(pk=second.pk).merged_into_id == first.pk


def test_a_contacts_page_links_to_their_conversations_and_their_leads(owner_client, tenant):
    """From a customer to their chats and leads, by the contact page's links: each list
    shows that contact's only."""
    import re

    vera = ContactFactory(tenant=tenant, name="Vera Visitor")
    other = ContactFactory(tenant=tenant, name="Otto Other")
    theirs = {ConversationFactory(tenant=tenant, contact=vera).pk for _ in range(2)}
    ConversationFactory(tenant=tenant, contact=other)
    lead = LeadFactory(tenant=tenant, contact=vera)
    LeadFactory(tenant=tenant, contact=other)

    page = owner_client.get(f"/dashboard/contacts/contact/{vera.pk}/change/").content.decode()
    links = {
        text: href.replace("&amp;", "&")
        for href, text in re.findall(r'<a href="([^"]+)">(Their [a-z]+)</a>', page)
    }
    assert set(links) == {"Their conversations", "Their leads"}
    conversations = owner_client.get(links["Their conversations"])
    assert conversations.status_code == 200
    assert {c.pk for c in conversations.context["cl"].result_list} == theirs
    leads = owner_client.get(links["Their leads"])
    assert [x.pk for x in leads.context["cl"].result_list] == [lead.pk]
