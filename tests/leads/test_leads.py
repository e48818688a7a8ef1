"""Leads: capture, status, the streamed CSV export (dashboard), the signed lead webhook."""

from __future__ import annotations

import csv
import io
import json
import socket

import pytest

from chattonic.core.errors import ValidationFailed
from chattonic.core.outbound import REFUSED
from leads import services as leads
from leads.models import Lead, LeadWebhook
from leads.services import lead_capture
from messaging.connectors.api import verify_signature
from tests.factories import (
    BotFactory,
    ContactFactory,
    ConversationFactory,
    LeadFactory,
    LeadWebhookFactory,
)
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
        ({"fields": {f"k{i}": "v" for i in range(51)}}, "fields"),  # docs: at most 50 fields
    ):
        with pytest.raises(ValidationFailed) as error:
            leads.lead_update(lead=lead, **kwargs)
        assert field in error.value.fields
    lead.refresh_from_db()
    assert lead.status == "qualified"
    fifty = {f"k{i}": "v" for i in range(50)}
    assert leads.lead_update(lead=lead, fields=fifty).fields == fifty


def test_the_csv_has_every_lead_and_defuses_formulas(tenant):
    contact = ContactFactory(tenant=tenant, name="=HYPERLINK(evil)", email="f@example.com")
    LeadFactory(tenant=tenant, contact=contact, fields={"note": "+1 call me", "n": "-3"})
    LeadFactory(tenant=tenant, contact=ContactFactory(tenant=tenant))
    body = "".join(leads.leads_csv(Lead.objects.for_tenant(tenant)))
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 2
    row = next(r for r in rows if r["contact_email"] == "f@example.com")
    assert row["contact_name"] == "'=HYPERLINK(evil)"
    assert '"note": "+1 call me"' in row["fields"]
    assert row["fields.note"] == "'+1 call me" and row["fields.n"] == "'-3"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_cell_a_visitor_typed_is_guarded_alike(tenant, start):
    """The phone as a field and as the contact's phone read the same: each cell a visitor
    or staff typed (name, email, phone, every field, the bot's name) is quoted when a
    spreadsheet would run it, a number-looking one too ("+34612345678" was left bare)."""
    value = f"{start}34612345678"
    contact = ContactFactory(tenant=tenant, name=value, email=value, phone=value)
    bot = BotFactory(tenant=tenant, name=value)
    LeadFactory(tenant=tenant, contact=contact, bot=bot, fields={"phone": value, "n": value})
    body = "".join(leads.leads_csv(Lead.objects.for_tenant(tenant)))
    (row,) = csv.DictReader(io.StringIO(body))
    typed = ["contact_name", "contact_email", "contact_phone", "bot_name"]
    for column in [*typed, "fields.phone", "fields.n"]:
        assert row[column] == "'" + value, column
    assert json.loads(row["fields"]) == {"phone": value, "n": value}  # programs get the raw


def test_the_csv_has_a_column_for_each_field_and_the_bots_name(tenant):
    """A spreadsheet reads each thing a lead told in its own column (they were one JSON
    cell) and the bot by its name; a lead without a field has that cell empty."""
    bot = BotFactory(tenant=tenant, name="Shop helper")
    LeadFactory(tenant=tenant, bot=bot, fields={"email": "a@example.com", "order": "1001"})
    LeadFactory(tenant=tenant, fields={"email": "b@example.com", "message": "Damaged, à moi"})
    body = "".join(leads.leads_csv(Lead.objects.for_tenant(tenant)))
    header = body.splitlines()[0].split(",")
    assert header[-4:] == ["fields.email", "fields.message", "fields.order", "fields"]
    rows = {r["fields.email"]: r for r in csv.DictReader(io.StringIO(body))}
    assert rows["a@example.com"]["fields.order"] == "1001"
    assert rows["a@example.com"]["fields.message"] == ""
    assert rows["a@example.com"]["bot_name"] == "Shop helper"
    assert rows["b@example.com"]["fields.message"] == "Damaged, à moi"
    assert rows["b@example.com"]["bot_name"] == ""


def test_the_dashboard_exports_the_selected_leads_streamed(owner_client, tenant, other_tenant):
    mine = LeadFactory(tenant=tenant)
    LeadFactory(tenant=tenant)
    response = owner_client.post(
        "/dashboard/leads/lead/", {"action": "export_csv", "_selected_action": [mine.pk]}
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(r["id"]) for r in rows] == [mine.pk]


