"""The dashboard's bots, as tenant staff: the JSON editor with inline errors, publish, launch,
pause, versions and their difference, roll back, import and export, the diagram, the sandbox
page; the region lock; another tenant's bot."""

from __future__ import annotations

import copy
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bots.models import Bot, BotVersion
from bots.services import bot_publish, draft_update
from tests.bots.flows import SIMPLE_FLOW
from tests.factories import BotFactory, MembershipFactory, launched_bot

pytestmark = pytest.mark.django_db

BOTS = "/dashboard/bots/bot/"


def page(bot, name: str = "change") -> str:
    return f"{BOTS}{bot.pk}/{name}/"


@pytest.fixture
def staff(client, tenant):
    user = MembershipFactory(tenant=tenant, role="admin").user
    client.force_login(user)
    client.user = user
    return client


def form_data(bot: Bot, **changes) -> dict:
    """Everything the change form posts, as the page would send it."""
    data = {
        "name": bot.name,
        "region": bot.region,
        "default_language": bot.default_language,
        "welcome_text": bot.welcome_text,
        "fallback_text": bot.fallback_text,
        "fallback_limit": bot.fallback_limit,
        "intent_threshold": bot.intent_threshold,
        "business_hours": json.dumps(bot.business_hours),
        "time_zone": bot.time_zone,
        "title": bot.title,
        "theme_color": bot.theme_color,
        "allowed_origins": json.dumps(bot.allowed_origins),
        "away_message": bot.away_message,
        "draft_definition": json.dumps(bot.draft_definition),
    }
    if bot.prechat_form:
        data["prechat_form"] = "on"
    if bot.ticket_after_hours:
        data["ticket_after_hours"] = "on"
    data.update(changes)
    return data


def row(bot) -> dict:
    """The bot's stored fields, less the stamp every save sets (a save of the same values
    changes nothing else)."""
    values = Bot.objects.filter(pk=bot.pk).values().get()
    values.pop("updated_at")
    return values


def edited(text: str = "Plans start at $20.") -> dict:
    definition = copy.deepcopy(SIMPLE_FLOW)
    definition["nodes"]["prices"]["text"] = text
    return definition


