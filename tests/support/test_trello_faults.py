"""The Trello mirror under faults (issue 18): a slow Trello on a new board, webhook moves
delivered again or late, and the people Trello alerts (the card's members)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from support import services
from support.models import Ticket, TicketComment, TrelloCard, TrelloOutbox
from support.trello import sync
from tests.factories import MembershipFactory, TicketFactory, UserFactory

from .conftest import deliver

Status = Ticket.Status
Kind = TrelloOutbox.Kind


def card_posts(fake) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/1/cards"]


def pending_create(tenant) -> Ticket:
    """A ticket whose card creation waits in the outbox (nothing carried yet)."""
    ticket = TicketFactory(tenant=tenant)
    TrelloOutbox.objects.create(tenant=tenant, ticket=ticket, kind=Kind.CREATE_CARD)
    return ticket


def drain_in_thread(ticket: Ticket, results: list) -> threading.Thread:
    def run():
        try:
            results.append(sync.outbox_drain(ticket_id=ticket.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


# --- A slow Trello: one card, whatever the second worker does --------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_slow_trello_on_a_new_board_gets_one_card_while_a_second_drain_waits(
    trello, tenant, monkeypatch
):
    """Seven calls in a row (the lists, five new lists, the card), each slow: the first
    drain's lease would run out midway; it is renewed before each call, so a second drain
    (a catch-up, a redelivered task) finds the entry taken and posts no second card."""
    monkeypatch.setattr(sync, "LEASE", timedelta(seconds=1))
    trello.latency = 0.4  # 7 calls: about 2.8 s, nearly three leases
    ticket = pending_create(tenant)
    first: list = []
    thread = drain_in_thread(ticket, first)
    trello.wait_for_requests(4)  # past 1.2 s: the lease taken at the start has run out
    second = sync.outbox_drain(ticket_id=ticket.pk)
    thread.join(timeout=30)

    assert second.stopped == "busy" and second.done == 0
    assert first[0].done == 1
    assert len(card_posts(trello)) == 1
    assert len(trello.cards_on(trello.board_id)) == 1
    entry = TrelloOutbox.objects.get(ticket=ticket)
    assert entry.state == TrelloOutbox.State.DONE and entry.attempts == 1
    assert (
        TrelloCard.objects.get(ticket=ticket).card_id == trello.cards_on(trello.board_id)[0]["id"]
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_lease_was_taken_stops_without_sending_more(trello, tenant):
    """If another worker did claim the entry (the first was frozen past its lease), the
    first stops at its next call: it creates no card; the claimer carries the entry."""
    trello.latency = 0.3
    ticket = pending_create(tenant)
    first: list = []
    thread = drain_in_thread(ticket, first)
    trello.wait_for_requests(1)
    # Another worker's claim: the attempt count moves on (as _claim does after a lease ran out).
    TrelloOutbox.objects.filter(ticket=ticket).update(attempts=5, locked_until=None)
    thread.join(timeout=30)

    assert first[0].stopped == "busy" and first[0].done == 0
    assert card_posts(trello) == []
    trello.latency = 0
    assert sync.outbox_drain(ticket_id=ticket.pk).done == 1
    assert len(trello.cards_on(trello.board_id)) == 1


# --- Moves delivered again, or late ----------------------------------------------------------


@pytest.fixture
def hooked(trello):
    from support.tasks import trello_outbox_catch_up

    trello_outbox_catch_up()
    return trello


def reported(tenant, capture) -> Ticket:
    reporter = MembershipFactory(tenant=tenant, role="owner").user
    with capture(execute=True):
        ticket = services.ticket_create(
            tenant=tenant, title="The widget is blank", source="dashboard", reporter=reporter
        )
    return ticket


def test_a_redelivered_move_does_not_undo_a_later_change(
    hooked, tenant, client, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ticket = reported(tenant, capture)
    deliver(client, hooked)
    card = TrelloCard.objects.get(ticket=ticket)

    hooked.person_moves_card(card.card_id, "In progress")
    (move,) = hooked.take_deliveries()
    hooked.deliveries.append(move)
    with capture(execute=True):
        assert deliver(client, hooked) == ["status"]
    hooked.deliveries.append(move)  # Trello sends the same action again at once
    assert deliver(client, hooked) == ["duplicate"]

    # Support resolves the ticket in the dashboard; the card follows.
    with capture(execute=True):
        services.ticket_status_change(ticket=ticket, status=Status.RESOLVED, by_support=True)
    assert deliver(client, hooked) == ["echo"]
    # The person's old move comes once more, late: the later change stands.
    hooked.deliveries.append(move)
    with capture(execute=True):
        assert deliver(client, hooked) == ["stale"]
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    assert hooked.lists[hooked.cards[card.card_id]["idList"]]["name"] == "Resolved"

    # A person's new move still counts.
    hooked.person_moves_card(card.card_id, "Closed")
    with capture(execute=True):
        assert deliver(client, hooked) == ["status"]
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED


def test_an_older_move_delivered_after_a_newer_one_changes_nothing(
    hooked, tenant, client, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ticket = reported(tenant, capture)
    deliver(client, hooked)
    card = TrelloCard.objects.get(ticket=ticket)

    hooked.person_moves_card(card.card_id, "In progress")
    hooked.person_moves_card(card.card_id, "Waiting on customer")
    older, newer = hooked.take_deliveries()
    hooked.deliveries.extend([newer, older])  # Trello's first try of the older one failed
    with capture(execute=True):
        assert deliver(client, hooked) == ["status", "stale"]
    ticket.refresh_from_db()
    assert ticket.status == Status.WAITING


# --- The people Trello alerts ----------------------------------------------------------------


@pytest.fixture
def people(hooked, settings, tenant):
    """A developer by default for the deployment, and the tenant's own coordinator."""
    developer = hooked.add_member("devin", "Devin Developer")
    coordinator = hooked.add_member("cora", "Cora Coordinator")
    settings.TRELLO_DEVELOPER_ID = developer
    settings.TRELLO_COORDINATOR_ID = ""
    tenant.trello_coordinator_id = coordinator
    tenant.save()
    return developer, coordinator


