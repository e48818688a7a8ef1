"""The flow editor's server side and the templates: the gallery and the API create a bot from
a template; every template publishes as it is and is walked by the engine; the editor's check,
save (with its conflict) and test-chat doors answer with JSON, refuse bad input naming the
field, write nothing then, and keep to the staff member's tenant."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from bots import services
from bots.engine import Context, Event, step, validate_definition
from bots.gallery import FLOW_TEMPLATES
from bots.models import Bot
from tests.factories import BotFactory, ConversationFactory, MembershipFactory
from webchat import services as webchat

pytestmark = pytest.mark.django_db

BOTS = "/dashboard/bots/bot/"
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.fixture
def staff(client, tenant):
    client.force_login(MembershipFactory(tenant=tenant, role="admin").user)
    return client


# --- The templates --------------------------------------------------------------------------


class Walk:
    """A conversation with a definition, through the engine (as the platform runs it)."""

    def __init__(self, definition: dict, **context):
        self.definition = definition
        self.context = Context(now=NOW, **context)
        self.state = None
        self.actions: list[dict] = []
        self.said = self.send(Event("start"))

    def send(self, event: Event) -> list[str]:
        result = step(self.definition, self.state, event, self.context)
        assert result.error is None, result.error
        self.state = result.state
        self.actions += result.actions
        return [reply["text"] for reply in result.replies]

    def say(self, text: str, intent: str | None = None) -> list[str]:
        return self.send(Event("message", text=text, intent=intent))

    def press(self, title: str) -> list[str]:
        node = self.definition["nodes"][self.state["node"]]
        reply = next(r for r in node["quick_replies"] if r["title"] == title)
        return self.send(Event("quick_reply", payload=reply.get("payload", title), text=title))


def template_walk(name: str, **context) -> Walk:
    return Walk(FLOW_TEMPLATES[name].definition, **context)


@pytest.mark.parametrize("name", list(FLOW_TEMPLATES))
def test_every_template_is_valid_and_publishes_as_it_is(tenant, name):
    assert validate_definition(FLOW_TEMPLATES[name].definition) == []
    bot = services.bot_create(tenant=tenant, name=name, template=name)
    version = services.bot_publish(bot=bot)
    assert version.number == 1
    stored = {k: v for k, v in version.definition.items() if k != "settings"}
    assert stored == FLOW_TEMPLATES[name].definition


# A valid answer to a question of each kind (any language; a regex one: an order number).
ANSWERS = {
    "text": "The app crashes on start",
    "email": "ana@example.com",
    "phone": "+55 11 99999 9999",
    "number": "5",
    "date": "2026-03-20",
    "regex": "A-1234",
}


@pytest.mark.parametrize("name", [n for n in FLOW_TEMPLATES if n != "blank"])
@pytest.mark.parametrize("open_now", [True, False])
def test_every_template_walks_to_its_end_answering_what_it_asks(name, open_now):
    """A visitor who answers every question validly, presses the last button, says the
    first intent of a router, and whose HTTP requests succeed, reaches an end or a handoff
    with no error and no retry: in every language, open or closed."""
    walk = template_walk(name, within_business_hours=open_now)
    for _ in range(30):
        status, node_id = walk.state["status"], walk.state.get("node")
        if status in ("ended", "handoff"):
            break
        node = walk.definition["nodes"][node_id]
        if status == "http":
            request = walk.actions[-1]
            assert request["type"] == "http_request"
            walk.send(
                Event(
                    "http_response",
                    http={"status": 200, "json": {"status": "ok"}},
                    request_id=request["request_id"],
                )
            )
        elif node["type"] == "question":
            kind = node.get("validation", "text")
            answer = node["choices"][0] if kind == "choice" else ANSWERS[kind]
            said = walk.say(answer)
            assert node.get("retry_text") not in said, (name, node_id, answer)
        elif node["type"] == "message":
            walk.press(node["quick_replies"][-1]["title"])
        elif node["type"] == "router":
            walk.say("something", intent=next(iter(node["routes"])))
        else:
            raise AssertionError(f"{name}: waiting at a {node['type']}")
    assert walk.state["status"] in ("ended", "handoff"), (name, walk.state)
    assert walk.state["retries"] == 0


def test_a_template_in_spanish_or_portuguese_sets_the_bots_language(tenant):
    spanish = services.bot_create(tenant=tenant, name="ES", template="lead_capture_es")
    assert spanish.default_language == "es"
    assert spanish.draft_definition["nodes"]["ask_name"]["text"] == "¿Cómo te llamas?"
    portuguese = services.bot_create(tenant=tenant, name="PT", template="after_hours_pt")
    assert (portuguese.default_language, portuguese.ticket_after_hours) == ("pt", True)
    # The bot's own texts too: its visitors are greeted, and told nobody is there, in its
    # language (they were the English defaults).
    assert spanish.welcome_text == "¡Hola! ¿En qué puedo ayudarte hoy?"
    assert spanish.away_message.startswith("Nuestro equipo no está disponible")
    assert spanish.fallback_text.startswith("Lo siento")
    assert portuguese.welcome_text == "Olá! Como posso ajudar você hoje?"
    assert portuguese.away_message.startswith("Nossa equipe não está disponível")
    assert portuguese.fallback_text.startswith("Desculpe")
    english = services.bot_create(tenant=tenant, name="EN", template="after_hours")
    assert english.welcome_text == "Hi! How can I help you today?"


def test_the_lead_capture_template_records_a_lead():
    walk = template_walk("lead_capture")
    assert walk.said[-1] == "What's your name?"
    walk.say("Maria")
    assert walk.say("not an email") == [
        "That doesn't look like an email address. Could you check it?"
    ]
    walk.say("maria@example.com")
    said = walk.say("A quote")
    assert said == ["Thank you, Maria! We'll write to maria@example.com within one working day."]
    lead = next(a for a in walk.actions if a["type"] == "capture_lead")
    assert lead["fields"] == {"name": "Maria", "email": "maria@example.com", "need": "A quote"}


def test_the_faq_template_answers_and_hands_off():
    walk = template_walk("faq_handoff")
    assert walk.press("Shipping") == [
        "Orders ship within 2 working days; delivery takes 3 to 5 more."
    ]
    assert walk.say("can I get a refund", intent="returns") == [
        "You can return anything within 30 days for a full refund."
    ]
    assert walk.say("blah", intent=None)[0].startswith("I'm not sure I understood")
    walk.press("Yes, please")
    handoff = next(a for a in walk.actions if a["type"] == "handoff")
    assert (handoff["reason"], handoff["team"]) == ("faq_question", "support")


def test_the_order_status_template_looks_the_order_up():
    walk = template_walk("order_status")
    assert walk.say("no!") == [
        "An order number has 4 to 20 letters, digits or dashes. Could you check it?"
    ]
    walk.say("A-1234")
    request = next(a for a in walk.actions if a["type"] == "http_request")
    assert request["url"] == "https://shop.example.com/api/orders/A-1234"
    said = walk.send(
        Event(
            "http_response",
            http={"status": 200, "json": {"status": "shipped", "estimated_delivery": "Friday"}},
            request_id=request["request_id"],
        )
    )
    assert said == ["Order A-1234 is shipped. Expected delivery: Friday."]


def test_the_appointment_template_takes_a_date_from_today_on():
    walk = template_walk("appointment")
    yesterday = (NOW - timedelta(days=1)).date().isoformat()
    assert walk.say(yesterday) == ["Please give a date from today on, like 2025-03-14 or tomorrow."]
    walk.say("tomorrow")
    walk.say("2")  # the second choice
    walk.say("Ana")
    said = walk.say("ana@example.com")
    assert said == [
        "Thanks, Ana. We'll confirm your appointment on 2026-03-11 (Afternoon) at ana@example.com."
    ]


def test_the_after_hours_template_hands_off_in_hours_and_takes_a_ticket_outside(tenant):
    assert (
        template_walk("after_hours", within_business_hours=True).actions[0]["reason"] == "support"
    )
    walk = template_walk("after_hours", within_business_hours=False)
    walk.say("ana@example.com")
    walk.say("The app crashes")
    kinds = [a["type"] for a in walk.actions]
    assert kinds == ["capture_lead", "handoff"]
    assert walk.actions[1]["reason"] == "after_hours"
    bot = services.bot_create(tenant=tenant, name="Support", template="after_hours")
    assert bot.ticket_after_hours is True  # the setting the template needs


def test_an_unknown_template_is_refused_and_nothing_is_made(tenant):
    with pytest.raises(services.ValidationFailed) as refused:
        services.bot_create(tenant=tenant, name="X", template="nope")
    assert "template" in refused.value.fields
    assert not Bot.objects.filter(tenant=tenant).exists()


# --- The gallery and the API ----------------------------------------------------------------


def test_add_bot_shows_the_gallery_and_the_form_starts_from_the_template(staff, tenant):
    page = staff.get(BOTS + "add/").content.decode()
    for template in FLOW_TEMPLATES.values():
        assert f"Start from “{template.title}”" in page
    form = staff.get(BOTS + "add/?template=after_hours").content.decode()
    assert 'value="after_hours" selected' in form
    checkbox = re.search(r'<input[^>]*name="ticket_after_hours"[^>]*>', form).group(0)
    assert "checked" in checkbox, checkbox


def test_the_api_lists_the_templates_and_creates_a_bot_from_one(api, tenant):
    listed = api.get("/api/v1/bot-templates/").json()
    assert [t["name"] for t in listed] == list(FLOW_TEMPLATES)
    response = api.post(
        "/api/v1/bots/", {"name": "Leads", "template": "lead_capture"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["definition"] == FLOW_TEMPLATES["lead_capture"].definition
    refused = api.post("/api/v1/bots/", {"name": "Other", "template": "nope"}, format="json")
    assert refused.status_code == 400
    assert "template" in refused.json()["error"]["fields"]
    assert not Bot.objects.filter(name="Other").exists()


# --- The editor's doors ---------------------------------------------------------------------


def post_json(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def test_the_check_names_the_node_and_field_of_each_error(staff, tenant):
    bot = BotFactory(tenant=tenant)
    definition = FLOW_TEMPLATES["lead_capture"].definition
    definition["nodes"]["ask_email"]["validation"] = "regex"
    definition["nodes"]["ask_email"]["pattern"] = "(a"
    answer = post_json(staff, f"{BOTS}{bot.pk}/builder/check/", {"definition": definition})
    assert answer.status_code == 200
    errors = answer.json()["errors"]
    assert [(e["node"], e["field"]) for e in errors] == [("ask_email", "pattern")]
    unreachable = FLOW_TEMPLATES["lead_capture"].definition
    unreachable["nodes"]["orphan"] = {"type": "end"}
    warnings = post_json(staff, f"{BOTS}{bot.pk}/builder/check/", {"definition": unreachable})
    assert warnings.json()["errors"] == []
    assert [w["node"] for w in warnings.json()["warnings"]] == ["orphan"]
    bad = staff.post(f"{BOTS}{bot.pk}/builder/check/", "{", content_type="application/json")
    assert bad.status_code == 400 and "body" in bad.json()["error"]["fields"]


def test_the_draft_is_saved_and_a_stale_save_is_refused(staff, tenant):
    bot = BotFactory(tenant=tenant)
    url = f"{BOTS}{bot.pk}/builder/draft/"
    loaded = bot.draft_updated_at.isoformat()
    first = FLOW_TEMPLATES["lead_capture"].definition
    saved = post_json(staff, url, {"definition": first, "based_on": loaded})
    assert saved.status_code == 200
    bot.refresh_from_db()
    assert bot.draft_definition == first
    assert saved.json()["based_on"] == bot.draft_updated_at.isoformat()

    # Another tab, still on what it loaded, is refused: the draft stays as saved.
    stale = post_json(
        staff, url, {"definition": FLOW_TEMPLATES["appointment"].definition, "based_on": loaded}
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "draft_changed"
    bot.refresh_from_db()
    assert bot.draft_definition == first

    invalid = FLOW_TEMPLATES["lead_capture"].definition
    invalid["start"] = "nowhere"
    refused = post_json(staff, url, {"definition": invalid})
    assert refused.status_code == 400
    assert "definition.start" in refused.json()["error"]["fields"]
    not_a_date = post_json(staff, url, {"definition": first, "based_on": "yesterday"})
    assert not_a_date.status_code == 400
    assert "based_on" in not_a_date.json()["error"]["fields"]
    bot.refresh_from_db()
    assert bot.draft_definition == first


def test_another_tenants_bot_is_not_found_and_unchanged(staff, other_tenant):
    theirs = BotFactory(tenant=other_tenant)
    before = theirs.draft_definition
    for path in ("builder/", "builder/sandbox/?session=x"):
        assert staff.get(f"{BOTS}{theirs.pk}/{path}").status_code == 404
    body = {"definition": FLOW_TEMPLATES["lead_capture"].definition}
    for path in ("builder/check/", "builder/draft/"):
        assert post_json(staff, f"{BOTS}{theirs.pk}/{path}", body).status_code == 404
    assert staff.post(f"{BOTS}{theirs.pk}/publish/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.draft_definition == before and theirs.published_version is None


def test_the_test_chat_position_is_the_sandbox_conversations_node(staff, tenant):
    bot = BotFactory(tenant=tenant)
    visitor = webchat.new_visitor_id()
    ConversationFactory(
        tenant=tenant,
        bot=bot,
        recipient_id=visitor,
        is_sandbox=True,
        engine_state={"v": 1, "status": "waiting", "node": "ask"},
    )
    url = f"{BOTS}{bot.pk}/builder/sandbox/"
    token = webchat.visitor_token(bot.pk, visitor)
    assert staff.get(url, {"session": token}).json() == {"node": "ask"}
    other_bot = BotFactory(tenant=tenant)
    foreign = webchat.visitor_token(other_bot.pk, visitor)  # signed for another bot
    assert staff.get(url, {"session": foreign}).json() == {"node": None}
    assert staff.get(url, {"session": "forged"}).json() == {"node": None}


def test_publish_from_the_editor_publishes_the_draft(
    staff, tenant, django_capture_on_commit_callbacks
):
    bot = services.bot_create(tenant=tenant, name="Leads", template="lead_capture")
    with django_capture_on_commit_callbacks(execute=True):  # the worker's training
        response = staff.post(f"{BOTS}{bot.pk}/publish/", {"note": "First"})
    assert response.status_code == 302 and response["Location"].endswith("/builder/")
    bot.refresh_from_db()
    assert bot.published_version.note == "First"
    assert bot.published_version.definition["nodes"] == bot.draft_definition["nodes"]
