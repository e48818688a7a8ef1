"""The dashboard's support: "Report a problem", following a ticket, operators answering it,
and the Trello mirror's status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from support import services, targets
from support.models import Ticket, TicketComment
from tests.factories import (
    BotFactory,
    MembershipFactory,
    TenantFactory,
    TicketCommentFactory,
    TicketFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
LIST = "/dashboard/support/ticket/"
ADD = LIST + "add/"


def change_url(ticket) -> str:
    return f"{LIST}{ticket.pk}/change/"


@pytest.fixture
def staff(client, tenant):
    user = MembershipFactory(tenant=tenant, role="admin").user
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def operator(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    client.user = user
    return client


def test_tenant_staff_report_a_problem_and_are_told_when_to_expect_an_answer(
    staff, tenant, django_capture_on_commit_callbacks
):
    listing = staff.get(LIST)
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Report a problem" in page and f'href="{ADD}"' in page
    assert "within 6 support hours" in page

    form = staff.get(ADD)
    assert form.status_code == 200
    assert "<h1>Report a problem</h1>" in form.content.decode()
    assert "Service interruptions are answered within 6 hours" in form.content.decode()

    bot = BotFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            ADD,
            {
                "title": "Widget is blank",
                "description": "On every page since 10:00.",
                "severity": "interruption",
                "bot": bot.pk,
            },
            follow=True,
        )
    assert response.status_code == 200
    ticket = Ticket.objects.get()
    assert (ticket.tenant, ticket.reporter, ticket.source, ticket.bot) == (
        tenant,
        staff.user,
        Ticket.Source.DASHBOARD,
        bot,
    )
    assert ticket.first_response_due_at == ticket.created_at + timedelta(hours=6)
    shown = " ".join(str(m) for m in response.context["messages"])
    assert len(response.context["messages"]) == 1, shown  # ours only, not Django's "added" too
    assert f"ticket #{ticket.pk} is with our support team" in shown
    assert "Expect a first answer by" in shown and "around the clock" in shown


def test_the_report_form_offers_only_the_tenants_bots(staff, tenant, other_tenant):
    theirs = BotFactory(tenant=other_tenant)
    response = staff.post(ADD, {"title": "x", "severity": "normal", "bot": theirs.pk})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Ticket.objects.exists()


def test_the_reporter_follows_the_ticket_without_seeing_internal_comments(staff, tenant):
    ticket = TicketFactory(
        tenant=tenant,
        reporter=staff.user,
        first_response_due_at=timezone.now() + timedelta(hours=2),
    )
    TicketCommentFactory(
        tenant=tenant, ticket=ticket, origin="support", author_name="Sam", body="We are on it"
    )
    TicketCommentFactory(
        tenant=tenant, ticket=ticket, origin="support", body="SECRET-NOTE", is_internal=True
    )
    listing = staff.get(LIST).content.decode()
    assert "Due in 1 h 59 min" in listing or "Due in 2 h 0 min" in listing

    page = staff.get(change_url(ticket)).content.decode()
    assert "We are on it" in page
    assert "SECRET-NOTE" not in page
    # The thread is "Comments" (not "Conversation", beside a field that means a chat), its
    # times in the support time zone as the due time above, and said so.
    assert "<h2>Comments</h2>" in page and "<h2>Conversation</h2>" not in page
    comment = TicketComment.objects.get(body="We are on it")
    assert targets.format_local(comment.created_at) in page
    assert "Expect a first answer by" in page

    response = staff.post(change_url(ticket), {"comment": "Thanks, waiting.", "status": "resolved"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN  # the reporter does not move the status
    comment = TicketComment.objects.get(body="Thanks, waiting.")
    assert (comment.origin, comment.author, comment.is_internal) == ("tenant", staff.user, False)


def test_the_reporter_closes_a_ticket_from_its_page(staff, tenant):
    """docs/support.md: the reporter may close a ticket; the page offered no way to."""
    ticket = TicketFactory(tenant=tenant, reporter=staff.user)
    page = staff.get(change_url(ticket)).content.decode()
    assert 'name="close"' in page and "Close this ticket" in page
    response = staff.post(change_url(ticket), {"comment": "Solved it myself.", "close": "on"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.CLOSED and ticket.closed_at is not None
    assert TicketComment.objects.get(ticket=ticket).body == "Solved it myself."
    # Closed: no more comments offered (the service would refuse them), nor closing again,
    # nor a Save with nothing to save; nothing is due any more, and no breach is flagged.
    response = staff.get(change_url(ticket))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="comment"' not in page and 'name="close"' not in page
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "Not needed: closed" in page and "Due in" not in page
    assert "Closed before an answer: nothing more is due." in page
    assert "Not needed: closed" in staff.get(LIST).content.decode()
    later = ticket.first_response_due_at + timedelta(days=3)
    assert services.sla_breaches_flag(now=later) == []


def test_other_tenants_tickets_are_not_found(staff, other_tenant):
    theirs = TicketFactory(tenant=other_tenant)
    assert staff.get(change_url(theirs)).status_code == 404
    assert staff.post(change_url(theirs), {"comment": "hi"}).status_code == 404
    assert not TicketComment.objects.exists()
    assert theirs.pk not in [t.pk for t in staff.get(LIST).context["cl"].result_list]


def test_agents_have_no_dashboard(client, tenant):
    client.force_login(MembershipFactory(tenant=tenant, role="agent").user)
    assert client.get(LIST).status_code == 302  # to the sign-in page
    # Which says where their work is, not only "not authorized" (a new agent's walk).
    page = client.get(LIST, follow=True).content.decode()
    assert 'Agents answer visitors in the <a href="/console/">agent console</a>' in page


def test_operators_see_every_tenant_answer_and_move_tickets(operator, tenant):
    mine = TicketFactory(tenant=tenant)
    theirs = TicketFactory(tenant=TenantFactory())
    listing = operator.get(LIST)
    assert {t.pk for t in listing.context["cl"].result_list} == {mine.pk, theirs.pk}

    response = operator.post(
        change_url(theirs),
        {"status": "waiting", "severity": "high", "comment": "Checked the logs.", "internal": "on"},
    )
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert (theirs.status, theirs.severity) == ("waiting", "high")
    assert theirs.first_response_at is not None  # moving it to "waiting" answered it
    note = TicketComment.objects.get(ticket=theirs)
    assert (note.origin, note.is_internal, note.author) == ("support", True, operator.user)
    page = operator.get(change_url(theirs)).content.decode()
    assert "Checked the logs." in page and "INTERNAL" in page

    operator.post(change_url(mine), {"status": "open", "severity": "normal", "comment": "Hello!"})
    answer = TicketComment.objects.get(ticket=mine)
    assert not answer.is_internal
    mine.refresh_from_db()
    assert mine.first_response_at == answer.created_at


def test_operators_report_for_a_tenant(operator, tenant):
    response = operator.post(
        ADD, {"title": "Seen in the logs", "severity": "low", "tenant": tenant.pk}
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.tenant, ticket.reporter) == (tenant, operator.user)


def test_the_response_column_shows_met_and_breached(staff, tenant):
    now = timezone.now()
    TicketFactory(tenant=tenant, first_response_due_at=now - timedelta(hours=1))
    TicketFactory(
        tenant=tenant, first_response_due_at=now, first_response_at=now - timedelta(minutes=5)
    )
    page = staff.get(LIST).content.decode()
    assert "ticket-response-breached" in page and "ticket-response-met" in page


def test_operators_see_that_mirroring_is_off_and_why(operator):
    page = operator.get(LIST).content.decode()
    assert "Trello mirroring is off: TRELLO_KEY, TRELLO_TOKEN, TRELLO_BOARD_ID not set." in page


def test_tenant_staff_do_not_see_the_mirrors_internals(staff):
    assert "trello-status" not in staff.get(LIST).content.decode()


def test_operators_see_the_mirrors_last_sync_and_last_error(
    operator, trello, tenant, django_capture_on_commit_callbacks
):
    from support import services
    from tests.fakes.server import Answer

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_create(tenant=tenant, title="One", source="dashboard")
    trello.outage = Answer(503, {"message": "Service Unavailable"})
    with django_capture_on_commit_callbacks(execute=True):
        ticket = services.ticket_create(tenant=tenant, title="Two", source="dashboard")
    page = operator.get(LIST).content.decode()
    assert "Trello mirroring is on; 1 change(s) waiting" in page
    assert "Last sync: 20" in page and "Trello answered 503" in page
    assert "Webhook: not registered yet" in page
    # The ticket itself works as usual.
    assert operator.get(change_url(ticket)).status_code == 200