def test_cards_carry_the_developer_and_the_coordinator_and_changes_mention_them(
    people, hooked, tenant, client, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    developer, coordinator = people
    ticket = reported(tenant, capture)
    card = TrelloCard.objects.get(ticket=ticket)
    assert hooked.cards[card.card_id]["idMembers"] == [developer, coordinator]

    with capture(execute=True):
        services.ticket_status_change(ticket=ticket, status=Status.IN_PROGRESS, by_support=True)
    with capture(execute=True):
        services.ticket_comment_add(
            ticket=ticket, body="Still blank on Firefox.", origin="tenant", author_name="Ann"
        )
    with capture(execute=True):
        services.ticket_comment_add(
            ticket=ticket, body="Looking into it.", origin="support", author_name="Sam"
        )
    comments = hooked.comments_on(card.card_id)
    assert comments == [
        "@devin @cora Chat-Tonic: the ticket is now in progress.",
        f"@devin @cora Ann ({tenant.name}) wrote:\n\nStill blank on Firefox.",
        "Sam (support) wrote:\n\nLooking into it.",
    ]
    # Trello's deliveries of all that are ours coming back: nothing changes.
    outcomes = deliver(client, hooked)
    assert "comment" not in outcomes and "status" not in outcomes
    assert not TicketComment.objects.filter(origin=TicketComment.Origin.TRELLO).exists()
    # The usernames were looked up once.
    lookups = [r for r in hooked.requests if r.path.startswith("/1/members/")]
    assert len(lookups) == 2


def test_a_new_coordinator_set_by_an_operator_joins_the_card_at_its_next_change(
    people, hooked, tenant, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    developer, _ = people
    ticket = reported(tenant, capture)
    newcomer = hooked.add_member("nico", "Nico Newcomer")
    tenant.trello_coordinator_id = newcomer
    tenant.save()
    with capture(execute=True):
        services.ticket_status_change(ticket=ticket, status=Status.WAITING, by_support=True)
    card = TrelloCard.objects.get(ticket=ticket)
    assert hooked.cards[card.card_id]["idMembers"] == [developer, newcomer]
    assert hooked.comments_on(card.card_id)[-1].startswith("@devin @nico ")


def test_without_members_cards_have_none_and_no_status_note_is_posted(
    hooked, tenant, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ticket = reported(tenant, capture)
    with capture(execute=True):
        services.ticket_status_change(ticket=ticket, status=Status.RESOLVED, by_support=True)
    card = TrelloCard.objects.get(ticket=ticket)
    assert hooked.cards[card.card_id]["idMembers"] == []
    assert hooked.comments_on(card.card_id) == []


def test_only_operators_set_a_tenants_trello_people(client, tenant):
    url = f"/dashboard/tenancy/tenant/{tenant.pk}/change/"
    owner = MembershipFactory(tenant=tenant, role="owner").user
    client.force_login(owner)
    page = client.get(url).content.decode()
    assert "trello_developer_id" not in page and "trello_coordinator_id" not in page
    response = client.post(
        url,
        {
            "name": tenant.name,
            "assignment_policy": tenant.assignment_policy,
            "trello_developer_id": "5f00000000000000000000ff",
        },
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.trello_developer_id == ""

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(url).content.decode()
    assert 'name="trello_developer_id"' in page and 'name="trello_coordinator_id"' in page
    response = client.post(
        url,
        {
            "name": tenant.name,
            "slug": tenant.slug,
            "assignment_policy": tenant.assignment_policy,
            "trello_developer_id": "5f00000000000000000000ff",
            "trello_coordinator_id": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant.refresh_from_db()
    assert tenant.trello_developer_id == "5f00000000000000000000ff"
