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
import os
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import websockets

from bots.models import Bot, BotVersion
from chattonic.tenancy.models import ApiKey, Membership, Tenant
from contacts.models import Contact
from conversations.models import Conversation, Message
from leads.models import Lead
from messaging.connectors import CONNECTORS
from messaging.models import Channel
from support.models import Ticket
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _browser_missing_reason
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


def dashboard_bots(deployment) -> str:
    """The bots' list of ``deployment``'s dashboard, as the tenant's owner sees it."""
    session = requests.Session()
    login = deployment.url + "/dashboard/login/"
    session.get(login, timeout=30)
    response = session.post(
        login,
        data={
            "username": "owner@globex.example",
            "password": "x9!Pw-home",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/dashboard/bots/bot/",
        },
        headers={"Referer": login},
        timeout=30,
    )
    assert response.status_code == 200 and response.url.endswith("/dashboard/bots/bot/"), (
        response.url
    )
    return response.text


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


@pytest.fixture(scope="module")
def deployments(tmp_path_factory):
    """Both regions' deployments, for this module's tests (starting them is most of the time)."""
    with two_deployments(tmp_path_factory.mktemp("regions")) as started:
        yield started


def test_two_regions_as_two_deployments(deployments):
    us, eu = deployments["us-central"], deployments["eu-frankfurt"]
    home = seed(us, "seed_home")
    assert home["bot"]["public_key"].startswith("us.") and home["bot"]["id"] < BLOCK

    # The exchange: eu copies the tenant's identity rows, and nothing else.
    before = eu.database.counts()  # as migrated, and whatever the other tests left
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


@contextmanager
def one_page_site(html: str):
    """A tenant's web site of one page, on another loopback address than the deployments'
    (their hosts are 127.0.0.1). Yields its origin."""

    class OnePage(BaseHTTPRequestHandler):
        def do_GET(self):
            body = html["text"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), OnePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_the_widget_of_an_eu_bot_loaded_from_the_us_host_chats_with_eu(deployments):
    """The tenant's page loads widget.js from the us host, with an eu bot's key: the us
    deployment refuses the socket (421), the widget asks where the key is served and chats
    with the eu deployment; the conversation exists in the eu database only."""
    reason = _browser_missing_reason()
    if reason is not None:
        if os.environ.get("CHATTONIC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CHATTONIC_REQUIRE_BROWSER=1 but the browser tests cannot run: {reason}")
        pytest.skip(f"browser tests: {reason}")
    from playwright.sync_api import expect, sync_playwright

    us, eu = deployments["us-central"], deployments["eu-frankfurt"]
    html = {"text": ""}
    with one_page_site(html) as origin:
        bot = eu.shell(f"from tests.regions.seed import seed_widget; seed_widget({origin!r})")
        assert bot["public_key"].startswith("eu.")
        html["text"] = (
            '<!doctype html><html lang="en"><title>Initech</title><h1>Initech</h1>'
            f'<script src="{us.url}/static/chattonic/widget.js" data-bot="{bot["public_key"]}"'
            " async></script>"
        )
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = chromium.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                expect.set_options(timeout=TIMEOUT_MS)
                errors, sockets = [], []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("websocket", lambda socket: sockets.append(socket.url))
                page.goto(f"{origin}/")
                assert page.evaluate("() => [...document.scripts].map(s => s.src)") == [
                    f"{us.url}/static/chattonic/widget.js"
                ]
                page.locator("chattonic-widget button.launcher").click()
                log = page.locator("chattonic-widget .log")
                expect(log).to_contain_text("Willkommen, this chat is served in Frankfurt.")
                page.locator("chattonic-widget textarea.input").fill("Hallo from the page")
                page.locator("chattonic-widget textarea.input").press("Enter")
                expect(page.locator("chattonic-widget .msg.in[data-pending]")).to_have_count(0)
                expect(log).to_contain_text("Hallo from the page")
                assert not errors, errors
            finally:
                chromium.close()
    assert sockets[0].startswith(f"{us.ws}/ws/webchat/")  # where the script came from: 421
    assert sockets[-1].startswith(f"{eu.ws}/ws/webchat/{bot['public_key']}/")
    conversations, messages = Conversation._meta.db_table, Message._meta.db_table
    assert eu.database.count(conversations, "bot_id = ?", (bot["id"],)) == 1
    assert eu.database.count(messages, "text = ?", ("Hallo from the page",)) == 1
    assert us.database.count(messages, "text = ?", ("Hallo from the page",)) == 0
    assert us.database.count(BOTS, "public_key = ?", (bot["public_key"],)) == 0
