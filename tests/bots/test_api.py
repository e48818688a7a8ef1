"""``/api/v1/bots/``: every verb, its refusals as JSON naming the field, the region lock and
the wrong region (421), and another tenant's bots (404)."""

from __future__ import annotations

import copy

import pytest

from bots.models import Bot, BotVersion
from chattonic.tenancy.services import api_key_create
from tests.bots.flows import SIMPLE_FLOW
from tests.conftest import api_client_for
from tests.factories import BotFactory, launched_bot
from tests.regions.config import regions_configure

pytestmark = pytest.mark.django_db

BOTS = "/api/v1/bots/"


def url(bot, action: str = "") -> str:
    return f"{BOTS}{bot.pk}/" + (f"{action}/" if action else "")


def error(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]


def row(bot) -> dict:
    return Bot.objects.filter(pk=bot.pk).values().get()


def test_create_list_get(api, tenant):
    created = api.post(
        BOTS,
        {"name": "Support", "definition": SIMPLE_FLOW, "welcome_text": "Hello!"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["status"], body["region"]) == ("Support", "draft", "us-central")
    assert body["definition"] == SIMPLE_FLOW and body["published_version"] is None
    bot = Bot.objects.get(pk=body["id"])
    assert bot.tenant == tenant and bot.welcome_text == "Hello!"

    listed = api.get(BOTS).json()
    assert [b["id"] for b in listed["results"]] == [bot.pk]
    assert api.get(url(bot)).json()["public_key"] == bot.public_key


def test_create_with_an_invalid_definition_is_400_naming_node_and_field(api, tenant):
    broken = copy.deepcopy(SIMPLE_FLOW)
    broken["nodes"]["hello"]["quick_replies"][0]["next"] = "pricez"
    response = api.post(BOTS, {"name": "Support", "definition": broken}, format="json")
    assert response.status_code == 400
    err = error(response)
    assert err["code"] == "invalid"
    assert "definition.nodes.hello.quick_replies.0.next" in err["fields"]
    assert not Bot.objects.filter(tenant=tenant).exists()


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": ""}, "name"),
        ({"region": "mars"}, "region"),
        ({"allowed_origins": ["not an origin"]}, "allowed_origins"),
        ({"time_zone": "Nowhere/City"}, "time_zone"),
        ({"theme_color": "red"}, "theme_color"),
    ],
)
def test_bad_settings_are_400_naming_the_field_and_nothing_changes(api, tenant, body, field):
    bot = BotFactory(tenant=tenant)
    before = row(bot)
    response = api.patch(url(bot), body, format="json")
    assert response.status_code == 400
    assert field in error(response)["fields"]
    assert row(bot) == before


def test_patch_updates_settings_and_the_draft_together_or_not_at_all(api, tenant):
    bot = BotFactory(tenant=tenant)
    broken = copy.deepcopy(SIMPLE_FLOW)
    broken["nodes"]["ask_email"]["validation"] = "telepathy"
    before = row(bot)
    response = api.patch(url(bot), {"name": "Renamed", "definition": broken}, format="json")
    assert response.status_code == 400
    assert "definition.nodes.ask_email.validation" in error(response)["fields"]
    assert row(bot) == before  # the new name was not kept either

    changed = copy.deepcopy(SIMPLE_FLOW)
    changed["nodes"]["prices"]["text"] = "Plans start at $20."
    response = api.patch(url(bot), {"name": "Renamed", "definition": changed}, format="json")
    assert response.status_code == 200
    bot.refresh_from_db()
    assert bot.name == "Renamed" and bot.draft_definition == changed


def test_publish_rollback_versions_launch_pause(api, tenant, django_capture_on_commit_callbacks):
    bot = BotFactory(tenant=tenant)
    assert api.post(url(bot, "launch")).status_code == 409  # nothing published yet
    first = api.post(url(bot, "publish"), {"note": "first"}, format="json")
    assert first.status_code == 201 and first.json()["number"] == 1
    # Stored at once; the worker trains it once this commits (never here: no commit).
    assert first.json()["training"] == "training"
    assert api.get(url(bot)).json()["published_version"] is None
    assert api.post(url(bot, "launch")).status_code == 409  # not live before it is trained
    changed = copy.deepcopy(SIMPLE_FLOW)
    changed["nodes"]["prices"]["text"] = "Plans start at $20."
    api.patch(url(bot), {"definition": changed}, format="json")
    assert api.post(url(bot, "publish"), format="json").json()["number"] == 2

    versions = api.get(f"{url(bot)}versions/").json()["results"]
    assert [v["number"] for v in versions] == [2, 1]
    assert versions[1]["note"] == "first"
    one = api.get(f"{url(bot)}versions/1/").json()
    assert one["definition"]["nodes"]["prices"]["text"] == "Plans start at $10."

    with django_capture_on_commit_callbacks(execute=True):  # the worker trains it, then it is live
        rolled = api.post(url(bot, "rollback"), {"version": 1}, format="json")
    assert rolled.status_code == 201 and rolled.json()["number"] == 3
    assert api.get(url(bot)).json()["published_version"] == 3
    assert api.get(f"{url(bot)}versions/3/").json()["training"] == "ready"
    missing = api.post(url(bot, "rollback"), {"version": 9}, format="json")
    assert missing.status_code == 404
    assert BotVersion.objects.filter(bot=bot).count() == 3

    launched = api.post(url(bot, "launch"))
    assert launched.status_code == 200 and launched.json()["status"] == "launched"
    assert api.post(url(bot, "pause")).json()["status"] == "paused"
    refused = api.post(url(bot, "pause"))
    assert refused.status_code == 409 and error(refused)["code"] == "not_launched"