def test_the_list_and_the_add_form_create_a_bot_through_the_service(staff, tenant):
    assert staff.get(BOTS).status_code == 200
    assert staff.get(BOTS + "add/").status_code == 200
    data = form_data(BotFactory.build(tenant=tenant), name="Support")
    response = staff.post(BOTS + "add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    bot = Bot.objects.get(tenant=tenant, name="Support")
    assert bot.status == "draft" and bot.draft_definition == SIMPLE_FLOW


def test_the_json_editor_saves_a_valid_draft(staff, tenant):
    bot = BotFactory(tenant=tenant)
    response = staff.get(page(bot))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="ct-json-editor"' in body and "Publish the draft" in body
    response = staff.post(page(bot), form_data(bot, draft_definition=json.dumps(edited())))
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.draft_definition == edited()
    assert not BotVersion.objects.filter(bot=bot).exists()  # saved, not published


def test_the_json_editor_shows_errors_inline_naming_node_and_field_and_saves_nothing(staff, tenant):
    bot = BotFactory(tenant=tenant)
    before = row(bot)
    broken = edited()
    broken["nodes"]["ask_email"]["validation"] = "telepathy"
    response = staff.post(
        page(bot), form_data(bot, name="Renamed", draft_definition=json.dumps(broken))
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "errorlist" in body
    assert "definition.nodes.ask_email.validation" in body
    assert row(bot) == before

    response = staff.post(page(bot), form_data(bot, draft_definition="{not json"))
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert row(bot) == before


def test_settings_saved_from_the_form_go_through_the_service(staff, tenant):
    bot = BotFactory(tenant=tenant)
    response = staff.post(
        page(bot),
        form_data(
            bot,
            welcome_text="Hello there",
            ticket_after_hours="on",
            allowed_origins='["https://shop.example.com/"]',
        ),
    )
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.welcome_text == "Hello there" and bot.ticket_after_hours
    assert bot.allowed_origins == ["https://shop.example.com"]


def test_publish_launch_pause_buttons(staff, tenant):
    bot = BotFactory(tenant=tenant)
    response = staff.post(page(bot, "launch"))
    assert response.status_code == 302
    assert Bot.objects.get(pk=bot.pk).status == "draft"  # nothing published: refused
    assert staff.get(page(bot, "publish")).status_code == 405

    response = staff.post(page(bot, "publish"), {"note": "first one"})
    assert response.status_code == 302
    version = BotVersion.objects.get(bot=bot)
    assert (version.number, version.note, version.published_by) == (1, "first one", staff.user)
    staff.post(page(bot, "launch"))
    assert Bot.objects.get(pk=bot.pk).status == "launched"
    assert "Pause" in staff.get(page(bot)).content.decode()
    staff.post(page(bot, "pause"))
    assert Bot.objects.get(pk=bot.pk).status == "paused"


def test_versions_their_difference_and_rollback(staff, tenant):
    bot = BotFactory(tenant=tenant)
    bot_publish(bot=bot)
    draft_update(bot=bot, definition=edited())
    bot_publish(bot=bot)

    response = staff.get(page(bot, "versions"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "v1" in body and "v2 (live)" in body

    diff = staff.get(page(bot, "versions") + "?a=1&b=2").content.decode()
    assert "-" in diff and re.search(r"-\s*&quot;text&quot;: &quot;Plans start at \$10", diff)
    assert re.search(r"\+\s*&quot;text&quot;: &quot;Plans start at \$20", diff)
    assert "Choose two versions" in staff.get(page(bot, "versions") + "?a=1&b=9").content.decode()

    response = staff.post(page(bot, "versions") + "1/rollback/")
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.published_version.number == 3
    assert bot.published_version.definition["nodes"]["prices"]["text"] == "Plans start at $10."
    assert staff.post(page(bot, "versions") + "9/rollback/").status_code == 404
    assert BotVersion.objects.filter(bot=bot).count() == 3


def test_versions_are_read_only_in_the_dashboard(staff, tenant):
    bot = launched_bot(tenant=tenant)
    version = bot.published_version
    url = f"/dashboard/bots/botversion/{version.pk}/change/"
    assert staff.get(url).status_code == 200
    staff.post(url, {"note": "changed"})
    version.refresh_from_db()
    assert version.note == ""
    assert staff.post(f"/dashboard/bots/botversion/{version.pk}/delete/").status_code == 403
    assert BotVersion.objects.filter(pk=version.pk).exists()


def test_export_and_import(staff, tenant):
    bot = BotFactory(tenant=tenant)
    response = staff.get(page(bot, "export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content) == SIMPLE_FLOW

    assert staff.get(page(bot, "import")).status_code == 200
    upload = SimpleUploadedFile("flow.json", json.dumps(edited()).encode(), "application/json")
    response = staff.post(page(bot, "import"), {"file": upload})
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.draft_definition == edited()


@pytest.mark.parametrize(
    "content,message",
    [
        (b"{oops", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (
            json.dumps({**SIMPLE_FLOW, "start": "nowhere"}).encode(),
            "definition.start",
        ),
    ],
)
def test_a_bad_import_is_refused_with_the_reason_and_changes_nothing(
    staff, tenant, content, message
):
    bot = BotFactory(tenant=tenant)
    before = row(bot)
    upload = SimpleUploadedFile("flow.json", content, "application/json")
    response = staff.post(page(bot, "import"), {"file": upload})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert row(bot) == before


def test_the_diagram_draws_every_node_and_link_without_any_cdn(staff, tenant):
    bot = BotFactory(tenant=tenant)
    response = staff.get(page(bot, "diagram"))
    assert response.status_code == 200
    body = response.content.decode()
    start = body.index('aria-label="Flow diagram"')
    svg = body[start : body.index("</svg>", start)]
    assert set(re.findall(r'data-node="([^"]+)"', svg)) == set(SIMPLE_FLOW["nodes"])
    # hello: 2 buttons and `other`; prices -> menu; menu -> prices; ask_email -> thanks ->bye
    assert svg.count("<path d=") == 8
    assert "hello → menu (other)" in svg and "menu → prices (routes.pricing)" in svg
    assert not re.search(r'(src|href)="https?://', body.replace(svg, ""))

    bot_publish(bot=bot)
    assert staff.get(page(bot, "diagram") + "?version=1").status_code == 200
    assert staff.get(page(bot, "diagram") + "?version=7").status_code == 404


def test_the_test_page_opens_the_sandbox_chat_on_the_draft(staff, tenant):
    bot = BotFactory(tenant=tenant)
    response = staff.get(page(bot, "test"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-bot="{bot.public_key}"' in body and 'data-sandbox="1"' in body
    assert "chattonic/widget.js" in body


# --- The region lock --------------------------------------------------------------------------


def test_a_drafts_region_changes_from_the_form(staff, tenant):
    bot = BotFactory(tenant=tenant)
    assert staff.post(page(bot), form_data(bot, region="eu-frankfurt")).status_code == 302
    assert Bot.objects.get(pk=bot.pk).region == "eu-frankfurt"


def test_a_launched_bots_region_is_read_only_and_a_forged_post_changes_nothing(staff, tenant):
    bot = launched_bot(tenant=tenant)
    body = staff.get(page(bot)).content.decode()
    assert '<select name="region"' not in body  # shown, not editable
    before = row(bot)
    response = staff.post(page(bot), form_data(bot, region="eu-frankfurt"))
    assert response.status_code == 302
    assert Bot.objects.get(pk=bot.pk).region == "us-central"
    assert row(bot) == before


# --- Who may ----------------------------------------------------------------------------------


def test_another_tenants_bot_is_404_on_every_page(staff, other_tenant):
    theirs = launched_bot(tenant=other_tenant)
    before = row(theirs)
    for name in ("change", "versions", "diagram", "test", "export", "import"):
        assert staff.get(page(theirs, name)).status_code == 404, name
    for name in ("publish", "launch", "pause", "versions/1/rollback"):
        assert staff.post(page(theirs, name)).status_code == 404, name
    assert staff.post(page(theirs), form_data(theirs, name="Mine")).status_code == 404
    assert row(theirs) == before
    assert BotVersion.objects.filter(bot=theirs).count() == 1


def test_agents_do_not_enter(client, tenant):
    bot = BotFactory(tenant=tenant)
    client.force_login(MembershipFactory(tenant=tenant, role="agent").user)
    response = client.post(page(bot, "publish"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not BotVersion.objects.filter(bot=bot).exists()
