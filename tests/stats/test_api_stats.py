"""``/api/v1/stats/``: the tenant's numbers only; range and filters; auth; input."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conversations.insight import auth_failures, expected_auth_failures
from tests.factories import BotFactory, DailyStatFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/stats/"


def test_the_tenants_numbers_of_a_range(api, tenant, other_tenant):
    bot = BotFactory(tenant=tenant)
    DailyStatFactory(
        tenant=tenant,
        bot=bot,
        day=date(2030, 3, 10),
        conversations=4,
        handoffs=1,
        first_response_seconds=[10, 20, 30],
        csat_counts=[0, 0, 0, 1, 1],
    )
    DailyStatFactory(
        tenant=tenant, bot=bot, day=date(2030, 3, 11), conversations=6, channel_kind="telegram"
    )
    DailyStatFactory(tenant=tenant, day=date(2030, 4, 1), conversations=100)
    DailyStatFactory(tenant=other_tenant, day=date(2030, 3, 10), conversations=1000)
    response = api.get(URL, {"start": "2030-03-10", "end": "2030-03-12"})
    assert response.status_code == 200, response.json()
    body = response.json()
    totals = body["totals"]
    assert totals["conversations"] == 10 and totals["handoff_rate"] == 0.1
    assert totals["first_response_median_seconds"] == 20.0 and totals["csat_average"] == 4.5
    assert [d["conversations"] for d in body["days"]] == [4, 6, 0]
    assert body["bots"][0]["bot"] == bot.pk
    web = api.get(URL, {"start": "2030-03-10", "end": "2030-03-12", "channel": "webchat"})
    assert web.json()["totals"]["conversations"] == 4


def test_defaults_to_the_last_30_days(api):
    body = api.get(URL).json()
    assert len(body["days"]) == 30


@pytest.mark.parametrize(
    "params,field",
    [
        ({"start": "March"}, "start"),
        ({"start": "2030-03-10", "end": "2030-03-01"}, "end"),
        ({"start": "2028-01-01", "end": "2030-01-01"}, "start"),
        ({"bot": "x"}, "bot"),
        ({"channel": "fax"}, "channel"),
    ],
)
def test_bad_parameters_name_the_field(api, params, field):
    response = api.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_another_tenants_bot_is_an_unknown_bot(api, other_tenant):
    response = api.get(URL, {"bot": BotFactory(tenant=other_tenant).pk})
    assert response.status_code == 400 and "bot" in response.json()["error"]["fields"]


def test_auth_failures(tenant):
    assert auth_failures(tenant, "get", URL) == expected_auth_failures("read")
