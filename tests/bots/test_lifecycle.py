"""The bot's lifecycle through its services: create, edit, draft, publish, roll back, launch,
pause; versions that never change; the region lock; the sandbox; an engine error."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from agents.models import HandoffEvent
from bots import services
from bots.models import Bot, BotVersion
from bots.nlu.matcher import FORMAT
from bots.selectors import bot_runtime
from chattonic.core.errors import Conflict, ValidationFailed
from conversations.models import Conversation, Message
from conversations.services import sandbox_purge, webchat_open
from leads.models import Lead
from leads.services import leads_csv, leads_for_export
from stats.services import stats_rebuild, stats_report
from tests.bots.flows import SIMPLE_FLOW
from tests.conversations.receiving import visitor_says
from tests.factories import BotFactory, BotVersionFactory, LeadFactory, launched_bot, trained

pytestmark = pytest.mark.django_db

PRICES_V1 = "Plans start at $10."
PRICES_V2 = "Plans start at $20."


def flow(**node_changes) -> dict:
    definition = copy.deepcopy(SIMPLE_FLOW)
    for node, changes in node_changes.items():
        definition["nodes"][node].update(changes)
    return definition


def open_chat(bot: Bot, visitor: str, *, sandbox: bool = False) -> Conversation:
    bot = Bot.objects.get(pk=bot.pk)  # as a door loads it, with its live version
    conversation, created = webchat_open(
        bot=bot, visitor_id=visitor.ljust(32, "0"), sandbox=sandbox
    )
    assert created
    return conversation


def say(conversation: Conversation, text: str) -> list[str]:
    """The visitor's message; the texts the bot answered with."""
    return [reply["text"] for reply in visitor_says(conversation, text).replies]


def bot_texts(conversation: Conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, sender=Message.Sender.BOT)
        .order_by("pk")
        .values_list("text", flat=True)
    )


# --- Create and edit --------------------------------------------------------------------------


