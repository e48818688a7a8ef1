"""Two real deployments, US Central and EU Frankfurt, each with its own server process,
database and Redis (tests/regions/deployments.py), as docs/regions.md sets them up.

For a bot of one region, the other region's deployment answers 421 with the bot's region's
URL on the REST API, the widget socket's handshake and every webhook kind, and its database
never holds a row of that bot. The identity exchange copies the tenant, its staff and the API
keys' public parts, and nothing else: every other table of the receiving database is as it
was. A draft moves from us to eu and back through the API; a launched bot refuses to move.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
import websockets

from bots.models import Bot, BotVersion
from chattonic.tenancy.models import ApiKey, Membership, Tenant
from conversations.connectors import CONNECTORS
from conversations.models import Channel, Contact, Conversation, Lead, Message
from support.models import Ticket
from tests.regions.deployments import two_deployments

pytestmark = pytest.mark.processes

SITE = "https://shop.example.com"
BOTS, VERSIONS, CHANNELS = Bot._meta.db_table, BotVersion._meta.db_table, Channel._meta.db_table
# The rows the exchange may write: the identity of a tenant (and Django's own user rows).
IDENTITY_TABLES = {
    Tenant._meta.db_table,
    Membership._meta.db_table,
    ApiKey._meta.db_table,
    "auth_user",
}
CONVERSATION_TABLES = [
    model._meta.db_table for model in (Conversation, Contact, Message, Lead, Ticket)
]
BLOCK = 10**13  # settings.REGION_ID_STRIDE: eu-frankfurt's ids start there


def seed(deployment, function: str) -> dict:
    return deployment.shell(f"from tests.regions.seed import {function}; {function}({[SITE]!r})")


def api(deployment, method: str, path: str, key: str, body: dict | None = None):
    return requests.request(
        method,
        deployment.url + path,
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def assert_421(response, url: str) -> None:
    assert response.status_code == 421, (response.request.url, response.text)
    error = response.json()["error"]
    assert (error["code"], error["url"]) == ("wrong_region", url), error


async def socket_refusal(ws_base: str, public_key: str) -> tuple[int, dict]:
    """The handshake's refusal: its HTTP status and JSON body."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{ws_base}/ws/webchat/{public_key}/", origin=SITE):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body)


def assert_refused_everywhere(here, there, bot: dict, key_there: str, key_here: str) -> None:
    """``bot`` is ``there``'s: ``here`` answers 421 naming ``there`` on every door."""
    # The REST API: the bot's id (with this region's key), and the other region's key.
    for method, path, body in [
        ("get", f"/api/v1/bots/{bot['id']}/", None),
        ("patch", f"/api/v1/bots/{bot['id']}/", {"name": "Renamed"}),
        ("post", f"/api/v1/bots/{bot['id']}/publish/", {}),
        ("post", f"/api/v1/bots/{bot['id']}/move/", {"region": here.region}),
        ("get", f"/api/v1/bots/{bot['id']}/versions/", None),
    ]:
        assert_421(api(here, method, path, key_here, body), there.url)
    assert_421(api(here, "get", "/api/v1/bots/", key_there), there.url)
    # The widget socket, refused at its handshake.
    status, body = asyncio.run(socket_refusal(here.ws, bot["public_key"]))
    assert (status, body["error"]["code"], body["error"]["url"]) == (421, "wrong_region", there.url)
    # Every webhook kind, its handshake (GET) and its deliveries (POST).
    for kind, channel_id in bot["channels"].items():
        path = f"{here.url}/hooks/{kind}/{channel_id}/"
        assert_421(requests.get(path, params={"hub.mode": "subscribe"}, timeout=30), there.url)
        assert_421(requests.post(path, data=b"{}", timeout=30), there.url)
    assert set(bot["channels"]) == set(CONNECTORS)
    # And no row of the bot here.
    db = here.database
    assert db.count(BOTS, "id = ? OR public_key = ?", (bot["id"], bot["public_key"])) == 0
    assert db.count(BOTS, "name = ?", ("Renamed",)) == 0
    assert db.count(CHANNELS, f"id IN ({','.join('?' * len(bot['channels']))})",
                    tuple(bot["channels"].values())) == 0  # fmt: skip
    assert db.count(Conversation._meta.db_table, "bot_id = ?", (bot["id"],)) == 0


