"""Statistics: each number on a small known data set, the sandbox excluded, CSAT, the page."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone

from chattonic.core.errors import Conflict, ValidationFailed
from chattonic.schedule import PERIODIC_TASKS
from conversations.models import Conversation
from conversations.services import conversation_rate
from stats import services as stats
from stats.models import DailyStat
from tests.conversations.insight import at, conversation_with_messages
from tests.factories import BotFactory, ConversationFactory, LeadFactory

pytestmark = pytest.mark.django_db
DAY = date(2030, 3, 10)


@pytest.fixture
def data(tenant):
    """Day 10: four conversations of bot A on the web chat, one of bot B on Telegram, and a
    sandbox conversation that must not count."""
    bot_a, bot_b = BotFactory(tenant=tenant), BotFactory(tenant=tenant)
    contained = conversation_with_messages(tenant, bot=bot_a, created_at=at(10, 9))
    handed = []
    for minutes, resolve_hours, csat in ((1, 1, 5), (3, 2, 4), (10, 4, None)):
        c = conversation_with_messages(
            tenant,
            bot=bot_a,
            created_at=at(10, 9),
            n_in=1,
            n_out=1,
            queued_at=at(10, 10),
            first_agent_response_at=at(10, 10, minutes),
            resolved_at=at(10, 9 + resolve_hours),
            status=Conversation.Status.RESOLVED,
            csat=csat,
        )
        handed.append(c)
    telegram = conversation_with_messages(
        tenant, bot=bot_b, channel_kind="telegram", created_at=at(10, 15), n_in=4, n_out=0
    )
    conversation_with_messages(
        tenant, bot=bot_a, created_at=at(10, 9), is_sandbox=True, queued_at=at(10, 9)
    )
    LeadFactory(
        tenant=tenant,
        bot=bot_a,
        channel_kind="webchat",
        conversation=contained,
        contact=contained.contact,
        created_at=at(10, 11),
    )
    LeadFactory(
        tenant=tenant,
        bot=bot_b,
        channel_kind="telegram",
        conversation=telegram,
        contact=telegram.contact,
        created_at=at(11, 1),
    )
    return bot_a, bot_b


def test_every_number_of_a_day(tenant, data):
    bot_a, bot_b = data
    stats.stats_rebuild(tenant_id=tenant.pk, start=DAY, end=DAY + timedelta(days=1))
    report = stats.stats_report(tenant=tenant, start=DAY, end=DAY + timedelta(days=1))
    totals = report["totals"]
    assert totals["conversations"] == 5
    assert (totals["messages_in"], totals["messages_out"]) == (2 + 3 + 4, 3 + 3)
    assert (totals["handoffs"], totals["contained"]) == (3, 2)
    assert totals["handoff_rate"] == 0.6 and totals["contained_rate"] == 0.4
    assert totals["leads"] == 2
    assert totals["first_response_median_seconds"] == 180.0
    assert totals["first_response_p90_seconds"] == 600.0
    assert totals["resolution_median_seconds"] == 2 * 3600.0
    assert totals["csat_average"] == 4.5 and totals["csat_counts"] == [0, 0, 0, 1, 1]

    day10, day11 = report["days"]
    assert (day10["day"], day10["conversations"], day10["leads"]) == (DAY, 5, 1)
    assert (day11["conversations"], day11["leads"]) == (0, 1)
    by_bot = {row["bot"]: row for row in report["bots"]}
    assert by_bot[bot_a.pk]["conversations"] == 4 and by_bot[bot_b.pk]["messages_in"] == 4
    by_channel = {row["channel_kind"]: row for row in report["channels"]}
    assert by_channel["telegram"]["handoffs"] == 0 and by_channel["webchat"]["handoffs"] == 3

    only_b = stats.stats_report(tenant=tenant, start=DAY, end=DAY, bot_id=bot_b.pk)
    assert only_b["totals"]["conversations"] == 1
    only_web = stats.stats_report(tenant=tenant, start=DAY, end=DAY, channel_kind="webchat")
    assert only_web["totals"]["conversations"] == 4


def test_a_rebuild_replaces_the_days_rows_and_touches_no_other_tenant(tenant, other_tenant, data):
    conversation_with_messages(other_tenant, created_at=at(10, 9))
    stats.stats_rebuild(tenant_id=tenant.pk, start=DAY, end=DAY)
    first = DailyStat.objects.for_tenant(tenant).count()
    stats.stats_rebuild(tenant_id=tenant.pk, start=DAY, end=DAY)
    assert DailyStat.objects.for_tenant(tenant).count() == first == 2
    assert not DailyStat.objects.for_tenant(other_tenant).exists()


def test_an_empty_range_has_zeros_and_no_rates(tenant):
    report = stats.stats_report(tenant=tenant, start=DAY, end=DAY + timedelta(days=2))
    assert len(report["days"]) == 3
    assert report["totals"]["conversations"] == 0
    assert report["totals"]["handoff_rate"] is None
    assert report["totals"]["first_response_median_seconds"] is None


def test_report_ranges_are_validated(tenant):
    with pytest.raises(ValidationFailed) as error:
        stats.stats_report(tenant=tenant, start=DAY, end=DAY - timedelta(days=1))
    assert "end" in error.value.fields
    with pytest.raises(ValidationFailed) as error:
        stats.stats_report(tenant=tenant, start=DAY, end=DAY + timedelta(days=400))
    assert "start" in error.value.fields


def test_percentiles():
    assert stats.percentile([], 0.5) is None
    assert stats.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert stats.percentile(list(range(1, 11)), 0.9) == 9.0
    assert stats.percentile([7], 0.9) == 7.0


def test_rating_a_conversation(tenant, django_capture_on_commit_callbacks):
    open_one = ConversationFactory(tenant=tenant)
    with pytest.raises(Conflict):
        conversation_rate(conversation=open_one, score=5)
    ten_days_ago = timezone.now() - timedelta(days=10)
    resolved = ConversationFactory(
        tenant=tenant,
        status=Conversation.Status.RESOLVED,
        created_at=ten_days_ago,
        resolved_at=ten_days_ago,
    )
    for bad in (0, 6, "5", True, 2.5):
        with pytest.raises(ValidationFailed) as error:
            conversation_rate(conversation=resolved, score=bad)
        assert "score" in error.value.fields
    # An old day's numbers are rebuilt after the commit.
    with django_capture_on_commit_callbacks(execute=True):
        conversation_rate(conversation=resolved, score=4)
    resolved.refresh_from_db()
    assert resolved.csat == 4
    day = ten_days_ago.date()
    assert stats.stats_report(tenant=tenant, start=day, end=day)["totals"]["csat_average"] == 4


def test_the_recent_rebuild_is_scheduled_and_covers_today(tenant):
    assert any(p.task == "stats.tasks.stats_rebuild_recent" for p in PERIODIC_TASKS)
    conversation_with_messages(tenant, created_at=timezone.now())
    from stats.tasks import stats_rebuild_recent

    stats_rebuild_recent()
    today = timezone.now().date()
    assert stats.stats_report(tenant=tenant, start=today, end=today)["totals"]["conversations"] == 1


def test_the_dashboard_page_draws_charts_for_a_date_range(owner_client, tenant, data):
    stats.stats_rebuild(tenant_id=tenant.pk, start=DAY, end=DAY)
    response = owner_client.get(
        "/dashboard/stats/dailystat/", {"start": "2030-03-09", "end": "2030-03-11"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('class="ct-chart ct-chart--wide"') == 4
    assert body.count('class="ct-chart ct-chart--narrow"') == 4
    assert "Conversations per day" in body
    # The charts' script and styles are served from here: no script or stylesheet from
    # another host (the word "cdn" could turn up in a random token: not the test).
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=\"(https?:)?//", body)
    assert response.context["report"]["totals"]["conversations"] == 5
    # Each kind of channel by its name, never its code.
    per_channel = body[body.index(">Per channel</h2>") :]
    assert "<td>Web chat</td>" in per_channel and "<td>Telegram</td>" in per_channel
    assert "<td>webchat</td>" not in per_channel
    bad = owner_client.get(
        "/dashboard/stats/dailystat/", {"start": "2030-03-11", "end": "2030-03-01"}
    )
    assert bad.status_code == 200 and bad.context["report"] is None
    assert "The end is before the start." in bad.content.decode()


def test_the_dashboard_page_names_the_period_it_shows_in_its_date_inputs(owner_client, tenant):
    from datetime import UTC, timedelta

    from django.utils import timezone

    today = timezone.now().astimezone(UTC).date()
    body = owner_client.get("/dashboard/stats/dailystat/").content.decode()
    start = (today - timedelta(days=29)).isoformat()
    assert re.search(rf'<input type="date" name="start" value="{start}"', body)
    assert re.search(rf'<input type="date" name="end" value="{today.isoformat()}"', body)
    # Only an end asked: the 30 days before it.
    body = owner_client.get("/dashboard/stats/dailystat/", {"end": "2030-03-30"}).content.decode()
    assert re.search(r'<input type="date" name="start" value="2030-03-01"', body)


def test_the_dashboard_page_is_for_staff_only(client, tenant):
    assert client.get("/dashboard/stats/dailystat/").status_code == 302


def test_the_backfill_command_rebuilds_a_range(tenant, data):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = StringIO()
    call_command("stats_rebuild", "--start", "2030-03-01", "--end", "2030-04-15", stdout=out)
    assert "Rebuilt 2030-03-01..2030-04-15" in out.getvalue()
    assert stats.stats_report(tenant=tenant, start=DAY, end=DAY)["totals"]["conversations"] == 5
    with pytest.raises(CommandError):
        call_command("stats_rebuild", "--start", "2030-03-10", "--end", "2030-03-01")


def test_the_conversations_list_links_to_the_statistics(owner_client):
    response = owner_client.get("/dashboard/conversations/conversation/")
    assert b"/dashboard/stats/dailystat/" in response.content


def test_operators_dashboard_has_no_statistics_link_that_would_refuse_them(client, tenant):
    """The numbers are a tenant's: an operator (no tenant) is not offered a page that answers
    403, neither on the home's list of apps nor on the statistics' app page."""
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("op", "op@example.com", "pw"))
    home = client.get("/dashboard/")
    assert home.status_code == 200
    assert b"/dashboard/stats/" not in home.content
    assert b"/dashboard/contacts/contact/" in home.content  # the operator's other lists are there
    assert client.get("/dashboard/stats/").status_code == 404
    assert client.get("/dashboard/stats/dailystat/").status_code == 403


def test_the_statistics_app_page_is_named_statistics(owner_client):
    body = owner_client.get("/dashboard/stats/").content.decode()
    assert "Statistics administration" in body and "Stats administration" not in body


def test_a_rows_own_address_leads_to_the_statistics_of_its_day(owner_client, tenant, data):
    """The admin gives each daily row an address: it shows the statistics page of that day,
    bot and channel, not the row's raw counters (nothing links there; a typed or old link)."""
    stats.stats_rebuild(tenant_id=tenant.pk, start=DAY, end=DAY)
    row = DailyStat.objects.filter(tenant=tenant, day=DAY, channel_kind="telegram").get()
    response = owner_client.get(f"/dashboard/stats/dailystat/{row.pk}/change/")
    assert response.status_code == 302
    assert response["Location"] == (
        f"/dashboard/stats/dailystat/?start=2030-03-10&end=2030-03-10&bot={row.bot_id}"
        "&channel=telegram"
    )
    page = owner_client.get(response["Location"])
    assert page.context["report"]["totals"]["conversations"] == 1
    other = DailyStat.objects.create(tenant=BotFactory().tenant, day=DAY)
    assert owner_client.get(f"/dashboard/stats/dailystat/{other.pk}/change/").status_code == 404
