"""``/api/v1/leads/`` (CRUD) and ``/api/v1/leads/export/`` (CSV); scopes; other tenants."""

from __future__ import annotations

import csv
import io

import pytest

from contacts.models import Contact
from leads.models import Lead
from tests.conversations.insight import (
    auth_failures,
    expected_auth_failures,
    snapshot_rows,
)
from tests.factories import ContactFactory, ConversationFactory, LeadFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/leads/"


def test_create_for_a_contact_or_by_email(api, tenant):
    contact = ContactFactory(tenant=tenant)
    conversation = ConversationFactory(tenant=tenant, contact=contact)
    response = api.post(
        URL,
        {"contact": contact.pk, "conversation": conversation.pk, "fields": {"budget": "10k"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    lead = Lead.objects.get(pk=response.json()["id"])
    assert (lead.source, lead.bot_id, lead.fields) == (
        "api",
        conversation.bot_id,
        {"budget": "10k"},
    )

    known = ContactFactory(tenant=tenant, email="known@example.com")
    by_email = api.post(URL, {"email": "KNOWN@example.com", "status": "qualified"}, format="json")
    assert by_email.status_code == 201 and by_email.json()["contact"] == known.pk
    new = api.post(URL, {"email": "new@example.com", "name": "Nia"}, format="json")
    assert Contact.objects.get(pk=new.json()["contact"]).name == "Nia"
    from_conversation = api.post(URL, {"conversation": conversation.pk}, format="json")
    assert from_conversation.status_code == 201
    assert from_conversation.json()["contact"] == contact.pk


@pytest.mark.parametrize(
    "payload,field",
    [
        ({}, "contact"),
        ({"email": "bad"}, "email"),
        ({"contact": 999999}, "contact"),
        ({"email": "a@example.com", "status": "hot"}, "status"),
        ({"email": "a@example.com", "fields": ["x"]}, "fields"),
        ({"email": "a@example.com", "conversation": 999999}, "conversation"),
    ],
)
def test_invalid_creates_name_the_field_and_write_nothing(api, tenant, payload, field):
    before = snapshot_rows(Lead, Contact)
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert snapshot_rows(Lead, Contact) == before


def test_another_tenants_contact_or_conversation_is_an_unknown_id(api, tenant, other_tenant):
    for payload, field in (
        ({"contact": ContactFactory(tenant=other_tenant).pk}, "contact"),
        (
            {"email": "a@example.com", "conversation": ConversationFactory(tenant=other_tenant).pk},
            "conversation",
        ),
    ):
        response = api.post(URL, payload, format="json")
        assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert not Lead.objects.filter(tenant=tenant).exists()


def test_list_filter_update_delete(api, tenant):
    won = LeadFactory(tenant=tenant, status="won")
    fresh = LeadFactory(tenant=tenant)
    LeadFactory(tenant=tenant, conversation=ConversationFactory(tenant=tenant, is_sandbox=True))
    assert {r["id"] for r in api.get(URL).json()["results"]} == {won.pk, fresh.pk}
    assert [r["id"] for r in api.get(URL, {"status": "won"}).json()["results"]] == [won.pk]
    assert api.get(URL, {"status": "warm"}).status_code == 400
    response = api.patch(f"{URL}{fresh.pk}/", {"status": "contacted"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "contacted"
    bad = api.patch(f"{URL}{fresh.pk}/", {"status": "warm"}, format="json")
    assert bad.status_code == 400 and "status" in bad.json()["error"]["fields"]
    assert api.delete(f"{URL}{won.pk}/").status_code == 204
    assert not Lead.objects.filter(pk=won.pk).exists()


def test_export_streams_csv_of_this_tenant_only(api, tenant, other_tenant):
    mine = LeadFactory(tenant=tenant, status="won")
    LeadFactory(tenant=tenant)
    LeadFactory(tenant=other_tenant)
    response = api.get(f"{URL}export/", {"status": "won"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(r["id"]) for r in rows] == [mine.pk]
    everything = api.get(f"{URL}export/", HTTP_ACCEPT="text/csv")
    assert everything.status_code == 200
    assert len(b"".join(everything.streaming_content).decode().splitlines()) == 3
    bad = api.get(f"{URL}export/", {"created_after": "soon"})
    assert bad.status_code == 400 and "created_after" in bad.json()["error"]["fields"]


@pytest.mark.parametrize(
    "method,path,payload,needs",
    [
        ("get", "", None, "read"),
        ("post", "", {"email": "x@example.com"}, "write"),
        ("get", "{id}/", None, "read"),
        ("patch", "{id}/", {"status": "won"}, "write"),
        ("put", "{id}/", {"status": "won"}, "write"),
        ("delete", "{id}/", None, "write"),
        ("get", "export/", None, "read"),
    ],
)
def test_auth_failures(tenant, method, path, payload, needs):
    lead = LeadFactory(tenant=tenant)
    before = snapshot_rows(Lead)
    url = URL + path.format(id=lead.pk)
    assert auth_failures(tenant, method, url, payload, needs) == expected_auth_failures(needs)
    assert snapshot_rows(Lead) == before


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_another_tenants_lead_is_a_404_and_unchanged(api, other_tenant, method):
    theirs = LeadFactory(tenant=other_tenant)
    before = snapshot_rows(Lead)
    response = getattr(api, method)(f"{URL}{theirs.pk}/", {"status": "lost"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert snapshot_rows(Lead) == before