def test_two_regions_as_two_deployments(tmp_path):
    with two_deployments(tmp_path) as deployments:
        us, eu = deployments["us-central"], deployments["eu-frankfurt"]
        home = seed(us, "seed_home")
        assert home["bot"]["public_key"].startswith("us.") and home["bot"]["id"] < BLOCK

        # The exchange: eu copies the tenant's identity rows, and nothing else.
        before = eu.database.counts()
        eu.manage("regions_pull")
        after = eu.database.counts()
        changed = {table for table in after if after[table] != before[table]}
        assert changed == IDENTITY_TABLES, changed
        for table in CONVERSATION_TABLES:
            assert us.database.count(table) > 0 and eu.database.count(table) == 0, table
        assert eu.database.count(BOTS) == 0
        assert eu.database.rows(
            f'SELECT slug, region FROM "{Tenant._meta.db_table}"'  # noqa: S608
        ) == [("globex", "us-central")]
        copied_key = eu.database.rows(
            f'SELECT prefix, secret_hash FROM "{ApiKey._meta.db_table}"'  # noqa: S608
        )
        assert copied_key == [(home["api_key"].split("_")[1], "")]  # its public part only
        assert_421(api(eu, "get", "/api/v1/tenant/", home["api_key"]), us.url)

        away = seed(eu, "seed_away")
        assert away["bot"]["public_key"].startswith("eu.") and away["bot"]["id"] >= BLOCK
        us.manage("regions_pull")  # the eu key's public part, listed in us too
        assert us.database.count(ApiKey._meta.db_table) == 2
        assert eu.database.count(Tenant._meta.db_table) == 1  # the copy, not a second tenant

        # Each deployment serves its own bot, and refuses the other's.
        assert api(us, "get", f"/api/v1/bots/{home['bot']['id']}/", home["api_key"]).ok
        assert api(eu, "get", f"/api/v1/bots/{away['bot']['id']}/", away["api_key"]).ok
        assert_refused_everywhere(eu, us, home["bot"], home["api_key"], away["api_key"])
        assert_refused_everywhere(us, eu, away["bot"], away["api_key"], home["api_key"])

        # Creating a bot of the other region here is refused, nothing created.
        response = api(us, "post", "/api/v1/bots/", home["api_key"],
                       {"name": "Wrong place", "region": "eu-frankfurt"})  # fmt: skip
        assert_421(response, eu.url)
        assert us.database.count(BOTS, "name = ?", ("Wrong place",)) == 0

        # A draft moves to eu (its definition and versions), and back.
        draft = home["draft"]
        moved = api(us, "post", f"/api/v1/bots/{draft}/move/", home["api_key"],
                    {"region": "eu-frankfurt"})  # fmt: skip
        assert moved.status_code == 200, moved.text
        there = moved.json()
        assert there["region"] == "eu-frankfurt" and there["id"] >= BLOCK
        assert there["url"] == f"{eu.url}/api/v1/bots/{there['id']}/"
        assert us.database.count(BOTS, "name = ?", ("Draft",)) == 0
        assert us.database.count(VERSIONS, "bot_id = ?", (draft,)) == 0
        assert eu.database.count(BOTS, "id = ? AND name = ?", (there["id"], "Draft")) == 1
        assert eu.database.count(VERSIONS, "bot_id = ?", (there["id"],)) == 1
        assert_421(api(us, "get", f"/api/v1/bots/{there['id']}/", home["api_key"]), eu.url)
        in_eu = api(eu, "get", f"/api/v1/bots/{there['id']}/", away["api_key"]).json()
        assert (in_eu["region"], in_eu["status"], in_eu["published_version"]) == (
            "eu-frankfurt",
            "draft",
            1,
        )
        assert in_eu["public_key"].startswith("eu.")
        for table in CONVERSATION_TABLES:
            assert eu.database.count(table) == 0, table  # the move brought nothing else

        back = api(eu, "post", f"/api/v1/bots/{there['id']}/move/", away["api_key"],
                   {"region": "us-central"})  # fmt: skip
        assert back.status_code == 200, back.text
        home_again = back.json()
        assert home_again["region"] == "us-central" and home_again["id"] < BLOCK
        assert eu.database.count(BOTS, "name = ?", ("Draft",)) == 0
        assert us.database.count(BOTS, "id = ? AND name = ?", (home_again["id"], "Draft")) == 1
        assert api(us, "get", f"/api/v1/bots/{home_again['id']}/", home["api_key"]).ok

        # A launched bot refuses to move, by the move and by its region.
        live = home["bot"]["id"]
        for method, path, body in [
            ("post", f"/api/v1/bots/{live}/move/", {"region": "eu-frankfurt"}),
            ("patch", f"/api/v1/bots/{live}/", {"region": "eu-frankfurt"}),
        ]:
            response = api(us, method, path, home["api_key"], body)
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "region_locked"
        assert us.database.count(BOTS, "id = ? AND region = ?", (live, "us-central")) == 1
        assert eu.database.count(BOTS, "name = ?", ("Support",)) == 0
