"""The Trello mirror against a fake of Trello's REST API and webhooks (tests/fakes/trello.py)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from chattonic.core.outbound import REFUSED
from support import selectors, services
from support.models import Ticket, TicketComment, TrelloCard, TrelloOutbox, TrelloState
from support.tasks import trello_outbox_catch_up, trello_outbox_drain
from support.trello import ratelimit, sync
from support.trello.client import TrelloClient, TrelloConfig
from tests.factories import MembershipFactory, TenantFactory, TicketFactory, UserFactory
from tests.fakes.server import Answer
from tests.fakes.trello import FakeTrello, lost_answer, rate_limited, sign

from .conftest import KEY, PUBLIC_BASE_URL, SECRET, TOKEN, deliver

pytestmark = pytest.mark.django_db
HOOK = "/hooks/trello/"
CALLBACK = PUBLIC_BASE_URL + HOOK
Status = Ticket.Status
Origin = TicketComment.Origin


@pytest.fixture
def reporter(tenant):
    return MembershipFactory(tenant=tenant, role="owner").user


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def hooked(trello):
    """The fake with the board's webhook registered (as the catch-up task does)."""
    trello_outbox_catch_up()
    assert len(trello.webhooks) == 1
    return trello


def report(tenant, reporter, capture, **kwargs) -> Ticket:
    kwargs.setdefault("title", "The widget does not open")
    with capture(execute=True):
        ticket = services.ticket_create(
            tenant=tenant,
            description="Since this morning, on every page.",
            source=Ticket.Source.DASHBOARD,
            reporter=reporter,
            **kwargs,
        )
    return Ticket.objects.get(pk=ticket.pk)


def card_of(ticket: Ticket, fake: FakeTrello) -> dict:
    return fake.cards[TrelloCard.objects.get(ticket=ticket).card_id]


def list_name(fake: FakeTrello, card: dict) -> str:
    return fake.lists[card["idList"]]["name"]


def api_requests(fake: FakeTrello, method: str | None = None, path_end: str = "") -> list:
    return [
        r
        for r in fake.requests
        if r.path.startswith("/1/")
        and (method is None or r.method == method)
        and r.path.endswith(path_end)
    ]


# --- Card creation ---------------------------------------------------------------------------


def test_a_new_ticket_creates_one_card_in_its_status_list_with_a_link_back(
    trello, tenant, reporter, django_capture_on_commit_callbacks
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks, severity="high")

    cards = trello.cards_on(trello.board_id)
    assert len(cards) == 1
    card = cards[0]
    assert list_name(trello, card) == "Open"
    assert f"#{ticket.pk} The widget does not open" in card["name"]
    link = f"{PUBLIC_BASE_URL}/dashboard/support/ticket/{ticket.pk}/change/"
    assert link in card["desc"]
    assert "Since this morning" in card["desc"] and tenant.name in card["desc"]
    mapping = TrelloCard.objects.get(ticket=ticket)
    assert (mapping.card_id, mapping.short_url, mapping.list_id) == (
        card["id"],
        card["shortUrl"],
        card["idList"],
    )
    assert TrelloOutbox.objects.get(ticket=ticket).state == TrelloOutbox.State.DONE
    # The key and token travel in the Authorization header, never in the URL.
    assert all(
        r.headers["Authorization"].startswith("OAuth ") and TOKEN not in r.path and not r.query
        for r in api_requests(trello, "POST")
    )
    status = selectors.trello_status()
    assert status.enabled and status.last_success_at is not None and status.pending == 0