def test_a_new_lead_is_posted_signed_to_the_tenants_webhook(
    tenant, other_tenant, settings, django_capture_on_commit_callbacks
):
    with FakeServer() as crm:
        crm.allow(settings)  # on 127.0.0.1: OUTBOUND_ALLOWED_HOSTS names it for the test
        crm.script(Answer(200, {"ok": True}))
        hook, secret = leads.lead_webhook_create(tenant=tenant, url=crm.base_url + "/leads")
        LeadWebhookFactory(tenant=other_tenant, url=crm.base_url + "/theirs")
        LeadWebhookFactory(tenant=tenant, url=crm.base_url + "/off", is_active=False)
        conversation = ConversationFactory(tenant=tenant)
        with django_capture_on_commit_callbacks(execute=True):
            lead = lead_capture(conversation=conversation, fields={"email": "g@example.com"})
        (request,) = crm.wait_for_requests(1)
    assert request.path == "/leads"
    assert request.headers["X-ChatTonic-Event"] == "lead.created"
    assert verify_signature(
        secret,
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


def test_a_429_or_5xx_is_retried_with_the_same_event_id_and_a_4xx_is_not(
    tenant, settings, django_capture_on_commit_callbacks, monkeypatch
):
    """docs/api.md: retried on 429 and 5xx; the event id (``lead-<lead>-<webhook>``) is the
    same on every retry. Tasks run eagerly here and, with eager errors not propagated, Celery
    runs each retry at once: they have all happened when the commit's callbacks return."""
    from chattonic.celery import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
    with FakeServer() as crm:
        crm.allow(settings)
        crm.script(Answer(503, {}), Answer(429, {}), Answer(200, {}))
        hook, _ = leads.lead_webhook_create(tenant=tenant, url=crm.base_url + "/leads")
        with django_capture_on_commit_callbacks(execute=True):
            lead = lead_capture(
                conversation=ConversationFactory(tenant=tenant), fields={"email": "r@example.com"}
            )
        retried = crm.requests
        crm.script(Answer(400, {}))
        with django_capture_on_commit_callbacks(execute=True):
            lead_capture(
                conversation=ConversationFactory(tenant=tenant), fields={"email": "s@example.com"}
            )
        refused = crm.requests[len(retried) :]
    assert len(retried) == 3
    expected = f"lead-{lead.pk}-{hook.pk}"
    assert {r.headers["X-ChatTonic-Event-Id"] for r in retried} == {expected}
    assert {r.json["id"] for r in retried} == {expected}
    assert len(refused) == 1
    hook.refresh_from_db()
    assert hook.last_status == "HTTP 400"


# --- The signing secret: encrypted at rest, shown once ----------------------------------------

ADD = "/dashboard/leads/leadwebhook/add/"


def stored_columns() -> str:
    """Every stored value of every lead webhook, as text."""
    return repr(list(LeadWebhook.objects.values()))


def test_the_dashboard_shows_a_new_signing_secret_once_and_stores_it_encrypted(
    owner_client, tenant
):
    response = owner_client.post(
        ADD, {"url": "https://crm.example.com/leads", "is_active": "on"}, follow=True
    )
    hook = LeadWebhook.objects.get()
    secret = leads.lead_webhook_signing_secret(hook)
    assert hook.tenant == tenant and len(secret) >= 32
    assert secret in response.content.decode()  # shown once, in the message after saving
    assert secret not in stored_columns()  # encrypted at rest
    change = owner_client.get(f"/dashboard/leads/leadwebhook/{hook.pk}/change/")
    assert change.status_code == 200 and secret not in change.content.decode()
    listing = owner_client.get("/dashboard/leads/leadwebhook/")
    assert secret not in listing.content.decode()


def test_a_new_secret_replaces_a_lost_one(owner_client, tenant):
    hook, old = leads.lead_webhook_create(tenant=tenant, url="https://crm.example.com/leads")
    response = owner_client.post(
        "/dashboard/leads/leadwebhook/",
        {"action": "renew_secret", "_selected_action": [hook.pk]},
        follow=True,
    )
    new = leads.lead_webhook_signing_secret(LeadWebhook.objects.get(pk=hook.pk))
    assert new != old and new in response.content.decode()
    assert old not in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://10.0.0.5/leads",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:6379/",
        "http://localhost:5432/",
    ],
)
def test_an_internal_address_is_refused_when_saved_naming_the_field(owner_client, tenant, url):
    with pytest.raises(ValidationFailed) as caught:
        leads.lead_webhook_create(tenant=tenant, url=url)
    assert list(caught.value.fields) == ["url"]
    response = owner_client.post(ADD, {"url": url, "is_active": "on"})
    assert response.status_code == 200  # the form again, with the error on the URL
    assert response.context["adminform"].form.errors["url"] == [
        "Private, loopback, link-local and reserved addresses are not allowed."
    ]
    assert not LeadWebhook.objects.exists()


def test_a_name_resolving_inside_is_refused_alike_for_an_open_and_a_closed_port(
    tenant, monkeypatch, django_capture_on_commit_callbacks
):
    """The URL passes the save-time check (a name), its name resolves to 127.0.0.1, and the
    worker refuses it when connecting: the status is the same whether a server listens on
    the port or not, no request reaches the open one, and no retry is planned."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        return real("127.0.0.1" if host == "crm.attacker.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    closed = FakeServer().start()
    closed_port = closed.port
    closed.stop()
    with FakeServer() as opened:
        for port in (opened.port, closed_port):
            leads.lead_webhook_create(tenant=tenant, url=f"http://crm.attacker.test:{port}/")
        with django_capture_on_commit_callbacks(execute=True):
            lead_capture(
                conversation=ConversationFactory(tenant=tenant), fields={"email": "x@example.com"}
            )
        assert opened.requests == []
    statuses = set(LeadWebhook.objects.values_list("last_status", flat=True))
    assert statuses == {REFUSED}


def test_a_failed_delivery_keeps_no_token_of_the_url(
    tenant, settings, caplog, django_capture_on_commit_callbacks
):
    closed = FakeServer().start()
    closed.allow(settings)
    url = f"{closed.root_url}/leads?access_token=crm-token-123456"
    closed.stop()  # nothing listens there now: the request fails with a connection error
    hook, _ = leads.lead_webhook_create(tenant=tenant, url=url)
    with django_capture_on_commit_callbacks(execute=True):
        lead_capture(conversation=ConversationFactory(tenant=tenant), fields={"email": "y@x.io"})
    hook.refresh_from_db()
    assert hook.last_status and "crm-token-123456" not in hook.last_status
    assert "crm-token-123456" not in caplog.text
    assert "lead webhook" in caplog.text  # the failure itself was logged


def test_no_webhook_no_delivery(tenant, django_capture_on_commit_callbacks):
    conversation = ConversationFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lead_capture(conversation=conversation, fields={"email": "h@example.com"})
    assert callbacks == []
    assert not LeadWebhook.objects.exists()
