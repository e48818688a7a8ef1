"""``/api/v1/tickets/``: list, report, read, comment; scopes; other tenants' tickets."""

from __future__ import annotations

import pytest

from chattonic.tenancy.services import api_key_create
from support import services
from support.models import Ticket, TicketComment
from tests.conftest import api_client_for
from tests.factories import BotFactory, ConversationFactory, TicketCommentFactory, TicketFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/tickets/"


def test_a_ticket_is_reported_through_the_api(api, tenant, django_capture_on_commit_callbacks):
    bot = BotFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            URL,
            {
                "title": "Messages arrive twice",
                "description": "Since 10:00 on WhatsApp.",
                "severity": "high",
                "reporter_email": "ops@shop.example.com",
                "bot": bot.pk,
            },
            format="json",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    ticket = Ticket.objects.get(pk=body["id"])
    assert (ticket.tenant, ticket.source, ticket.bot, ticket.severity) == (
        tenant,
        Ticket.Source.API,
        bot,
        "high",
    )
    assert ticket.reporter_name == "API key test"
    assert body["status"] == "open"
    assert body["first_response"]["state"] == "due"
    assert body["first_response"]["remaining_seconds"] > 0
    assert body["expectation"].startswith("Expect a first answer by ")


@pytest.mark.parametrize(
    "payload,field",
    [
        ({}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "severity": "doomsday"}, "severity"),
        ({"title": "ok", "reporter_email": "nope"}, "reporter_email"),
        ({"title": "ok", "bot": 999999}, "bot"),
    ],
)
def test_invalid_reports_name_the_field_and_write_nothing(api, payload, field):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert not Ticket.objects.exists()


def test_another_tenants_bot_or_conversation_is_an_unknown_id(api, other_tenant):
    for field, obj in (
        ("bot", BotFactory(tenant=other_tenant)),
        ("conversation", ConversationFactory(tenant=other_tenant)),
    ):
        response = api.post(URL, {"title": "x", field: obj.pk}, format="json")
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]
    assert not Ticket.objects.exists()


def test_list_and_read_show_only_the_tenants_tickets(api, tenant, other_tenant):
    mine = TicketFactory(tenant=tenant)
    theirs = TicketFactory(tenant=other_tenant)
    listing = api.get(URL)
    assert listing.status_code == 200
    assert [row["id"] for row in listing.json()["results"]] == [mine.pk]
    assert api.get(f"{URL}{mine.pk}/").json()["title"] == mine.title
    response = api.get(f"{URL}{theirs.pk}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_comments_show_no_internal_ones_and_can_be_added(
    api, tenant, django_capture_on_commit_callbacks
):
    ticket = TicketFactory(tenant=tenant)
    TicketCommentFactory(tenant=tenant, ticket=ticket, body="Public answer", origin="support")
    TicketCommentFactory(
        tenant=tenant, ticket=ticket, body="Internal note", origin="support", is_internal=True
    )
    listing = api.get(f"{URL}{ticket.pk}/comments/")
    assert [(c["body"], c["from_support"]) for c in listing.json()["results"]] == [
        ("Public answer", True)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{URL}{ticket.pk}/comments/", {"body": "Thanks!"}, format="json")
    assert response.status_code == 201
    comment = TicketComment.objects.get(pk=response.json()["id"])
    assert (comment.origin, comment.is_internal, comment.body) == ("tenant", False, "Thanks!")

    response = api.post(f"{URL}{ticket.pk}/comments/", {"body": ""}, format="json")
    assert response.status_code == 400 and "body" in response.json()["error"]["fields"]


def test_a_closed_ticket_refuses_comments_with_a_conflict(api, tenant):
    ticket = TicketFactory(tenant=tenant)
    services.ticket_status_change(ticket=ticket, status="closed", by_support=True)
    response = api.post(f"{URL}{ticket.pk}/comments/", {"body": "Hello?"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ticket_closed"
    assert not TicketComment.objects.exists()


def test_commenting_on_another_tenants_ticket_is_a_404(api, other_tenant):
    theirs = TicketFactory(tenant=other_tenant)
    response = api.post(f"{URL}{theirs.pk}/comments/", {"body": "hi"}, format="json")
    assert response.status_code == 404
    assert api.get(f"{URL}{theirs.pk}/comments/").status_code == 404
    assert not TicketComment.objects.exists()


def test_a_read_key_reads_but_does_not_report(tenant):
    reader = api_client_for(api_key_create(tenant=tenant, name="r", scopes=["read"]))
    assert reader.get(URL).status_code == 200
    response = reader.post(URL, {"title": "x"}, format="json")
    assert response.status_code == 403
    assert not Ticket.objects.exists()


def test_no_key_no_tickets(client):
    response = client.get(URL)
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_the_schema_documents_the_tickets_routes(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/tickets/{id}/comments/" in text
