"""Leads: capture, status, the streamed CSV export (dashboard), the signed lead webhook."""

from __future__ import annotations

import csv
import io

import pytest

from chattonic.core.errors import ValidationFailed
from conversations import leads
from conversations.connectors.api import verify_signature
from conversations.models import Lead, LeadWebhook
from conversations.services import lead_capture
from tests.factories import ContactFactory, ConversationFactory, LeadFactory, LeadWebhookFactory
from tests.fakes.server import Answer, FakeServer

pytestmark = pytest.mark.django_db


def test_the_sandbox_records_no_lead(tenant):
    conversation = ConversationFactory(tenant=tenant, is_sandbox=True)
    assert lead_capture(conversation=conversation, fields={"email": "a@example.com"}) is None
    assert not Lead.objects.exists()


def test_status_and_fields_are_validated(tenant):
    lead = LeadFactory(tenant=tenant)
    assert leads.lead_update(lead=lead, status="qualified").status == "qualified"
    for kwargs, field in (
        ({"status": "maybe"}, "status"),
        ({"fields": ["x"]}, "fields"),
        ({"fields": {"a": "x" * 1001}}, "fields"),
    ):
        with pytest.raises(ValidationFailed) as error:
            leads.lead_update(lead=lead, **kwargs)
        assert field in error.value.fields
    lead.refresh_from_db()
    assert lead.status == "qualified"


def test_the_csv_has_every_lead_and_defuses_formulas(tenant):
    contact = ContactFactory(tenant=tenant, name="=HYPERLINK(evil)", email="f@example.com")
    LeadFactory(tenant=tenant, contact=contact, fields={"note": "+1 call me", "n": "-3"})
    LeadFactory(tenant=tenant, contact=ContactFactory(tenant=tenant))
    body = "".join(leads.leads_csv(leads.leads_for_export(Lead.objects.for_tenant(tenant))))
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 2
    row = next(r for r in rows if r["contact_email"] == "f@example.com")
    assert row["contact_name"] == "'=HYPERLINK(evil)"
    assert '"note": "+1 call me"' in row["fields"]


def test_the_dashboard_exports_the_selected_leads_streamed(owner_client, tenant, other_tenant):
    mine = LeadFactory(tenant=tenant)
    LeadFactory(tenant=tenant)
    response = owner_client.post(
        "/dashboard/conversations/lead/", {"action": "export_csv", "_selected_action": [mine.pk]}
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(r["id"]) for r in rows] == [mine.pk]


def test_a_new_lead_is_posted_signed_to_the_tenants_webhook(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    with FakeServer() as crm:
        crm.script(Answer(200, {"ok": True}))
        hook = LeadWebhookFactory(tenant=tenant, url=crm.base_url + "/leads")
        LeadWebhookFactory(tenant=other_tenant, url=crm.base_url + "/theirs")
        LeadWebhookFactory(tenant=tenant, url=crm.base_url + "/off", is_active=False)
        conversation = ConversationFactory(tenant=tenant)
        with django_capture_on_commit_callbacks(execute=True):
            lead = lead_capture(conversation=conversation, fields={"email": "g@example.com"})
        (request,) = crm.wait_for_requests(1)
    assert request.path == "/leads"
    assert request.headers["X-ChatTonic-Event"] == "lead.created"
    assert verify_signature(
        hook.signing_secret,
        request.headers["X-ChatTonic-Timestamp"],
        request.body,
        request.headers["X-ChatTonic-Signature"],
    )
    assert not verify_signature(
        "wrong",
        request.headers["X-ChatTonic-Timestamp"],
        request.body,
        request.headers["X-ChatTonic-Signature"],
    )
    event = request.json
    assert event["type"] == "lead.created" and event["data"]["id"] == lead.pk
    assert event["data"]["fields"]["email"] == "g@example.com"
    assert event["data"]["contact"]["id"] == conversation.contact_id
    hook.refresh_from_db()
    assert hook.last_status == "HTTP 200"


def test_no_webhook_no_delivery(tenant, django_capture_on_commit_callbacks):
    conversation = ConversationFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lead_capture(conversation=conversation, fields={"email": "h@example.com"})
    assert callbacks == []
    assert not LeadWebhook.objects.exists()
