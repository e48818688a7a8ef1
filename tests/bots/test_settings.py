"""A bot's settings: allowed origins and business hours in their one stored form, and the
conversation settings' one source (the bot's fields; a draft carries none; a version keeps
them; a rollback brings them back), on every door."""

from __future__ import annotations

import copy
import importlib
from datetime import UTC, datetime

import pytest
from django.apps import apps

from bots import services
from bots.hours import business_hours_normalize, within_business_hours
from bots.models import Bot, BotVersion
from bots.origins import origin_normalize
from bots.selectors import bot_runtime
from chattonic.core.errors import ValidationFailed
from tests.bots.flows import SIMPLE_FLOW
from tests.factories import BotFactory, launched_bot, trained

pytestmark = pytest.mark.django_db

# --- Origins --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,origin",
    [
        ("https://shop.example.com", "https://shop.example.com"),
        (" HTTPS://Shop.Example.COM/ ", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://shop.example.com:80/", "http://shop.example.com"),
        ("http://127.0.0.2:8081", "http://127.0.0.2:8081"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_an_origin_is_stored_as_a_browser_sends_it(value, origin):
    assert origin_normalize(value) == origin


@pytest.mark.parametrize(
    "value,problem",
    [
        ("", "cannot be empty"),
        ("shop.example.com", "needs its scheme"),
        ("ftp://shop.example.com", "must start with https://"),
        ("https://shop.example.com/cart", "is a page, not an origin"),
        ("https://shop.example.com/?q=1", "is a page, not an origin"),
        ("https://user:pw@shop.example.com", "user name or password"),
        ("https://*.example.com", "wildcards are not supported"),
        ("https://shop.example.com:99999", "not a valid address"),
        ("https://", "has no host name"),
    ],
)
def test_what_is_not_an_origin_is_refused_saying_why(value, problem):
    with pytest.raises(ValueError, match=problem):
        origin_normalize(value)


# --- Business hours ---------------------------------------------------------------------------


def test_hours_are_stored_in_order_with_closed_days_left_out_and_midnight_as_24():
    hours = business_hours_normalize(
        {"mon": [["13:00", "18:00"], ["09:00", "12:00"]], "tue": [], "sun": [["22:00", "24:00"]]}
    )
    assert hours == {"mon": [["09:00", "12:00"], ["13:00", "18:00"]], "sun": [["22:00", "24:00"]]}
    sunday_late = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)  # a Sunday
    assert within_business_hours(hours, "UTC", sunday_late)
    assert not within_business_hours(hours, "UTC", sunday_late.replace(hour=21))


@pytest.mark.parametrize(
    "hours,problem",
    [
        ({"mon": [["18:00", "09:00"]]}, "Monday: 18:00 to 09:00 must end after it starts"),
        ({"tue": [["09:00", "13:00"], ["12:00", "14:00"]]}, "Tuesday: 09:00 to 13:00 and 12:00"),
        ({"wed": [["24:00", "24:00"]]}, "Wednesday: each range is"),
        ({"thu": [["9:00", "17:00"]]}, "Thursday: each range is"),
        ({"someday": []}, "Per weekday"),
        ([["09:00", "17:00"]], "Per weekday"),
    ],
)
def test_bad_hours_are_refused_naming_the_weekday(hours, problem):
    with pytest.raises(ValueError, match=problem):
        business_hours_normalize(hours)


# --- One source for the conversation settings -------------------------------------------------


def test_a_draft_with_settings_is_refused_on_every_door_and_nothing_changes(tenant, api):
    bot = BotFactory(tenant=tenant)
    with_settings = {**copy.deepcopy(SIMPLE_FLOW), "settings": {"fallback_text": "Eh?"}}
    with pytest.raises(ValidationFailed) as refused:
        services.draft_update(bot=bot, definition=with_settings)
    assert "definition.settings" in refused.value.fields
    with pytest.raises(ValidationFailed):
        services.bot_create(tenant=tenant, name="Other", definition=with_settings)

    response = api.patch(f"/api/v1/bots/{bot.pk}/", {"definition": with_settings}, format="json")
    assert response.status_code == 400
    assert "definition.settings" in response.json()["error"]["fields"]
    bot.refresh_from_db()
    assert bot.draft_definition == SIMPLE_FLOW
    assert list(Bot.objects.filter(tenant=tenant).values_list("name", flat=True)) == [bot.name]


def test_publishing_puts_every_setting_of_the_bot_in_the_version_and_the_engine_uses_it(tenant):
    bot = BotFactory(
        tenant=tenant,
        welcome_text="Welcome!",
        fallback_text="Pardon?",
        handoff_text="A person is coming.",
        fallback_limit=None,
        intent_threshold=0.5,
        default_language="pt",
    )
    version = trained(services.bot_publish(bot=bot))
    assert version.definition["settings"] == {
        "welcome_text": "Welcome!",
        "fallback_text": "Pardon?",
        "handoff_text": "A person is coming.",
        "fallback_limit": None,
        "intent_threshold": 0.5,
        "language": "pt",
    }
    # The sandbox runs the draft with the bot's settings as they are now.
    services.bot_update(bot=bot, fallback_text="Como?")
    bot.refresh_from_db()
    assert bot_runtime(bot, None).definition["settings"]["fallback_text"] == "Como?"
    assert bot_runtime(bot, version.pk).definition["settings"]["fallback_text"] == "Pardon?"


def test_a_rollback_brings_back_the_versions_settings(tenant):
    bot = launched_bot(tenant=tenant, welcome_text="One", fallback_limit=1, default_language="es")
    services.bot_update(bot=bot, welcome_text="Two", fallback_limit=None, default_language="en")
    trained(services.bot_publish(bot=bot))
    first = BotVersion.objects.get(bot=bot, number=1)
    third = trained(services.bot_rollback(bot=bot, version=first))
    bot.refresh_from_db()
    assert (bot.welcome_text, bot.fallback_limit, bot.default_language) == ("One", 1, "es")
    assert third.definition["settings"] == first.definition["settings"]
    assert third.nlu_model["language"] == "es"


def test_a_rollback_to_a_version_published_without_a_setting_takes_the_engines_default(tenant):
    bot = launched_bot(tenant=tenant, handoff_text="Someone will answer.")
    old = bot.published_version
    settings = {k: v for k, v in old.definition["settings"].items() if k != "handoff_text"}
    BotVersion.objects.filter(pk=old.pk).update(definition={**old.definition, "settings": settings})
    trained(services.bot_publish(bot=bot))
    trained(services.bot_rollback(bot=bot, version=BotVersion.objects.get(pk=old.pk)))
    bot.refresh_from_db()
    assert bot.handoff_text == ""  # the engine's own handoff text, as that version said


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"fallback_limit": 21}, "fallback_limit"),  # docs/bots.md: 0 to 20 or empty
        ({"fallback_limit": -1}, "fallback_limit"),
        ({"intent_threshold": 1.01}, "intent_threshold"),  # docs/bots.md: 0 to 1
        ({"intent_threshold": -0.01}, "intent_threshold"),
        ({"allowed_origins": [f"https://s{n}.example.com" for n in range(51)]}, "allowed_origins"),
        ({"fallback_limit": True}, "fallback_limit"),
        ({"intent_threshold": "high"}, "intent_threshold"),
        ({"welcome_text": "Hi {{"}, "welcome_text"),
        ({"handoff_text": None}, "handoff_text"),
        ({"default_language": "fr"}, "default_language"),
    ],
)
def test_bad_conversation_settings_are_refused_naming_the_field(tenant, changes, field):
    bot = BotFactory(tenant=tenant)
    before = Bot.objects.filter(pk=bot.pk).values().get()
    with pytest.raises(ValidationFailed) as refused:
        services.bot_update(bot=bot, **changes)
    assert field in refused.value.fields
    assert Bot.objects.filter(pk=bot.pk).values().get() == before


