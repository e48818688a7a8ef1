"""Ticket services: creation and due times, the away form's door, status flow, comments,
and the breach check."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.core import mail

from chattonic.core.errors import Conflict, ValidationFailed
from support import services, targets
from support.models import Ticket, TicketComment
from support.tasks import support_breaches_flag
from tests.factories import (
    BotFactory,
    ConversationFactory,
    LeadFactory,
    MembershipFactory,
    SupportHolidayFactory,
    TenantFactory,
    TicketFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
UTC_MINUS_3 = timezone(timedelta(hours=-3))
Status = Ticket.Status
Origin = TicketComment.Origin


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC_MINUS_3)


@pytest.fixture
def reporter(tenant):
    return MembershipFactory(tenant=tenant, role="owner").user


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True, is_superuser=True)


def create(tenant, **kwargs) -> Ticket:
    kwargs.setdefault("title", "Widget down")
    kwargs.setdefault("source", Ticket.Source.DASHBOARD)
    return services.ticket_create(tenant=tenant, **kwargs)


# --- Due times at creation --------------------------------------------------------------------


def test_an_interruption_reported_saturday_2am_is_due_saturday_8am(tenant):
    ticket = create(tenant, severity=Ticket.Severity.INTERRUPTION, now=at(2026, 3, 7, 2, 0))
    assert ticket.first_response_due_at == at(2026, 3, 7, 8, 0)


def test_an_inquiry_reported_friday_5pm_is_due_monday_2pm(tenant):
    ticket = create(tenant, severity=Ticket.Severity.LOW, now=at(2026, 3, 6, 17, 0))
    assert ticket.first_response_due_at == at(2026, 3, 9, 14, 0)
    assert "Mon 2026-03-09 14:00 (UTC-03:00)" in targets.expectation(ticket)
    assert "6 support hours: Mon\u2013Fri 09:00\u201318:00 (UTC-03:00)." in targets.expectation(
        ticket
    )


def test_holidays_from_the_dashboard_and_the_settings_are_skipped(tenant, settings):
    SupportHolidayFactory(date=date(2026, 3, 9), name="A holiday")
    settings.SUPPORT_HOLIDAYS = ["2026-03-10"]
    ticket = create(tenant, now=at(2026, 3, 6, 17, 0))
    assert ticket.first_response_due_at == at(2026, 3, 11, 14, 0)


def test_the_targets_are_configurable(tenant, settings):
    settings.SUPPORT_RESPONSE_TARGET_HOURS = 2
    settings.SUPPORT_INTERRUPTION_TARGET_HOURS = 1
    settings.SUPPORT_TIME_ZONE = "UTC"
    ticket = create(tenant, now=datetime(2026, 3, 6, 17, 30, tzinfo=UTC))
    assert ticket.first_response_due_at == datetime(2026, 3, 9, 10, 30, tzinfo=UTC)
    urgent = create(tenant, severity="interruption", now=datetime(2026, 3, 6, 17, 30, tzinfo=UTC))
    assert urgent.first_response_due_at == datetime(2026, 3, 6, 18, 30, tzinfo=UTC)


def test_re_rating_a_ticket_counts_its_due_time_again(tenant):
    ticket = create(tenant, now=at(2026, 3, 7, 2, 0))
    assert ticket.first_response_due_at == at(2026, 3, 9, 15, 0)
    services.ticket_severity_change(ticket=ticket, severity=Ticket.Severity.INTERRUPTION)
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == at(2026, 3, 7, 8, 0)


# --- Creation's validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"title": "   "}, "title"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"reporter_email": "not-an-email"}, "reporter_email"),
    ],
)
def test_invalid_input_names_the_field_and_writes_nothing(tenant, kwargs, field):
    with pytest.raises(ValidationFailed) as caught:
        create(tenant, **kwargs)
    assert field in caught.value.fields
    assert not Ticket.objects.exists()


def test_another_tenants_bot_or_conversation_cannot_be_linked(tenant, other_tenant):
    with pytest.raises(ValidationFailed) as caught:
        create(tenant, bot=BotFactory(tenant=other_tenant))
    assert "bot" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        create(tenant, conversation=ConversationFactory(tenant=other_tenant))
    assert "conversation" in caught.value.fields
    assert not Ticket.objects.exists()


def test_a_sandbox_conversation_cannot_be_linked(tenant):
    with pytest.raises(ValidationFailed) as caught:
        create(tenant, conversation=ConversationFactory(tenant=tenant, is_sandbox=True))
    assert "conversation" in caught.value.fields


def test_linking_a_conversation_links_its_bot(tenant, reporter):
    conversation = ConversationFactory(tenant=tenant)
    ticket = create(tenant, conversation=conversation, reporter=reporter)
    assert ticket.bot == conversation.bot
    assert (ticket.reporter, ticket.reporter_email) == (reporter, reporter.email)


# --- The away form's door ---------------------------------------------------------------------


def away_lead(tenant, **kwargs):
    conversation = ConversationFactory(tenant=tenant, **kwargs)
    lead = LeadFactory(
        tenant=tenant,
        contact=conversation.contact,
        conversation=conversation,
        fields={"name": "Ana", "email": "ana@example.com", "message": "Call me back"},
    )
    return conversation, lead


def test_the_away_form_opens_a_ticket_with_the_visitors_details(tenant):
    conversation, lead = away_lead(tenant)
    ticket = services.ticket_from_away_form(conversation=conversation, lead=lead)
    assert ticket.source == Ticket.Source.AWAY_FORM
    assert (ticket.lead, ticket.conversation, ticket.bot) == (lead, conversation, conversation.bot)
    assert (ticket.reporter_name, ticket.reporter_email) == ("Ana", "ana@example.com")
    assert ticket.title == "After-hours request from Ana"
    assert "Call me back" in ticket.description and "ana@example.com" in ticket.description
    # Leaving the details again for the same lead: still one ticket.
    assert services.ticket_from_away_form(conversation=conversation, lead=lead) == ticket
    assert Ticket.objects.count() == 1


def test_sandbox_conversations_never_open_tickets(tenant):
    conversation, lead = away_lead(tenant, is_sandbox=True)
    assert services.ticket_from_away_form(conversation=conversation, lead=lead) is None
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("ticket_after_hours,tickets", [(True, 1), (False, 0)])
def test_the_agents_away_flow_opens_a_ticket_where_the_bot_says_so(
    tenant, ticket_after_hours, tickets
):
    from agents.services import away_contact_leave, conversation_hand_off

    bot = BotFactory(tenant=tenant, ticket_after_hours=ticket_after_hours)
    conversation = ConversationFactory(tenant=tenant, bot=bot)
    conversation_hand_off(conversation=conversation, reason="visitor_request")  # nobody online
    lead = away_contact_leave(
        conversation=conversation, fields={"name": "Bo", "email": "bo@example.com"}
    )
    assert Ticket.objects.filter(lead=lead, bot=bot).count() == tickets
    # The same details sent again: the same lead, still at most one ticket.
    again = away_contact_leave(
        conversation=conversation, fields={"name": "Bo", "email": "bo@example.com"}
    )
    assert again.pk == lead.pk
    assert Ticket.objects.filter(bot=bot).count() == tickets


# --- Status flow and comments -----------------------------------------------------------------


def test_support_moves_a_ticket_through_its_statuses(tenant, reporter):
    ticket = create(tenant, reporter=reporter)
    ticket = services.ticket_status_change(
        ticket=ticket, status=Status.IN_PROGRESS, by_support=True
    )
    assert ticket.first_response_at is None  # "in progress" alone tells the reporter nothing
    ticket = services.ticket_status_change(ticket=ticket, status=Status.RESOLVED, by_support=True)
    assert ticket.resolved_at is not None and ticket.first_response_at == ticket.resolved_at
    ticket = services.ticket_status_change(ticket=ticket, status=Status.CLOSED, by_support=True)
    assert ticket.closed_at is not None
    ticket = services.ticket_status_change(ticket=ticket, status=Status.OPEN, by_support=True)
    assert ticket.resolved_at is None and ticket.closed_at is None


def test_the_reporter_may_close_but_not_resolve(tenant, reporter):
    ticket = create(tenant, reporter=reporter)
    with pytest.raises(ValidationFailed) as caught:
        services.ticket_status_change(ticket=ticket, status=Status.RESOLVED, by_support=False)
    assert "status" in caught.value.fields
    assert Ticket.objects.get(pk=ticket.pk).status == Status.OPEN
    ticket = services.ticket_status_change(ticket=ticket, status=Status.CLOSED, by_support=False)
    assert ticket.status == Status.CLOSED and ticket.first_response_at is None
    with pytest.raises(ValidationFailed):
        services.ticket_status_change(ticket=ticket, status=Status.OPEN, by_support=False)


def test_supports_first_public_comment_answers_the_ticket(tenant, reporter, operator):
    ticket = create(tenant, reporter=reporter)
    services.ticket_comment_add(ticket=ticket, body="Noted", origin=Origin.TENANT, author=reporter)
    services.ticket_comment_add(
        ticket=ticket, body="Internal", origin=Origin.SUPPORT, author=operator, is_internal=True
    )
    assert Ticket.objects.get(pk=ticket.pk).first_response_at is None
    answer = services.ticket_comment_add(
        ticket=ticket, body="Looking at it", origin=Origin.SUPPORT, author=operator
    )
    ticket.refresh_from_db()
    assert ticket.first_response_at == answer.created_at
    assert targets.response_state(ticket).state == "met"


def test_the_reporters_comment_takes_the_ticket_back_to_support(tenant, reporter):
    ticket = create(tenant, reporter=reporter)
    services.ticket_status_change(ticket=ticket, status=Status.WAITING, by_support=True)
    services.ticket_comment_add(
        ticket=ticket, body="Here it is", origin=Origin.TENANT, author=reporter
    )
    assert Ticket.objects.get(pk=ticket.pk).status == Status.IN_PROGRESS

    services.ticket_status_change(ticket=ticket, status=Status.RESOLVED, by_support=True)
    services.ticket_comment_add(
        ticket=ticket, body="Still broken", origin=Origin.TENANT, author=reporter
    )
    assert Ticket.objects.get(pk=ticket.pk).status == Status.OPEN


def test_a_closed_ticket_takes_no_more_comments_from_the_reporter(tenant, reporter):
    ticket = create(tenant, reporter=reporter)
    services.ticket_status_change(ticket=ticket, status=Status.CLOSED, by_support=False)
    with pytest.raises(Conflict):
        services.ticket_comment_add(ticket=ticket, body="Hello?", origin=Origin.TENANT)
    assert not TicketComment.objects.exists()


def test_reporters_cannot_write_internal_comments(tenant):
    ticket = create(tenant)
    with pytest.raises(ValidationFailed) as caught:
        services.ticket_comment_add(
            ticket=ticket, body="sneaky", origin=Origin.TENANT, is_internal=True
        )
    assert "is_internal" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        services.ticket_comment_add(ticket=ticket, body="  ", origin=Origin.TENANT)
    assert "body" in caught.value.fields
    assert not TicketComment.objects.exists()


# --- The response state and the breach check -------------------------------------------------


def test_the_response_state_counts_down_then_breaches(tenant):
    ticket = create(tenant, now=at(2026, 3, 4, 10, 0))
    due = at(2026, 3, 4, 16, 0)
    assert ticket.first_response_due_at == due
    state = targets.response_state(ticket, now=at(2026, 3, 4, 13, 30))
    assert (state.state, state.remaining, state.label) == (
        "due",
        timedelta(hours=2, minutes=30),
        "Due in 2 h 30 min",
    )
    assert targets.response_state(ticket, now=at(2026, 3, 4, 16, 1)).state == "breached"
    ticket.first_response_at = at(2026, 3, 4, 17, 0)
    assert targets.response_state(ticket, now=at(2026, 3, 5, 9, 0)).label == "Breached"


def test_breaches_are_flagged_once_and_the_operators_told(
    tenant, caplog, django_capture_on_commit_callbacks
):
    now = at(2026, 3, 9, 12, 0)
    late = TicketFactory(
        tenant=tenant, title="Late one", first_response_due_at=now - timedelta(minutes=1)
    )
    other = TicketFactory(
        tenant=TenantFactory(),
        severity="interruption",
        first_response_due_at=now - timedelta(hours=3),
    )
    TicketFactory(tenant=tenant, first_response_due_at=now + timedelta(minutes=1))  # not yet
    TicketFactory(  # answered, late: not for the check
        tenant=tenant, first_response_due_at=now - timedelta(hours=1), first_response_at=now
    )

    with (
        caplog.at_level(logging.WARNING, logger="support.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        flagged = services.sla_breaches_flag(now=now)

    assert sorted(flagged) == sorted([late.pk, other.pk])
    assert Ticket.objects.filter(breach_flagged_at=now).count() == 2
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com"]
    assert "2 support ticket(s) breached" in message.subject
    assert f"#{late.pk} [Normal" in message.body and "Late one" in message.body
    assert f"/dashboard/support/ticket/{late.pk}/change/" in message.body
    assert sum(f"ticket.breached id={late.pk}" in r.getMessage() for r in caplog.records) == 1

    # The next run flags and tells nothing new.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sla_breaches_flag(now=now + timedelta(seconds=30)) == []
    assert len(mail.outbox) == 1


def test_the_periodic_task_flags_breaches(tenant, django_capture_on_commit_callbacks):
    TicketFactory(tenant=tenant, first_response_due_at=datetime(2020, 1, 1, tzinfo=UTC))
    with django_capture_on_commit_callbacks(execute=True):
        support_breaches_flag.delay()
    assert Ticket.objects.filter(breach_flagged_at__isnull=False).count() == 1
    assert len(mail.outbox) == 1
