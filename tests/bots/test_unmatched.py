"""Unmatched phrases: what visitors wrote that the live bot did not understand is listed on the
bot's page in the dashboard, each added to an intent of the draft in one click, or dismissed;
the sandbox's test chats are not counted; another tenant sees none of it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from bots import services
from bots.models import Bot, UnmatchedPhrase
from conversations.services import webchat_open
from tests.conversations.receiving import visitor_says
from tests.factories import MembershipFactory, trained

pytestmark = pytest.mark.django_db

PENGUINS = "where do penguins live in the winter"
ROUTED = {
    "format": 1,
    "start": "hello",
    "nodes": {
        "hello": {"type": "message", "text": "Ask me.", "next": "router"},
        "router": {"type": "router", "routes": {"pricing": "prices", "hours": "hours"}},
        "prices": {"type": "message", "text": "Plans start at $10.", "next": "router"},
        "hours": {"type": "message", "text": "We open at nine.", "next": "router"},
    },
    "intents": [
        {"name": "pricing", "phrases": ["how much does it cost", "what are your prices"]},
        {"name": "hours", "phrases": ["when are you open", "opening hours"]},
    ],
}


def live_bot(tenant) -> Bot:
    bot = services.bot_create(tenant=tenant, name="Shop", definition=ROUTED, fallback_limit=None)
    trained(services.bot_publish(bot=bot))
    return services.bot_launch(bot=bot)


def say(bot: Bot, visitor: str, text: str, *, sandbox: bool = False) -> list[str]:
    """A visitor's message through the web chat's service; the bot's answers."""
    conversation, _ = webchat_open(
        bot=Bot.objects.get(pk=bot.pk), visitor_id=visitor.ljust(32, "0"), sandbox=sandbox
    )
    return [reply["text"] for reply in visitor_says(conversation, text).replies]


def page(bot: Bot) -> str:
    return reverse("admin:bots_bot_unmatched", args=[bot.pk])


def act(bot: Bot, phrase: UnmatchedPhrase, verb: str) -> str:
    return reverse("admin:bots_bot_unmatched_act", args=[bot.pk, phrase.pk, verb])


def test_a_visitors_text_the_bot_did_not_understand_is_listed_on_its_page(tenant, owner_client):
    bot = live_bot(tenant)
    fallback = "Sorry, I did not understand that. Could you rephrase?"
    assert say(bot, "a", PENGUINS) == [fallback]
    assert say(bot, "b", "Where do PENGUINS live in the winter?!") == [fallback]
    assert say(bot, "c", "how much does it cost") == ["Plans start at $10."]  # understood

    (phrase,) = UnmatchedPhrase.objects.for_tenant(tenant).filter(bot=bot)
    assert (phrase.text, phrase.count, phrase.status) == (PENGUINS, 2, "new")
    status = owner_client.get(reverse("admin:bots_bot_change", args=[bot.pk])).content.decode()
    assert "1 new message the bot did not understand" in status
    listed = owner_client.get(page(bot)).content.decode()
    assert f"<td>{PENGUINS}</td>" in listed and "Add to intent" in listed and "Dismiss" in listed
    assert '<option value="pricing">pricing</option>' in listed


def test_the_sandbox_and_texts_with_personal_data_are_not_recorded(tenant):
    bot = live_bot(tenant)
    say(bot, "a", PENGUINS, sandbox=True)
    say(bot, "b", "write to me at erin.private@example.com please")
    say(bot, "c", "call me on +1 555 0100 199")
    assert not UnmatchedPhrase.objects.filter(bot=bot).exists()


def test_add_to_intent_appends_the_phrase_to_the_drafts_intent_and_publishing_teaches_it(
    tenant, owner_client
):
    bot = live_bot(tenant)
    say(bot, "a", PENGUINS)
    phrase = UnmatchedPhrase.objects.get(bot=bot)
    live = bot.published_version.definition

    response = owner_client.post(act(bot, phrase, "add"), {"intent": "hours"}, follow=True)
    assert "is now a training phrase of hours in the draft" in response.content.decode()
    bot.refresh_from_db()
    hours = next(i for i in bot.draft_definition["intents"] if i["name"] == "hours")
    assert hours["phrases"] == ["when are you open", "opening hours", PENGUINS]
    assert bot.published_version.definition == live  # only the draft changed
    phrase.refresh_from_db()
    assert (phrase.status, phrase.intent) == ("added", "hours")
    assert (
        f"<td>{PENGUINS}</td>" not in owner_client.get(page(bot)).content.decode()
    )  # no longer new
    assert f"<td>{PENGUINS}</td>" in owner_client.get(page(bot) + "?status=added").content.decode()

    trained(services.bot_publish(bot=bot))
    assert say(bot, "z", PENGUINS) == ["We open at nine."]


def test_an_intent_the_draft_does_not_have_is_refused_and_nothing_changes(tenant, owner_client):
    bot = live_bot(tenant)
    say(bot, "a", PENGUINS)
    phrase = UnmatchedPhrase.objects.get(bot=bot)
    draft = bot.draft_definition
    response = owner_client.post(act(bot, phrase, "add"), {"intent": "nope"}, follow=True)
    assert "The draft has no intent" in response.content.decode()
    bot.refresh_from_db()
    phrase.refresh_from_db()
    assert bot.draft_definition == draft and phrase.status == "new"


def test_dismiss_sets_a_phrase_aside_and_it_stays_aside(tenant, owner_client):
    bot = live_bot(tenant)
    say(bot, "a", PENGUINS)
    phrase = UnmatchedPhrase.objects.get(bot=bot)
    owner_client.post(act(bot, phrase, "dismiss"))
    say(bot, "b", PENGUINS)
    phrase.refresh_from_db()
    assert (phrase.status, phrase.count) == ("dismissed", 2)
    assert f"<td>{PENGUINS}</td>" not in owner_client.get(page(bot)).content.decode()


def test_another_tenants_staff_see_and_change_nothing(tenant, other_tenant, client):
    bot = live_bot(tenant)
    say(bot, "a", PENGUINS)
    phrase = UnmatchedPhrase.objects.get(bot=bot)
    draft = bot.draft_definition
    client.force_login(MembershipFactory(tenant=other_tenant, role="owner").user)
    assert client.get(page(bot)).status_code == 404
    assert client.post(act(bot, phrase, "add"), {"intent": "hours"}).status_code == 404
    assert client.post(act(bot, phrase, "dismiss")).status_code == 404
    their = live_bot(other_tenant)
    # Their own bot's page, with our phrase's id: not found either.
    assert client.post(act(their, phrase, "dismiss")).status_code == 404
    bot.refresh_from_db()
    phrase.refresh_from_db()
    assert bot.draft_definition == draft and phrase.status == "new"