def test_versions_are_read_only(api, tenant):
    bot = launched_bot(tenant=tenant)
    version_url = f"{url(bot)}versions/1/"
    for method in ("put", "patch", "delete"):
        response = getattr(api, method)(version_url, {"note": "changed"}, format="json")
        assert response.status_code == 405
    assert BotVersion.objects.get(bot=bot).note == ""


# --- The region lock --------------------------------------------------------------------------


def test_a_drafts_region_changes_by_moving_not_by_patch(api, tenant):
    bot = BotFactory(tenant=tenant)
    before = row(bot)
    response = api.patch(url(bot), {"region": "eu-frankfurt"}, format="json")
    assert response.status_code == 409
    err = error(response)
    assert err["code"] == "region_move" and "/move/" in err["fields"]["region"][0]
    assert row(bot) == before
    assert api.patch(url(bot), {"region": "us-central"}, format="json").status_code == 200


def test_a_bot_of_another_region_is_created_there_not_here(api, tenant, regions):
    response = api.post(
        "/api/v1/bots/", {"name": "Europe", "region": "eu-frankfurt"}, format="json"
    )
    assert response.status_code == 421
    err = error(response)
    assert (err["code"], err["url"]) == ("wrong_region", "https://eu.chattonic.example")
    assert not Bot.objects.filter(name="Europe").exists()


def test_a_launched_bots_region_is_409_by_patch_and_put_and_nothing_changes(api, tenant):
    bot = launched_bot(tenant=tenant)
    before = row(bot)
    response = api.patch(url(bot), {"region": "eu-frankfurt", "name": "New"}, format="json")
    assert response.status_code == 409
    err = error(response)
    assert err["code"] == "region_locked" and "region" in err["fields"]
    assert row(bot) == before

    full = api.get(url(bot)).json()
    full.update(region="eu-frankfurt", name="New")
    response = api.put(url(bot), full, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "region_locked"
    assert row(bot) == before

    api.post(url(bot, "pause"))
    response = api.patch(url(bot), {"region": "eu-frankfurt"}, format="json")
    assert response.status_code == 409  # paused: still launched once, still locked
    assert Bot.objects.get(pk=bot.pk).region == "us-central"


# --- The wrong region -------------------------------------------------------------------------


@pytest.fixture
def regions(settings):
    regions_configure(settings, "us-central")
    return settings.CHATTONIC_REGIONS


def test_a_bot_of_another_region_is_421_naming_its_url_on_every_route(api, tenant, regions):
    bot = BotFactory(tenant=tenant, region="eu-frankfurt")
    before = row(bot)
    calls = [
        ("get", url(bot), None),
        ("patch", url(bot), {"name": "New"}),
        ("put", url(bot), {"name": "New", "region": "eu-frankfurt"}),
        ("post", url(bot, "move"), {"region": "us-central"}),
        ("post", url(bot, "publish"), {}),
        ("post", url(bot, "launch"), None),
        ("post", url(bot, "pause"), None),
        ("post", url(bot, "rollback"), {"version": 1}),
        ("get", f"{url(bot)}versions/", None),
    ]
    for method, path, body in calls:
        response = getattr(api, method)(path, body, format="json")
        assert response.status_code == 421, (method, path, response.content)
        err = error(response)
        assert err["code"] == "wrong_region"
        assert err["region"] == "eu-frankfurt"
        assert err["url"] == "https://eu.chattonic.example"
        assert "https://eu.chattonic.example" in err["message"]
    assert row(bot) == before
    assert not BotVersion.objects.filter(bot=bot).exists()


# --- Credentials ------------------------------------------------------------------------------


def test_another_tenants_bot_is_404_and_untouched(api, other_tenant):
    theirs = launched_bot(tenant=other_tenant)
    before = row(theirs)
    assert api.get(url(theirs)).status_code == 404
    assert api.patch(url(theirs), {"name": "Mine"}, format="json").status_code == 404
    assert api.post(url(theirs, "publish")).status_code == 404
    assert api.post(url(theirs, "pause")).status_code == 404
    assert api.get(f"{url(theirs)}versions/").status_code == 404
    assert row(theirs) == before
    assert BotVersion.objects.filter(bot=theirs).count() == 1


def test_a_read_only_key_reads_but_does_not_write(tenant):
    bot = BotFactory(tenant=tenant)
    reader = api_client_for(api_key_create(tenant=tenant, name="ro", scopes=["read"]))
    assert reader.get(url(bot)).status_code == 200
    assert reader.post(url(bot, "publish")).status_code == 403
    assert reader.patch(url(bot), {"name": "x"}, format="json").status_code == 403
    assert not BotVersion.objects.filter(bot=bot).exists()
    assert Bot.objects.get(pk=bot.pk).name == bot.name


def test_no_key_is_401(client):
    assert client.get(BOTS).status_code == 401