def test_a_retried_task_creates_no_second_card(
    trello, tenant, reporter, django_capture_on_commit_callbacks
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    posts_before = len(api_requests(trello, "POST", "/1/cards"))

    # The same task again, and the entry itself handed out again (a worker lost mid-task).
    trello_outbox_drain(ticket.pk)
    TrelloOutbox.objects.filter(ticket=ticket).update(state=TrelloOutbox.State.PENDING)
    trello_outbox_drain(ticket.pk)

    assert len(api_requests(trello, "POST", "/1/cards")) == posts_before == 1
    assert len(trello.cards_on(trello.board_id)) == 1
    assert TrelloCard.objects.filter(ticket=ticket).count() == 1


def test_a_ticket_from_before_mirroring_gets_its_card_with_its_first_change(
    settings, trello, tenant, reporter, operator, django_capture_on_commit_callbacks
):
    settings.TRELLO_KEY = ""
    old = report(tenant, reporter, django_capture_on_commit_callbacks)
    assert not TrelloOutbox.objects.exists() and not trello.requests
    settings.TRELLO_KEY = trello.key

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_comment_add(
            ticket=old, body="Looking into it.", origin=Origin.SUPPORT, author=operator
        )

    card = card_of(old, trello)
    assert len(trello.cards_on(trello.board_id)) == 1
    assert trello.comments_on(card["id"]) == [
        f"{operator.username} (support) wrote:\n\nLooking into it."
    ]


# --- Status, both ways ------------------------------------------------------------------------


def test_status_changes_move_the_card_and_its_echo_changes_nothing(
    hooked, tenant, reporter, django_capture_on_commit_callbacks, client
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    for status in (Status.IN_PROGRESS, Status.WAITING):
        with django_capture_on_commit_callbacks(execute=True):
            services.ticket_status_change(ticket=ticket, status=status, by_support=True)

    card = card_of(ticket, hooked)
    assert list_name(hooked, card) == "Waiting on customer"
    assert {lst["name"] for lst in hooked.lists.values()} >= {
        "Open",
        "In progress",
        "Waiting on customer",
    }

    # Trello tells us of our own card creation and both moves, the first one late:
    # none of it changes the ticket (it stays "waiting", not back to "in progress").
    assert deliver(client, hooked) == ["ignored", "echo", "echo"]
    ticket.refresh_from_db()
    assert ticket.status == Status.WAITING
    assert TrelloState.objects.get().last_webhook_at is not None


def test_moving_the_card_in_trello_moves_the_ticket(
    hooked, tenant, reporter, django_capture_on_commit_callbacks, client
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_status_change(ticket=ticket, status=Status.RESOLVED, by_support=True)
    deliver(client, hooked)  # our own changes
    puts_before = len(api_requests(hooked, "PUT"))

    card = card_of(ticket, hooked)
    hooked.person_moves_card(card["id"], "In progress")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, hooked) == ["status"]
    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS and ticket.resolved_at is None
    assert TrelloCard.objects.get(ticket=ticket).list_id == card["idList"]

    hooked.person_moves_card(card["id"], "Closed")  # a list the mirror created
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, hooked) == ["status"]
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED and ticket.closed_at is not None
    # The card is already where Trello put it: nothing is sent back.
    assert len(api_requests(hooked, "PUT")) == puts_before


def test_a_move_to_a_list_without_a_status_changes_nothing(
    hooked, tenant, reporter, django_capture_on_commit_callbacks, client
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    deliver(client, hooked)
    backlog = hooked._new_list(hooked.board_id, "Backlog")
    hooked.person_moves_card(card_of(ticket, hooked)["id"], backlog["name"])
    assert deliver(client, hooked) == ["unmapped_list"]
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN


# --- Comments, both ways ----------------------------------------------------------------------


def test_comments_go_both_ways_without_echoes_or_duplicates(
    hooked, tenant, reporter, operator, django_capture_on_commit_callbacks, client
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_comment_add(
            ticket=ticket, body="It fails on Chrome too.", origin=Origin.TENANT, author=reporter
        )
        services.ticket_comment_add(
            ticket=ticket,
            body="Likely the CDN.",
            origin=Origin.SUPPORT,
            author=operator,
            is_internal=True,
        )
    card = card_of(ticket, hooked)
    assert hooked.comments_on(card["id"]) == [
        f"{reporter.username} ({tenant.name}) wrote:\n\nIt fails on Chrome too.",
        f"[internal] {operator.username} (support) wrote:\n\nLikely the CDN.",
    ]
    assert deliver(client, hooked) == ["ignored", "echo", "echo"]
    assert TicketComment.objects.filter(ticket=ticket).count() == 2

    # A developer answers on the card, and adds a note for the team.
    hooked.person_comments(card["id"], "Fixed: the cache is cleared. Please try again.")
    hooked.person_comments(card["id"], "[internal] root cause: stale CDN config")
    deliveries = list(hooked.deliveries)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, hooked) == ["comment", "comment"]
    answer, note = TicketComment.objects.filter(ticket=ticket, origin=Origin.TRELLO)
    assert (answer.body, answer.author_name, answer.is_internal) == (
        "Fixed: the cache is cleared. Please try again.",
        "Dana Developer",
        False,
    )
    assert (note.body, note.is_internal) == ("root cause: stale CDN config", True)
    ticket.refresh_from_db()
    assert ticket.first_response_at == answer.created_at

    # Trello delivers the same action again: one comment still; nothing went back to Trello.
    hooked.deliveries.extend(deliveries)
    assert deliver(client, hooked) == ["duplicate", "duplicate"]
    assert TicketComment.objects.filter(ticket=ticket).count() == 4
    assert len(hooked.comments_on(card["id"])) == 4  # the two of ours, the two of Dana's
    assert len(api_requests(hooked, "POST", "/actions/comments")) == 2


# --- The webhook's door -----------------------------------------------------------------------


def _signed_comment(hooked, ticket, text="Injected") -> tuple[bytes, str]:
    hooked.person_comments(card_of(ticket, hooked)["id"], text)
    delivery = hooked.take_deliveries()[-1]
    return delivery.body, delivery.signature


@pytest.mark.parametrize(
    "case,status,code",
    [
        ("missing", 401, "missing_signature"),
        ("wrong_secret", 403, "invalid_signature"),
        ("other_callback_url", 403, "invalid_signature"),
        ("tampered_body", 403, "invalid_signature"),
        ("no_secret_configured", 403, "trello_off"),
    ],
)
def test_unsigned_or_badly_signed_deliveries_are_refused_and_write_nothing(
    hooked,
    tenant,
    reporter,
    django_capture_on_commit_callbacks,
    client,
    settings,
    case,
    status,
    code,
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    deliver(client, hooked)
    body, signature = _signed_comment(hooked, ticket)
    headers = {"HTTP_X_TRELLO_WEBHOOK": signature}
    if case == "missing":
        headers = {}
    elif case == "wrong_secret":
        headers = {"HTTP_X_TRELLO_WEBHOOK": sign("not-the-secret", body, CALLBACK)}
    elif case == "other_callback_url":
        headers = {
            "HTTP_X_TRELLO_WEBHOOK": sign(SECRET, body, "https://evil.example.com/hooks/trello/")
        }
    elif case == "tampered_body":
        body = body.replace(b"Injected", b"Hijacked")
    elif case == "no_secret_configured":
        settings.TRELLO_SECRET = ""
    state_before = TrelloState.objects.values().get()
    comments_before = TicketComment.objects.count()

    response = client.post(HOOK, data=body, content_type="application/json", **headers)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert TicketComment.objects.count() == comments_before
    assert TrelloState.objects.values().get() == state_before


def test_the_head_check_is_answered_and_other_methods_are_not(client):
    assert client.head(HOOK).status_code == 200
    assert client.get(HOOK).status_code == 405


def test_a_signed_body_that_is_not_json_is_a_400(hooked, client):
    body = b"not json"
    response = client.post(
        HOOK,
        data=body,
        content_type="application/json",
        HTTP_X_TRELLO_WEBHOOK=sign(SECRET, body, CALLBACK),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_payload"


def test_a_delivery_about_an_unknown_card_is_acknowledged_and_ignored(hooked, client):
    body = json.dumps(
        {
            "action": {
                "id": "x1",
                "type": "commentCard",
                "data": {"text": "hi", "card": {"id": "nope"}},
            }
        }
    ).encode()
    response = client.post(
        HOOK,
        data=body,
        content_type="application/json",
        HTTP_X_TRELLO_WEBHOOK=sign(SECRET, body, CALLBACK),
    )
    assert response.status_code == 200 and response.json()["outcome"] == "unknown_card"
    assert not TicketComment.objects.exists()


def test_the_webhook_is_registered_once_with_the_public_callback_url(trello):
    trello_outbox_catch_up()
    trello_outbox_catch_up()
    hooks = list(trello.webhooks.values())
    assert len(hooks) == 1
    assert (hooks[0]["callbackURL"], hooks[0]["idModel"]) == (CALLBACK, trello.board_id)
    assert len(api_requests(trello, "POST", "/1/webhooks")) == 1
    assert "registered" in selectors.trello_status().webhook


# --- Rate limits and back-off -----------------------------------------------------------------


def test_a_429_backs_off_on_our_own_schedule_and_holds_every_worker_back(
    trello, tenant, reporter, django_capture_on_commit_callbacks
):
    report(tenant, reporter, django_capture_on_commit_callbacks)  # lists are known now
    before = len(trello.requests)
    trello.script(rate_limited())
    started = timezone.now()

    first = report(tenant, reporter, django_capture_on_commit_callbacks, title="First")
    entry = TrelloOutbox.objects.get(ticket=first)
    assert (entry.state, entry.attempts) == (TrelloOutbox.State.PENDING, 1)
    wait = (entry.next_attempt_at - started).total_seconds()
    assert 10 <= wait <= 12.5, wait  # a full 10-second window, Trello sends no Retry-After
    assert "rate limit" in entry.last_error.lower()
    assert ratelimit.paused_for(TOKEN) > 8

    # Another ticket meanwhile: held back here, not sent into the 429s.
    second = report(tenant, reporter, django_capture_on_commit_callbacks, title="Second")
    assert len(trello.requests) == before + 1
    assert TrelloOutbox.objects.get(ticket=second).state == TrelloOutbox.State.PENDING
    assert "rate limit" in selectors.trello_status().last_error.lower()

    # Ten seconds on (the pause lifted), the catch-up carries both, once each.
    ratelimit._redis().delete(ratelimit._keys(TOKEN)[1])
    sync.outbox_catch_up(now=timezone.now() + timedelta(seconds=13))
    names = [card["name"] for card in trello.cards_on(trello.board_id)]
    assert len(names) == 3
    assert sum(f"#{first.pk} First" in name for name in names) == 1
    assert sum(f"#{second.pk} Second" in name for name in names) == 1
    assert not TrelloOutbox.objects.filter(state=TrelloOutbox.State.PENDING).exists()


def test_consecutive_429s_double_the_wait_up_to_a_cap(trello, tenant):
    ticket = TicketFactory(tenant=tenant)
    entry = TrelloOutbox.objects.create(tenant=tenant, ticket=ticket, kind="create_card")
    client = TrelloClient(TrelloConfig.from_settings())
    waits = []
    for _ in range(8):
        trello.script(rate_limited())
        ratelimit._redis().delete(ratelimit._keys(TOKEN)[1])
        moment = timezone.now() + timedelta(days=len(waits))
        sync.outbox_drain(ticket_id=ticket.pk, now=moment, client=client)
        entry.refresh_from_db()
        waits.append((entry.next_attempt_at - moment).total_seconds())
    bases = [10, 20, 40, 80, 160, 320, 600, 600]
    assert all(
        base <= wait <= base * 1.1 + 0.01 for base, wait in zip(bases, waits, strict=True)
    ), waits


def test_consecutive_outages_double_the_wait_from_15_seconds_up_to_15_minutes(trello, tenant):
    """docs/support.md: outages back off 15 s doubling up to 15 minutes."""
    ticket = TicketFactory(tenant=tenant)
    entry = TrelloOutbox.objects.create(tenant=tenant, ticket=ticket, kind="create_card")
    client = TrelloClient(TrelloConfig.from_settings())
    waits = []
    for _ in range(8):
        trello.script(Answer(503, {"message": "Service Unavailable"}))
        moment = timezone.now() + timedelta(days=len(waits))
        sync.outbox_drain(ticket_id=ticket.pk, now=moment, client=client)
        entry.refresh_from_db()
        waits.append((entry.next_attempt_at - moment).total_seconds())
    bases = [15, 30, 60, 120, 240, 480, 900, 900]
    assert all(
        base <= wait <= base * 1.1 + 0.01 for base, wait in zip(bases, waits, strict=True)
    ), waits


def test_carried_entries_are_deleted_after_30_days_by_the_catch_up(trello, tenant):
    """docs/support.md: the catch-up deletes carried entries after 30 days."""
    now = timezone.now()
    rows = {
        age: TrelloOutbox.objects.create(
            tenant=tenant,
            ticket=TicketFactory(tenant=tenant),
            kind="create_card",
            state=TrelloOutbox.State.DONE,
            done_at=now - timedelta(days=age),
        )
        for age in (29, 31)
    }
    sync.outbox_catch_up(now=now)
    assert TrelloOutbox.objects.filter(pk=rows[29].pk).exists()
    assert not TrelloOutbox.objects.filter(pk=rows[31].pk).exists()


def test_the_status_command_reports_the_mirror_and_sync_carries_what_waits(
    trello, tenant, reporter
):
    """docs/support.md: ``python manage.py trello_status`` (``--sync`` runs the catch-up)."""
    ticket = TicketFactory(tenant=tenant)
    TrelloOutbox.objects.create(tenant=tenant, ticket=ticket, kind="create_card")
    out = io.StringIO()
    call_command("trello_status", stdout=out)
    assert "Waiting: 1 " in out.getvalue() and not trello.cards
    out = io.StringIO()
    call_command("trello_status", "--sync", stdout=out)
    assert "Carried 1 change(s) for 1 ticket(s)." in out.getvalue()
    assert "Waiting: 0 " in out.getvalue() and len(trello.cards) == 1


def test_the_mirror_stays_under_trellos_request_rate(
    settings, monkeypatch, tenant, reporter, django_capture_on_commit_callbacks
):
    # Scaled down for the test: Trello allows 5 requests per second, we use 4.
    monkeypatch.setattr(ratelimit, "WINDOW_SECONDS", 1.0)
    settings.TRELLO_REQUESTS_PER_10S = 4
    with FakeTrello(key="k", token="t", secret="s", limit=5, window=1.0) as fake:
        settings.TRELLO_API_BASE = fake.allow(settings).root_url
        settings.TRELLO_KEY, settings.TRELLO_TOKEN, settings.TRELLO_BOARD_ID = (
            "k",
            "t",
            fake.add_board(),
        )
        for n in range(10):
            report(tenant, reporter, django_capture_on_commit_callbacks, title=f"Problem {n}")
        assert fake.rate_limited_count == 0
        assert fake.max_requests_in_window(1.0) <= 5
        assert len(fake.cards) == 10
        assert len(api_requests(fake)) >= 12


def test_the_limiter_counts_requests_per_token_across_workers(settings):
    assert [ratelimit.try_take("tok", limit=3) for _ in range(3)] == [0, 0, 0]
    wait = ratelimit.try_take("tok", limit=3)
    assert 9 < wait <= 10
    assert ratelimit.try_take("another-token", limit=3) == 0
    ratelimit.pause("tok2", 5)
    assert -5 <= ratelimit.try_take("tok2", limit=3) < -4


# --- An outage, then the catch-up -------------------------------------------------------------


def test_after_an_outage_the_catch_up_carries_everything_once(
    hooked, tenant, reporter, operator, django_capture_on_commit_callbacks, client
):
    earlier = report(tenant, reporter, django_capture_on_commit_callbacks, title="Earlier")
    # Trello creates the next card, but its answer is lost on the way back...
    hooked.script(lost_answer(hooked))
    lost = report(tenant, reporter, django_capture_on_commit_callbacks, title="Lost answer")
    assert len(hooked.cards_on(hooked.board_id)) == 2
    assert not TrelloCard.objects.filter(ticket=lost).exists()

    # ...and then Trello is down for a while, as work goes on.
    hooked.outage = Answer(503, {"message": "Service Unavailable"})
    tickets = [
        report(tenant, reporter, django_capture_on_commit_callbacks, title=f"During {n}")
        for n in range(3)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_comment_add(
            ticket=tickets[0], body="More details.", origin=Origin.TENANT, author=reporter
        )
        services.ticket_status_change(ticket=tickets[1], status=Status.IN_PROGRESS, by_support=True)
        services.ticket_comment_add(
            ticket=earlier, body="On it.", origin=Origin.SUPPORT, author=operator
        )
        services.ticket_status_change(ticket=earlier, status=Status.WAITING, by_support=True)
    pending = TrelloOutbox.objects.filter(state=TrelloOutbox.State.PENDING)
    assert pending.count() == 8
    assert "503" in selectors.trello_status().last_error
    assert selectors.trello_status().pending == 8

    # A catch-up during the outage stops at the first failure instead of hammering.
    later = timezone.now() + timedelta(hours=1)
    failed_before = len(hooked.requests)
    sync.outbox_catch_up(now=later)
    assert len(hooked.requests) == failed_before + 1

    hooked.outage = None
    summary = sync.outbox_catch_up(now=later + timedelta(hours=1))
    assert summary["done"] == 8 and not pending.exists()

    cards = hooked.cards_on(hooked.board_id)
    assert len(cards) == 5  # one per ticket: the lost one was found, not created again
    assert sorted(TrelloCard.objects.values_list("card_id", flat=True)) == sorted(
        c["id"] for c in cards
    )
    assert list_name(hooked, card_of(tickets[1], hooked)) == "In progress"
    assert list_name(hooked, card_of(earlier, hooked)) == "Waiting on customer"
    assert hooked.comments_on(card_of(tickets[0], hooked)["id"]) == [
        f"{reporter.username} ({tenant.name}) wrote:\n\nMore details."
    ]
    assert len(hooked.comments_on(card_of(earlier, hooked)["id"])) == 1

    # Everything Trello reports back now is our own: nothing changes.
    outcomes = deliver(client, hooked)
    assert "status" not in outcomes and "comment" not in outcomes
    assert Ticket.objects.get(pk=earlier.pk).status == Status.WAITING

    requests_after = len(hooked.requests)
    sync.outbox_catch_up(now=later + timedelta(hours=2))
    assert len(hooked.requests) == requests_after  # nothing left to carry
    assert selectors.trello_status().pending == 0


# --- Mirroring off ----------------------------------------------------------------------------


def test_without_credentials_tickets_work_and_nothing_is_mirrored(
    tenant, reporter, django_capture_on_commit_callbacks, client
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_comment_add(
            ticket=ticket, body="Hello?", origin=Origin.TENANT, author=reporter
        )
        services.ticket_status_change(ticket=ticket, status=Status.CLOSED, by_support=False)
    assert not TrelloOutbox.objects.exists() and not TrelloCard.objects.exists()
    trello_outbox_catch_up()
    status = selectors.trello_status()
    assert not status.enabled
    assert "off" in status.message and "TRELLO_KEY" in status.message
    body = b'{"action": {}}'
    response = client.post(
        HOOK,
        data=body,
        content_type="application/json",
        HTTP_X_TRELLO_WEBHOOK=sign("", body, CALLBACK),
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "trello_off"


def test_other_tenants_tickets_are_mirrored_to_the_same_board_without_mixing(
    hooked, tenant, reporter, django_capture_on_commit_callbacks, client
):
    other = TenantFactory()
    mine = report(tenant, reporter, django_capture_on_commit_callbacks)
    theirs = report(other, MembershipFactory(tenant=other).user, django_capture_on_commit_callbacks)
    deliver(client, hooked)
    hooked.person_comments(card_of(theirs, hooked)["id"], "For the other tenant")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, hooked)
    assert not TicketComment.objects.filter(ticket=mine).exists()
    comment = TicketComment.objects.get(ticket=theirs)
    assert comment.tenant_id == other.pk


def test_a_card_deleted_in_trello_fails_its_changes_for_good_without_blocking(
    trello, tenant, reporter, operator, django_capture_on_commit_callbacks
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    card_id = TrelloCard.objects.get(ticket=ticket).card_id
    del trello.cards[card_id]  # someone deleted the card in Trello
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_status_change(ticket=ticket, status=Status.IN_PROGRESS, by_support=True)
        services.ticket_comment_add(
            ticket=ticket, body="Hi", origin=Origin.SUPPORT, author=operator
        )
    states = list(
        TrelloOutbox.objects.filter(ticket=ticket).order_by("id").values_list("kind", "state")
    )
    assert states == [("create_card", "done"), ("move_card", "failed"), ("add_comment", "failed")]
    status = selectors.trello_status()
    assert status.failed == 2 and status.pending == 0 and "404" in status.last_error
    # The ticket itself moved on as usual.
    assert Ticket.objects.get(pk=ticket.pk).status == Status.IN_PROGRESS


def test_an_old_move_whose_echo_never_came_does_not_hide_a_persons_move(
    hooked, tenant, reporter, django_capture_on_commit_callbacks, client
):
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_status_change(ticket=ticket, status=Status.IN_PROGRESS, by_support=True)
    hooked.take_deliveries()  # lost: Trello never told us of that move
    TrelloOutbox.objects.filter(kind="move_card").update(
        done_at=timezone.now() - timedelta(hours=1)
    )
    card = card_of(ticket, hooked)
    hooked.person_moves_card(card["id"], "Open")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, hooked)
    hooked.person_moves_card(card["id"], "In progress")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, hooked) == ["status"]
    assert Ticket.objects.get(pk=ticket.pk).status == Status.IN_PROGRESS


# --- Secrets and the guard --------------------------------------------------------------------


def test_trellos_errors_are_stored_and_logged_without_the_key_or_the_token(
    trello, tenant, reporter, caplog, django_capture_on_commit_callbacks
):
    # An answer that echoes the credentials (a proxy's error page, a debugging endpoint).
    trello.outage = Answer(500, {"message": f"bad request for key={KEY} token {TOKEN}"})
    with caplog.at_level("INFO"):
        ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    entry = TrelloOutbox.objects.get(ticket=ticket)
    stored = [entry.last_error, selectors.trello_status().last_error]
    assert all("Trello answered 500" in text for text in stored), stored
    assert not any(KEY in text or TOKEN in text for text in stored)
    assert "Trello answered 500" in caplog.text
    assert KEY not in caplog.text and TOKEN not in caplog.text


def test_a_trello_base_inside_the_network_is_refused_and_the_outbox_waits(
    settings, trello, tenant, reporter, django_capture_on_commit_callbacks
):
    settings.OUTBOUND_ALLOWED_HOSTS = []  # the fake on 127.0.0.1, no longer named
    ticket = report(tenant, reporter, django_capture_on_commit_callbacks)
    entry = TrelloOutbox.objects.get(ticket=ticket)
    assert entry.state == TrelloOutbox.State.PENDING and entry.last_error.startswith(REFUSED)
    assert trello.requests == []
    trello.allow(settings)  # the operator names it; the next catch-up after the back-off
    sync.outbox_catch_up(now=timezone.now() + timedelta(hours=1))
    assert TrelloOutbox.objects.get(pk=entry.pk).state == TrelloOutbox.State.DONE
    assert len(trello.cards) == 1
