"""``/api/v1/contacts/``: read, update, merge, export, erase; scopes; other tenants; input."""

from __future__ import annotations

import pytest

from contacts.models import Contact
from conversations.models import Conversation, Message
from privacy.models import PrivacyAudit
from tests.conversations.insight import (
    auth_failures,
    conversation_with_messages,
    expected_auth_failures,
    snapshot_rows,
)
from tests.factories import ContactFactory, ContactIdentityFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts/"


def test_list_filter_and_read(api, tenant, other_tenant):
    ann = ContactFactory(tenant=tenant, email="ann@example.com", phone="+441234567")
    ContactIdentityFactory(tenant=tenant, contact=ann, external_id="v1")
    ContactFactory(tenant=tenant)
    ContactFactory(tenant=other_tenant, email="ann@example.com")
    rows = api.get(URL, {"email": "ANN@example.com"}).json()["results"]
    assert [r["id"] for r in rows] == [ann.pk]
    assert [r["id"] for r in api.get(URL, {"phone": "+44 1234 567"}).json()["results"]] == [ann.pk]
    body = api.get(f"{URL}{ann.pk}/").json()
    assert body["identities"][0]["external_id"] == "v1"


def test_update_and_validation(api, tenant):
    contact = ContactFactory(tenant=tenant, name="Old")
    response = api.patch(
        f"{URL}{contact.pk}/", {"name": "New", "attributes": {"vip": True}}, format="json"
    )
    assert response.status_code == 200, response.json()
    contact.refresh_from_db()
    assert (contact.name, contact.attributes) == ("New", {"vip": True})
    before = snapshot_rows(Contact)
    for payload, field in (
        ({"email": "nope"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"name": "x" * 300}, "name"),
        ({"attributes": "flat"}, "attributes"),
    ):
        response = api.patch(f"{URL}{contact.pk}/", payload, format="json")
        assert response.status_code == 400, payload
        assert field in response.json()["error"]["fields"]
    assert snapshot_rows(Contact) == before


def test_merge_keeps_every_conversation(api, tenant):
    target, source = ContactFactory(tenant=tenant), ContactFactory(tenant=tenant)
    conversations = [conversation_with_messages(tenant, contact=c) for c in (target, source)]
    response = api.post(f"{URL}{target.pk}/merge/", {"source": source.pk}, format="json")
    assert response.status_code == 200, response.json()
    assert set(Conversation.objects.filter(contact=target).values_list("pk", flat=True)) == {
        c.pk for c in conversations
    }
    assert api.get(f"{URL}{source.pk}/").status_code == 404  # it lives on in the target


def test_merge_validation_writes_nothing(api, tenant, other_tenant):
    target = ContactFactory(tenant=tenant)
    theirs = ContactFactory(tenant=other_tenant)
    before = snapshot_rows(Contact, Conversation)
    for payload in (
        {},
        {"source": "x"},
        {"source": 999999},
        {"source": theirs.pk},
        {"source": target.pk},
    ):
        response = api.post(f"{URL}{target.pk}/merge/", payload, format="json")
        assert response.status_code == 400, payload
        assert "source" in response.json()["error"]["fields"]
    assert snapshot_rows(Contact, Conversation) == before


def test_export_and_erase(api, tenant):
    contact = ContactFactory(tenant=tenant, email="zed@example.com")
    conversation_with_messages(tenant, contact=contact)
    export = api.get(f"{URL}{contact.pk}/export/")
    assert export.status_code == 200
    assert export.json()["contact"]["email"] == "zed@example.com"
    assert len(export.json()["conversations"][0]["messages"]) == 5
    erase = api.post(f"{URL}{contact.pk}/erase/", {}, format="json")
    assert erase.status_code == 200
    assert erase.json()["summary"]["messages"] == 5
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert not Message.objects.exists()
    assert list(PrivacyAudit.objects.values_list("action", "door")) == [
        ("erase", "api"),
        ("export", "api"),
    ]


@pytest.mark.parametrize(
    "method,path,payload,needs",
    [
        ("get", "", None, "read"),
        ("get", "{id}/", None, "read"),
        ("patch", "{id}/", {"name": "x"}, "write"),
        ("put", "{id}/", {"name": "x"}, "write"),
        ("post", "{id}/merge/", {"source": 1}, "write"),
        ("get", "{id}/export/", None, "admin"),
        ("post", "{id}/erase/", {}, "admin"),
    ],
)
def test_auth_failures(tenant, method, path, payload, needs):
    contact = ContactFactory(tenant=tenant)
    before = snapshot_rows(Contact, PrivacyAudit)
    url = URL + path.format(id=contact.pk)
    assert auth_failures(tenant, method, url, payload, needs) == expected_auth_failures(needs)
    assert snapshot_rows(Contact, PrivacyAudit) == before


@pytest.mark.parametrize(
    "method,path,payload",
    [
        ("get", "{id}/", None),
        ("patch", "{id}/", {"name": "hijacked"}),
        ("post", "{id}/merge/", {"source": 1}),
        ("get", "{id}/export/", None),
        ("post", "{id}/erase/", {}),
    ],
)
def test_another_tenants_contact_is_a_404_and_unchanged(
    api, tenant, other_tenant, method, path, payload
):
    theirs = ContactFactory(tenant=other_tenant)
    conversation_with_messages(other_tenant, contact=theirs)
    mine = ContactFactory(tenant=tenant)
    payload = {"source": mine.pk} if payload and "source" in payload else payload
    before = snapshot_rows(Contact, Conversation, Message, PrivacyAudit)
    response = getattr(api, method)(URL + path.format(id=theirs.pk), payload or {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert snapshot_rows(Contact, Conversation, Message, PrivacyAudit) == before