@pytest.mark.parametrize(
    "changes",
    [
        {"fallback_limit": 0},
        {"fallback_limit": 20},
        {"fallback_limit": None},
        {"intent_threshold": 0},
        {"intent_threshold": 1},
        {"allowed_origins": [f"https://s{n}.example.com" for n in range(50)]},
    ],
)
def test_the_documented_bounds_of_the_settings_are_taken(tenant, changes):
    bot = services.bot_update(bot=BotFactory(tenant=tenant), **changes)
    bot.refresh_from_db()
    assert {name: getattr(bot, name) for name in changes} == changes


def test_the_api_reads_and_writes_the_settings_as_bot_fields(api, tenant):
    bot = BotFactory(tenant=tenant)
    response = api.patch(
        f"/api/v1/bots/{bot.pk}/",
        {
            "handoff_text": "Hold on.",
            "fallback_limit": None,
            "allowed_origins": ["HTTPS://A.example/"],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["handoff_text"], body["fallback_limit"]) == ("Hold on.", None)
    assert body["allowed_origins"] == ["https://a.example"]
    assert "settings" not in body["definition"]
    refused = api.patch(f"/api/v1/bots/{bot.pk}/", {"fallback_limit": 50}, format="json")
    assert refused.status_code == 400
    assert "fallback_limit" in refused.json()["error"]["fields"]


def test_the_migration_moves_a_drafts_settings_to_the_bot(tenant):
    migration = importlib.import_module("bots.migrations.0004_bot_settings_one_source")
    bot = BotFactory(tenant=tenant, fallback_limit=3)
    draft = {
        **copy.deepcopy(SIMPLE_FLOW),
        "settings": {"handoff_text": "From the draft.", "fallback_text": "Never used."},
    }
    Bot.objects.filter(pk=bot.pk).update(draft_definition=draft, fallback_limit=50)
    untouched = BotFactory(tenant=tenant)
    stamp = Bot.objects.get(pk=untouched.pk).updated_at
    migration.settings_to_the_bot(apps, None)
    bot.refresh_from_db()
    assert bot.draft_definition == SIMPLE_FLOW
    assert (bot.handoff_text, bot.fallback_limit) == ("From the draft.", 20)
    assert bot.fallback_text != "Never used."  # the bot's own text was the live one
    assert Bot.objects.get(pk=untouched.pk).updated_at == stamp
