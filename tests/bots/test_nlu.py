"""Understanding visitors: the intent matcher, the order of understanding at a waiting node, and
the visitor's language, through the same path a conversation takes (conversations'
engine_step: the matcher, then the engine)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bots.engine import step
from bots.engine.types import Context, Event
from bots.nlu import IntentMatcher
from bots.nlu import matcher as matcher_module
from bots.nlu.language import detect_language
from conversations.services import engine_step

DATA = json.loads((Path(__file__).parent / "data" / "multilingual_eval.json").read_text())

SHOP_FLOW = {
    "start": "menu",
    "intents": [
        {"name": "order_status", "phrases": ["where is my order", "track my order"]},
        {"name": "opening_hours", "phrases": ["when are you open", "opening hours"]},
    ],
    "nodes": {
        "menu": {
            "type": "message",
            "text": "How can I help?",
            "quick_replies": [
                {"title": "Atención al cliente", "payload": "support", "next": "ask_email"},
                {"title": "Opening hours", "next": "hours"},
            ],
        },
        "hours": {"type": "end", "text": "We open at nine."},
        "ask_email": {
            "type": "question",
            "text": "What is your email?",
            "variable": "email",
            "validation": "email",
            "next": "bye",
        },
        "bye": {"type": "end", "text": "Thanks, {{email}}."},
    },
    "translations": {
        "es": {
            "texts": {"welcome_text": "¡Hola!"},
            "nodes": {
                "menu": {"text": "¿En qué te ayudo?", "quick_replies": ["", "Horario"]},
                "hours": {"text": "Abrimos a las nueve."},
            },
            "intents": {"order_status": ["dónde está mi pedido"]},
        }
    },
    "settings": {"language": "en", "welcome_text": "Hi!", "fallback_limit": None},
}


class _Bot:
    """What engine_step reads from a bot: its hours (always open here)."""

    business_hours = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    business_hours |= {"sat": [["00:00", "24:00"]], "sun": [["00:00", "24:00"]]}
    time_zone = "UTC"


class _Runtime:
    def __init__(self, definition):
        self.definition = definition
        self.matcher = IntentMatcher.from_definition(definition)


@pytest.fixture(scope="module")
def shop() -> _Runtime:
    return _Runtime(SHOP_FLOW)


class Visitor:
    """A conversation driven through conversations.services.engine_step, as a bot turn is."""

    def __init__(self, runtime: _Runtime, language: str = "en") -> None:
        self.runtime, self.language, self.state = runtime, language, None
        self.actions: list[dict] = []

    def send(self, event: Event) -> list[str]:
        result = engine_step(
            bot=_Bot(),
            runtime=self.runtime,
            channel_kind="webchat",
            language=self.language,
            state=self.state,
            event=event,
            now=datetime(2026, 3, 14, 12, tzinfo=UTC),
            open_now=True,
        )
        assert result.error is None, result.error
        self.state, self.actions = result.state, result.actions
        self.replies = result.replies
        return [reply["text"] for reply in result.replies]

    def say(self, text: str) -> list[str]:
        return self.send(Event(type="message", text=text))


@pytest.mark.parametrize(
    "typed", ["atencion al cliente!", "ATENCIÓN AL CLIENTE", "atencion al clinete", "1"]
)
def test_a_quick_reply_typed_with_typos_and_accents_presses_the_button(shop, typed):
    visitor = Visitor(shop)
    visitor.send(Event(type="start"))
    assert visitor.say(typed) == ["What is your email?"]
    assert visitor.actions == []  # not handed to a person


@pytest.mark.parametrize(
    "typed",
    ["ana @example.com", "ana at example dot com", "anaexample.com", "john.smith.gmail.com"],
)
def test_an_email_with_a_typo_gets_the_retry_text_never_a_handoff(shop, typed):
    visitor = Visitor(shop)
    visitor.send(Event(type="start"))
    visitor.send(Event(type="quick_reply", text="Atención al cliente", payload="support"))
    replies = visitor.say(typed)
    assert replies == ["That doesn't look like an email address. Please try again."]
    assert visitor.actions == [] and visitor.state["status"] == "waiting"


def test_quiero_hablar_con_una_persona_hands_off_on_an_english_bot(shop):
    visitor = Visitor(shop)
    visitor.send(Event(type="start"))
    visitor.say("quiero hablar con una persona")
    assert [a["type"] for a in visitor.actions] == ["handoff"]
    assert visitor.state["status"] == "handoff"
    # The message was Spanish: the engine's own handoff text is said in Spanish.
    message = visitor.actions[0]["message"]
    assert message == "Te pongo en contacto con una persona de nuestro equipo."


@pytest.mark.parametrize(
    "typed",
    [
        "Hi again, it's me about order 1234. talk to a person",
        "Hola, soy yo otra vez por el pedido 1234. Quiero hablar con una persona!",
        "Oi, sou eu de novo sobre o pedido 1234.\nquero falar com um atendente",
    ],
)
def test_asking_for_a_person_in_one_sentence_of_a_longer_message_hands_off(shop, typed):
    """At the menu (a node that waits: only a clear request interrupts it), a request for a
    person in the last sentence of a longer message hands off. The whole message scored below
    the bar, its first sentence diluting the second."""
    visitor = Visitor(shop)
    visitor.send(Event(type="start"))
    visitor.say(typed)
    assert [a["type"] for a in visitor.actions] == ["handoff"]
    assert visitor.state["status"] == "handoff"


def test_a_message_is_read_a_sentence_at_a_time_only_when_it_has_several(shop):
    assert matcher_module.sentences("where is my order") == []
    assert matcher_module.sentences("It costs 1.5 dollars, right?") == []
    assert matcher_module.sentences("thanks. where is my order?") == [
        "thanks.",
        "where is my order?",
    ]
    many = "One. Two. Three. Four. Five. Six."
    assert matcher_module.sentences(many) == ["One.", "Two.", "Five.", "Six."]
    # A sentence's own intent wins over the whole message's weaker reading.
    understood = shop.matcher.understand("I just got here. where is my order?")
    assert understood.intent == "order_status" and understood.confidence == 1.0
    # Nothing in any sentence: nothing found, as for the whole.
    assert shop.matcher.understand("It rained. The cat sleeps.").intent is None


def test_a_spanish_visitor_gets_the_spanish_texts(shop):
    visitor = Visitor(shop, language="es")
    assert visitor.send(Event(type="start")) == ["¡Hola!", "¿En qué te ayudo?"]
    assert [b["title"] for b in visitor.replies[1]["quick_replies"]] == [
        "Atención al cliente",  # no Spanish title given: the default one
        "Horario",
    ]
    assert visitor.say("horario") == ["Abrimos a las nueve."]


def test_a_missing_translation_falls_back_to_the_default_language(shop):
    visitor = Visitor(shop, language="pt")  # no Portuguese texts at all
    assert visitor.send(Event(type="start")) == ["Hi!", "How can I help?"]
    definition = copy.deepcopy(SHOP_FLOW)
    del definition["translations"]["es"]["nodes"]["hours"]
    result = step(
        definition, None, Event(type="start"), Context(language="es", now=datetime.now(UTC))
    )
    state = result.state
    result = step(
        definition,
        state,
        Event(type="quick_reply", payload="Opening hours"),
        Context(language="es"),
    )
    assert [r["text"] for r in result.replies] == ["We open at nine."]


def test_a_visitors_language_is_detected_when_the_message_tells():
    assert detect_language("quiero hablar con una persona") == "es"
    assert detect_language("quero falar com uma pessoa") == "pt"
    assert detect_language("I would like to talk to a person") == "en"
    assert detect_language("ok") is None


def test_phrases_in_other_languages_are_trained_and_a_training_phrase_is_certain(shop):
    matcher = shop.matcher
    assert matcher.classify("Where is my ORDER?") == ("order_status", 1.0)
    assert matcher.classify("¿Dónde está mi pedido?") == ("order_status", 1.0)
    assert matcher.classify("donde esta mi pedidoo", 0.3)[0] == "order_status"


def test_a_short_text_is_understood_once_per_matcher_and_a_long_one_each_time(shop, monkeypatch):
    guessed: list[str] = []
    guess = matcher_module.detect_language

    def counted(text):
        guessed.append(text)
        return guess(text)

    monkeypatch.setattr(matcher_module, "detect_language", counted)
    matcher = shop.matcher
    short = "DONDE esta mi pedido??"  # a training phrase, as typed here only
    first = matcher.understand(short, 0.3)
    assert matcher.understand(short, 0.3) == first
    assert first.intent == "order_status"
    assert guessed == [short]
    matcher.understand(short, 0.99)  # another threshold: its own answer
    assert guessed == [short, short]
    long = "where is my order " * (matcher_module.UNDERSTOOD_TEXT // 18 + 1)
    assert matcher.understand(long) == matcher.understand(long)
    assert guessed == [short, short, long, long]
    matcher_module.forget_queries()  # bench/engine.py's new texts
    matcher.understand(short, 0.3)
    assert guessed[-1] == short and len(guessed) == 5


def test_out_of_scope_messages_are_no_intent(shop):
    for text in ("what's the weather like today", "tell me something funny"):
        assert shop.matcher.classify(text, 0.3)[0] is None  # shipped negatives: exact


def test_the_stored_model_is_json_and_classifies_the_same(shop):
    stored = json.loads(json.dumps(shop.matcher.to_dict()))
    loaded = IntentMatcher.from_dict(stored)
    for text in ("wheres my oder", "are you open on sunday", "will it snow"):
        assert loaded.classify(text) == pytest.approx(shop.matcher.classify(text), abs=0.01)
    with pytest.raises(ValueError):
        IntentMatcher.from_dict({"format": "chattonic.intent-matcher/2"})


def test_calibration_gives_a_threshold_and_the_dashboards_estimates(shop):
    report = shop.matcher.report
    assert 0.3 <= shop.matcher.threshold <= 0.8
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["out_of_scope_rejected"] <= 1
    assert report["out_of_scope_rejected"] >= 0.9  # the calibration's target
    assert isinstance(report["confusions"], list)


@pytest.mark.parametrize(
    "name",
    [
        "multilingual_eval.json",
        "multilingual_eval_2.json",
        "multilingual_dev.json",
        "multilingual_dev_2.json",
    ],
)
def test_the_evaluation_set_is_apart_from_every_training_phrase(name):
    """No test phrase is a training phrase (some "typo" ones differ only by their accents and
    punctuation, as visitors type them: the folding takes them, and they count), in the two
    held-out sets and in the two development sets alike."""
    from bots.nlu.builtin import BUILTIN_INTENTS, OUT_OF_SCOPE_PHRASES

    data = json.loads((Path(__file__).parent / "data" / name).read_text())

    def fold(text: str) -> str:
        return text.casefold().strip()

    trained = {fold(p) for i in data["intents"] for ps in i["phrases"].values() for p in ps}
    trained |= {fold(p) for by in BUILTIN_INTENTS.values() for ps in by.values() for p in ps}
    trained |= {fold(p) for ps in OUT_OF_SCOPE_PHRASES.values() for p in ps}
    tested = [s["text"] for s in data["test"] + data["out_of_scope"]]
    assert not [text for text in tested if fold(text) in trained]
    assert len(data["intents"]) >= 12 and len(data["out_of_scope"]) >= 60
    assert {s["language"] for s in data["test"]} == {"en", "es", "pt"}


def test_calibration_leaves_a_phrase_out_with_its_translations(monkeypatch):
    """At calibration a phrase is scored without its own translation (beside it, it looks
    surer than a visitor's message is, and the threshold comes out too low)."""
    import bots.nlu.matcher as matcher_module

    intents = [
        {"name": "order_status", "phrases": ["where is my order", "track my parcel"]},
        {"name": "opening_hours", "phrases": ["when are you open", "opening hours"]},
    ]
    translations = {"es": {"intents": {"order_status": ["dónde está mi pedido"]}}}
    matcher = IntentMatcher.train(intents, "en", translations)
    row = matcher._phrases.index("where is my order")
    column = matcher._classes.index("order_status")
    apart = matcher._leave_one_out_scores()[row, column]
    monkeypatch.setattr(matcher_module, "TRANSLATION_SIMILARITY", 1.01)  # translations kept
    beside = matcher._leave_one_out_scores()[row, column]
    assert apart < beside - 0.05


def test_a_bots_own_intent_beats_the_global_human_intent_on_a_word_like_someone():
    """The built-in "human" intent's many generic phrases ("necesito hablar con alguien") do
    not take a bot's own question that says "alguien"; asking for a person still hands off."""
    intents = [
        {
            "name": "opening_hours",
            "phrases": ["what are your opening hours", "are you open on saturdays"],
        },
        {"name": "book_appointment", "phrases": ["I want to book an appointment"]},
    ]
    translations = {
        "es": {
            "intents": {"opening_hours": ["cuál es el horario de atención", "abren los sábados"]}
        }
    }
    matcher = IntentMatcher.train(intents, "en", translations)
    assert matcher.rank("hay alguien atendiendo el domingo", 1)[0][0] == "opening_hours"
    assert matcher.rank("alguien atiende el domingo", 1)[0][0] == "opening_hours"
    assert matcher.classify("quiero hablar con una persona", 0.3)[0] == "human"
    assert matcher.classify("can I talk to someone", 0.3)[0] == "human"


def test_hold_out_accuracy_on_the_english_50_intent_set():
    """The figures docs/flows.md gives for tests/bots/data/intents_50.json, at their floors."""
    data = json.loads((Path(__file__).parent / "data" / "intents_50.json").read_text())
    matcher = IntentMatcher.train(data["intents"], "en")

    def share(samples, right) -> float:
        return sum(right(s) for s in samples) / len(samples)

    in_scope = [s for s in data["test"] if s["intent"]]
    out_of_scope = [s for s in data["test"] if not s["intent"]]
    assert (len(in_scope), len(out_of_scope), len(data["test_paraphrases"])) == (265, 15, 250)
    assert share(in_scope, lambda s: matcher.rank(s["text"], 1)[0][0] == s["intent"]) >= 0.95
    assert share(out_of_scope, lambda s: matcher.classify(s["text"], 0.3)[0] is None) >= 0.9
    paraphrases = data["test_paraphrases"]
    assert share(paraphrases, lambda s: matcher.rank(s["text"], 1)[0][0] == s["intent"]) >= 0.7


def test_a_web_process_loads_the_models_before_its_first_visitor():
    """chattonic/asgi.py starts this: the encoder and the language model, in a thread."""
    from bots.nlu import encoder, language

    thread = encoder.warm_up_in_background()
    thread.join(120)
    assert not thread.is_alive()
    assert encoder._encoder is not None and language._identifier is not None
    asgi = (Path(__file__).parents[2] / "chattonic" / "asgi.py").read_text()
    assert "\nwarm_up_in_background(then=runtimes_warm_here)" in asgi


def test_the_warm_up_thread_runs_what_comes_next():
    from bots.nlu import encoder

    ran = []
    thread = encoder.warm_up_in_background(then=lambda: ran.append(True))
    thread.join(120)
    assert ran == [True]


@pytest.mark.django_db(transaction=True)
def test_a_web_process_loads_its_launched_bots_matchers_as_it_starts(tenant, settings):
    """runtimes_warm_here, in a thread of its own as in a web process: the live versions of
    launched bots, most recently changed first, up to NLU_WARM_BOTS; never a draft, nor a
    published bot not launched."""
    import threading

    from bots import selectors
    from bots.services import bot_launch, bot_publish, bot_version_train
    from tests.factories import BotFactory

    flow = {
        "start": "hi",
        "intents": [{"name": "price", "phrases": ["how much is it"]}],
        "nodes": {"hi": {"type": "message", "text": "Hello"}},
    }
    launched = []
    for n in range(3):
        bot = BotFactory(tenant=tenant, name=f"Bot {n}", draft_definition=flow)
        bot_version_train(version_id=bot_publish(bot=bot).pk)
        launched.append(bot_launch(bot=bot))
    published = BotFactory(tenant=tenant, name="Published", draft_definition=flow)
    bot_version_train(version_id=bot_publish(bot=published).pk)
    BotFactory(tenant=tenant, name="Draft", draft_definition=flow)
    selectors._version_runtime.cache_clear()

    def warm_in_a_thread():
        thread = threading.Thread(target=selectors.runtimes_warm_here)
        thread.start()
        thread.join(60)

    settings.NLU_WARM_BOTS = 2
    warm_in_a_thread()
    cached = selectors._version_runtime.cache_info()
    assert cached.currsize == 2
    for bot in launched[1:]:  # the two most recently changed, from the cache
        bot.refresh_from_db()
        selectors.bot_runtime(bot, bot.published_version_id)
    assert selectors._version_runtime.cache_info().hits == cached.hits + 2
    assert selectors._version_runtime.cache_info().currsize == 2

    settings.NLU_WARM_BOTS = 10
    assert selectors.runtimes_warm(settings.NLU_WARM_BOTS) == 3  # not the unlaunched ones
    settings.NLU_WARM_BOTS = 0
    selectors._version_runtime.cache_clear()
    warm_in_a_thread()
    assert selectors._version_runtime.cache_info().currsize == 0


@pytest.mark.django_db
def test_the_sandbox_trains_the_drafts_phrases_in_every_language(tenant):
    """The test chat runs the draft as publishing would train it: its translations' phrases
    too (a phrase it was trained on is certain: confidence 1)."""
    from bots.selectors import bot_runtime
    from bots.services import bot_create

    definition = copy.deepcopy(SHOP_FLOW)
    del definition["settings"]
    bot = bot_create(tenant=tenant, name="Shop", definition=definition)
    runtime = bot_runtime(bot, None)
    assert runtime.matcher.rank("dónde está mi pedido", 1) == [("order_status", 1.0)]