def test_a_new_bot_is_a_draft_in_this_region_with_a_valid_draft(tenant, settings):
    bot = services.bot_create(tenant=tenant, name="  Support  ", definition=flow())
    assert (bot.name, bot.status, bot.region) == ("Support", "draft", settings.CHATTONIC_REGION)
    assert bot.published_version is None and bot.launched_at is None
    assert bot.draft_definition == SIMPLE_FLOW


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"region": "mars-north"}, "region"),
        ({"allowed_origins": ["https://shop.example.com/path"]}, "allowed_origins"),
        ({"allowed_origins": "https://shop.example.com"}, "allowed_origins"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"business_hours": {"mon": [["18:00", "09:00"]]}}, "business_hours"),
        ({"business_hours": {"someday": []}}, "business_hours"),
        ({"theme_color": "blue"}, "theme_color"),
        ({"intent_threshold": 1.5}, "intent_threshold"),
        ({"status": "launched"}, "status"),
        ({"name": "   "}, "name"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_nothing_changes(tenant, fields, field):
    with pytest.raises(ValidationFailed) as refused:
        services.bot_create(tenant=tenant, **{"name": "New", **fields})
    assert field in refused.value.fields
    assert not Bot.objects.filter(tenant=tenant).exists()

    bot = BotFactory(tenant=tenant)
    before = Bot.objects.filter(pk=bot.pk).values().get()
    with pytest.raises(ValidationFailed) as refused:
        services.bot_update(bot=bot, **fields)
    assert field in refused.value.fields
    assert Bot.objects.filter(pk=bot.pk).values().get() == before


def test_names_are_unique_per_tenant_only(tenant, other_tenant):
    services.bot_create(tenant=tenant, name="Support")
    with pytest.raises(Conflict) as refused:
        services.bot_create(tenant=tenant, name="Support")
    assert "name" in refused.value.fields
    assert services.bot_create(tenant=other_tenant, name="Support").tenant == other_tenant


def test_settings_are_cleaned_and_saved(tenant):
    bot = BotFactory(tenant=tenant)
    services.bot_update(
        bot=bot,
        allowed_origins=["https://Shop.Example.com/"],
        time_zone="Europe/Berlin",
        business_hours={"sat": [["10:00", "14:00"]]},
        ticket_after_hours=True,
    )
    bot.refresh_from_db()
    assert bot.allowed_origins == ["https://shop.example.com"]
    assert (bot.time_zone, bot.ticket_after_hours) == ("Europe/Berlin", True)
    assert bot.business_hours == {"sat": [["10:00", "14:00"]]}


def test_an_invalid_draft_is_refused_naming_the_node_and_the_field(tenant):
    bot = BotFactory(tenant=tenant)
    broken = flow(hello={"quick_replies": [{"title": "Prices", "next": "pricez"}]})
    broken["nodes"]["ask_email"]["validation"] = "telepathy"
    with pytest.raises(ValidationFailed) as refused:
        services.draft_update(bot=bot, definition=broken)
    fields = refused.value.fields
    assert "definition.nodes.hello.quick_replies.0.next" in fields
    assert "pricez" in fields["definition.nodes.hello.quick_replies.0.next"][0]
    assert "definition.nodes.ask_email.validation" in fields
    bot.refresh_from_db()
    assert bot.draft_definition == SIMPLE_FLOW
    with pytest.raises(ValidationFailed) as refused:
        services.bot_create(tenant=tenant, name="Other", definition=broken)
    assert "definition.nodes.ask_email.validation" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        services.draft_update(bot=bot, definition=["not", "an", "object"])
    assert "definition" in refused.value.fields


# --- Publish, roll back, launch, pause --------------------------------------------------------


def test_publishing_snapshots_the_draft_with_the_bots_settings_and_a_trained_matcher(tenant, owner):
    bot = BotFactory(tenant=tenant, fallback_text="Pardon?", default_language="es")
    v1 = trained(services.bot_publish(bot=bot, note="first", published_by=owner))
    v2 = trained(services.bot_publish(bot=bot))
    assert (v1.number, v2.number) == (1, 2)
    assert (v1.note, v1.published_by) == ("first", owner)
    bot.refresh_from_db()
    assert bot.published_version == v2
    assert v1.definition["nodes"] == SIMPLE_FLOW["nodes"]
    assert v1.definition["settings"]["fallback_text"] == "Pardon?"
    assert v1.definition["settings"]["language"] == "es"
    # The stored matcher is in the format bots.nlu loads, and classifies the bot's intents.
    assert v1.nlu_model["format"] == FORMAT
    assert v1.nlu_model["language"] == "es"
    assert bot_runtime(bot, v1.pk).matcher.classify("what does it cost")[0] == "pricing"


def test_versions_go_live_as_they_are_trained_never_an_older_over_a_newer(tenant, monkeypatch):
    bot = BotFactory(tenant=tenant)
    v1 = services.bot_publish(bot=bot)
    v2 = services.bot_publish(bot=bot)
    assert (v1.training, v2.training) == ("training", "training") and v1.nlu_model == {}
    bot.refresh_from_db()
    assert bot.published_version is None  # nothing live before its training
    assert trained(v2).training == BotVersion.Training.READY
    assert trained(v1).training == BotVersion.Training.READY  # the worker was late with v1
    bot.refresh_from_db()
    assert bot.published_version == v2  # v1 trained later does not take v2's place
    assert trained(v2).nlu_model == BotVersion.objects.get(pk=v2.pk).nlu_model  # safe twice

    # A training that fails leaves the live version live, and says so on the version.
    def broken(definition):
        raise MemoryError("no room for the matcher")

    monkeypatch.setattr(services.IntentMatcher, "from_definition", broken)
    v3 = services.bot_publish(bot=bot)
    with pytest.raises(MemoryError):
        services.bot_version_train(version_id=v3.pk)
    assert BotVersion.objects.get(pk=v3.pk).training == BotVersion.Training.FAILED
    assert Bot.objects.get(pk=bot.pk).published_version == v2


def test_a_version_stored_without_a_usable_matcher_is_trained_again_from_its_definition(tenant):
    version = BotVersionFactory(tenant=tenant, nlu_model={"format": "chattonic.intent-matcher/1"})
    intent, confidence = bot_runtime(version.bot, version.pk).matcher.classify("where is my order")
    assert (intent, confidence) == ("track_order", 1.0)


def test_rollback_publishes_the_old_definition_as_a_new_version_and_the_draft_follows(tenant):
    bot = BotFactory(tenant=tenant)
    v1 = trained(services.bot_publish(bot=bot))
    services.draft_update(bot=bot, definition=flow(prices={"text": PRICES_V2}))
    v2 = trained(services.bot_publish(bot=bot))
    v3 = trained(services.bot_rollback(bot=bot, version=v1))
    assert v3.number == 3 and v3.note == "Rollback to version 1"
    assert v3.definition == v1.definition
    bot.refresh_from_db()
    assert bot.published_version == v3
    assert bot.draft_definition["nodes"]["prices"]["text"] == PRICES_V1
    v2.refresh_from_db()
    assert v2.definition["nodes"]["prices"]["text"] == PRICES_V2  # untouched

    other = BotFactory(tenant=tenant)
    with pytest.raises(ValidationFailed):
        trained(services.bot_rollback(bot=other, version=v1))
    assert not BotVersion.objects.filter(bot=other).exists()


def test_launch_needs_a_published_version_and_pause_a_launched_bot(tenant):
    bot = BotFactory(tenant=tenant)
    with pytest.raises(Conflict) as refused:
        services.bot_launch(bot=bot)
    assert refused.value.code == "not_published"
    with pytest.raises(Conflict) as refused:
        services.bot_pause(bot=bot)
    assert refused.value.code == "not_launched"
    bot.refresh_from_db()
    assert (bot.status, bot.launched_at) == ("draft", None)

    # Published a moment ago, its version still training: "launch it again in a moment",
    # not "publish the bot first" (an owner's Launch right after "Save and publish").
    version = services.bot_publish(bot=bot)
    with pytest.raises(Conflict) as refused:
        services.bot_launch(bot=bot)
    assert refused.value.code == "publishing" and "in a moment" in str(refused.value)
    trained(version)
    bot = services.bot_launch(bot=bot)
    launched_at = bot.launched_at
    assert bot.status == "launched" and launched_at is not None
    assert services.bot_pause(bot=bot).status == "paused"
    again = services.bot_launch(bot=bot)
    assert (again.status, again.launched_at) == ("launched", launched_at)


# --- A published version never changes --------------------------------------------------------


def test_editing_and_publishing_again_leaves_running_conversations_on_their_version(tenant):
    bot = launched_bot(tenant=tenant)
    v1 = bot.published_version
    v1_definition = copy.deepcopy(v1.definition)
    old = open_chat(bot, "old")
    assert old.bot_version == v1

    edited = flow(prices={"text": PRICES_V2}, hello={"text": "Hello again! What can I do for you?"})
    services.draft_update(bot=bot, definition=edited)
    # A saved draft is not live: a new conversation still gets version 1.
    assert say(open_chat(bot, "between"), "how much is it") == [PRICES_V1]
    v2 = trained(services.bot_publish(bot=bot))

    v1.refresh_from_db()
    assert v1.definition == v1_definition
    assert say(old, "how much is it") == [PRICES_V1]
    new = open_chat(bot, "new")
    assert new.bot_version == v2
    assert "Hello again! What can I do for you?" in bot_texts(new)
    assert say(new, "how much is it") == [PRICES_V2]
    # And the old one goes on with version 1 for the rest of its life.
    assert say(old, "what does it cost") == [PRICES_V1]
    old.refresh_from_db()
    assert old.bot_version == v1


# --- The region lock --------------------------------------------------------------------------


def test_a_bots_region_changes_only_by_moving_and_never_once_launched(tenant):
    bot = BotFactory(tenant=tenant)
    with pytest.raises(Conflict) as refused:
        services.bot_update(bot=bot, region="eu-frankfurt")
    assert refused.value.code == "region_move"  # its rows move with it: bot_move
    trained(services.bot_publish(bot=bot))
    services.bot_launch(bot=bot)
    for state in ("launched", "paused"):
        with pytest.raises(Conflict) as refused:
            services.bot_update(bot=bot, region="eu-frankfurt", name="Renamed")
        assert refused.value.code == "region_locked"
        assert "region" in refused.value.fields
        with pytest.raises(Conflict) as refused:
            services.bot_move(bot=bot, region="eu-frankfurt")
        assert refused.value.code == "region_locked"
        bot.refresh_from_db()
        assert (bot.region, bot.status) == ("us-central", state)
        assert bot.name != "Renamed"
        if state == "launched":
            services.bot_pause(bot=bot)
    # The same region again is no change, and other fields still change.
    assert services.bot_update(bot=bot, region="us-central", name="Renamed").name == "Renamed"


def test_model_validation_refuses_a_launched_bots_new_region(tenant):
    bot = launched_bot(tenant=tenant)
    bot.region = "eu-frankfurt"
    with pytest.raises(ValidationError) as refused:
        bot.full_clean()
    assert "region" in refused.value.message_dict
    draft = BotFactory(tenant=tenant)
    draft.region = "eu-frankfurt"
    draft.full_clean()  # a draft may move


# --- The sandbox ------------------------------------------------------------------------------


def test_the_sandbox_runs_the_draft_and_the_public_chat_the_published_version(tenant):
    bot = launched_bot(tenant=tenant)
    services.draft_update(bot=bot, definition=flow(prices={"text": PRICES_V2}))
    sandbox = open_chat(bot, "staff", sandbox=True)
    public = open_chat(bot, "visitor")
    assert sandbox.is_sandbox and sandbox.bot_version is None
    assert say(sandbox, "how much is it") == [PRICES_V2]
    assert say(public, "how much is it") == [PRICES_V1]
    # Saving the draft again reaches the running sandbox chat at once.
    services.draft_update(bot=bot, definition=flow(prices={"text": "Free!"}))
    assert say(sandbox, "what does it cost") == ["Free!"]


def test_a_draft_bot_can_be_tested_before_it_is_ever_published(tenant):
    bot = BotFactory(tenant=tenant)
    sandbox = open_chat(bot, "staff", sandbox=True)
    assert "What can I do for you?" in bot_texts(sandbox)


def test_sandbox_conversations_record_no_leads_and_stay_off_channels(
    tenant, django_capture_on_commit_callbacks
):
    bot = launched_bot(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        sandbox = open_chat(bot, "staff", sandbox=True)
        say(sandbox, "Email me")
        assert say(sandbox, "staff@example.com") == ["Thanks, we'll write to staff@example.com."]
        public = open_chat(bot, "visitor")
        say(public, "Email me")
        say(public, "visitor@example.com")
    assert not Lead.objects.filter(conversation=sandbox).exists()
    assert Lead.objects.get().fields == {"email": "visitor@example.com"}
    # The sandbox talks over the dashboard's socket only: no channel, every reply sent there.
    sandbox.refresh_from_db()
    assert (sandbox.channel_kind, sandbox.channel_id) == ("webchat", None)
    statuses = set(
        Message.objects.filter(conversation=sandbox, direction="out").values_list(
            "status", flat=True
        )
    )
    assert statuses == {Message.Status.SENT}


def test_sandbox_conversations_are_absent_from_stats_and_lead_exports(tenant):
    bot = launched_bot(tenant=tenant)
    public = open_chat(bot, "visitor")
    say(public, "Email me")
    assert say(public, "visitor@example.com") == ["Thanks, we'll write to visitor@example.com."]
    sandbox = open_chat(bot, "staff", sandbox=True)
    for text in ("Email me", "staff@example.com"):  # the flow's end: this one is over
        say(sandbox, text)
    handed = open_chat(bot, "staff-2", sandbox=True)
    for text in ("how much is it", "talk to a human"):
        say(handed, text)
    assert Conversation.objects.get(pk=handed.pk).status == Conversation.Status.QUEUED
    # Even a lead row tied to a sandbox conversation (none is made: see above) stays out.
    LeadFactory(tenant=tenant, contact=sandbox.contact, conversation=sandbox, bot=bot)

    today = timezone.now().date()
    stats_rebuild(tenant_id=tenant.pk, start=today, end=today)
    totals = stats_report(tenant=tenant, start=today, end=today)["totals"]
    public_messages = Message.objects.filter(conversation=public)
    assert totals["conversations"] == 1
    assert totals["messages_in"] == public_messages.filter(direction="in").count() == 2
    assert totals["messages_out"] == public_messages.filter(direction="out").count()
    assert (totals["handoffs"], totals["leads"]) == (0, 1)

    exported = list(leads_for_export(Lead.objects.for_tenant(tenant)))
    assert [lead.conversation_id for lead in exported] == [public.pk]
    csv_text = "".join(leads_csv(Lead.objects.for_tenant(tenant)))
    assert "visitor@example.com" in csv_text and "staff@example.com" not in csv_text


def test_sandbox_conversations_are_purged_after_a_week(tenant):
    bot = launched_bot(tenant=tenant)
    stale = open_chat(bot, "stale", sandbox=True)
    fresh = open_chat(bot, "fresh", sandbox=True)
    public = open_chat(bot, "public")
    week_ago = timezone.now() - timedelta(days=8)
    Conversation.objects.filter(pk__in=[stale.pk, public.pk]).update(last_message_at=week_ago)
    assert sandbox_purge() >= 1
    assert set(Conversation.objects.values_list("pk", flat=True)) == {fresh.pk, public.pk}


# --- An engine error --------------------------------------------------------------------------


LOOPING = {
    "start": "hello",
    "nodes": {
        "hello": {
            "type": "message",
            "text": "Pick one",
            "quick_replies": [{"title": "Spin", "next": "a"}],
        },
        "a": {"type": "set", "variables": {"n": 1}, "next": "b"},
        "b": {
            "type": "condition",
            "rules": [{"when": [{"variable": "n", "op": "set"}], "next": "a"}],
        },
    },
}


def test_an_engine_error_says_the_fallback_text_and_hands_off_to_a_person(tenant):
    bot = BotFactory(tenant=tenant, draft_definition=LOOPING, fallback_text="Sorry {{who|friend}}!")
    trained(services.bot_publish(bot=bot))
    services.bot_launch(bot=bot)
    conversation = open_chat(bot, "visitor")
    state_before = Conversation.objects.get(pk=conversation.pk).engine_state
    assert say(conversation, "Spin") == ["Sorry friend!"]
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.QUEUED
    assert conversation.handoff_reason == "bot_error"
    assert conversation.engine_state == state_before  # as it was before the message
    event = HandoffEvent.objects.get(conversation=conversation)
    assert (event.from_status, event.to_status, event.reason) == ("bot", "queued", "bot_error")
    assert event.get_reason_display() == "The bot failed"
