"""The dashboard's bots, as tenant staff, through the pages' own forms (each field posted as its
page posts it): the settings with their own controls and errors beside them, "Save and
publish", launch and pause, the flow's raw definition, versions and rollback, import and
export, the diagram, the sandbox page; the region lock; another tenant's bot. The browser
tests (tests/e2e/test_bot_pages.py) click the same controls."""

from __future__ import annotations

import copy
import html
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bots import services
from bots.models import Bot, BotVersion
from bots.services import bot_publish, draft_update
from tests.bots.flows import SIMPLE_FLOW
from tests.factories import BotFactory, MembershipFactory, launched_bot, trained
from tests.regions.config import regions_configure

pytestmark = pytest.mark.django_db

BOTS = "/dashboard/bots/bot/"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def page(bot, name: str = "change") -> str:
    return f"{BOTS}{bot.pk}/{name}/"


@pytest.fixture
def staff(client, tenant):
    user = MembershipFactory(tenant=tenant, role="admin").user
    client.force_login(user)
    client.user = user
    return client


def hours_data(hours: dict) -> dict:
    """The business hours grid as the page posts it: per weekday its "open" box and the
    from/to inputs of each range (a closed day still posts its range's inputs)."""
    data = {}
    for day in WEEKDAYS:
        ranges = hours.get(day) or [["09:00", "17:00"]]
        if hours.get(day):
            data[f"business_hours-{day}-open"] = "on"
        if ranges == [["00:00", "24:00"]]:  # the "All day" box, its hidden range as shown
            data[f"business_hours-{day}-allday"] = "on"
            ranges = [["09:00", "17:00"]]
        data[f"business_hours-{day}-from"] = [start for start, _ in ranges]
        data[f"business_hours-{day}-to"] = ["00:00" if end == "24:00" else end for _, end in ranges]
    return data


def form_data(bot: Bot, **changes) -> dict:
    """Everything the bot's page posts, as its controls send it."""
    data = {
        "name": bot.name,
        "region": bot.region,
        "default_language": bot.default_language,
        "welcome_text": bot.welcome_text,
        "fallback_text": bot.fallback_text,
        "handoff_text": bot.handoff_text,
        "fallback_limit": "" if bot.fallback_limit is None else bot.fallback_limit,
        "intent_threshold": bot.intent_threshold,
        "time_zone": bot.time_zone,
        "title": bot.title,
        "theme_color": bot.theme_color,
        "allowed_origins": [*bot.allowed_origins, ""],  # the empty row to type a new one in
        "away_message": bot.away_message,
        **hours_data(bot.business_hours),
    }
    if bot.prechat_form:
        data["prechat_form"] = "on"
    if bot.ticket_after_hours:
        data["ticket_after_hours"] = "on"
    if "business_hours" in changes:
        for key in [k for k in data if k.startswith("business_hours-")]:
            del data[key]
        data.update(hours_data(changes.pop("business_hours")))
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


def errors_of(response) -> str:
    return " ".join(
        re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    )


# --- Create and change ----------------------------------------------------------------------


def test_the_add_form_creates_a_bot_with_a_starter_flow_that_runs(staff, tenant):
    assert staff.get(BOTS).status_code == 200
    assert "ct-json-editor" not in staff.get(BOTS + "add/").content.decode()  # no raw JSON
    data = form_data(BotFactory.build(tenant=tenant), name="Support")
    response = staff.post(BOTS + "add/", data)
    assert response.status_code == 302, errors_of(response)
    bot = Bot.objects.get(tenant=tenant, name="Support")
    assert bot.status == "draft"
    # Not null: a flow that publishes as it is.
    assert (
        bot.draft_definition["nodes"]
        and bot.draft_definition["start"] in bot.draft_definition["nodes"]
    )
    assert trained(bot_publish(bot=bot)).number == 1


def test_settings_saved_from_their_controls_go_through_the_service(staff, tenant):
    bot = BotFactory(tenant=tenant)
    response = staff.post(
        page(bot),
        form_data(
            bot,
            welcome_text="Hello there",
            ticket_after_hours="on",
            allowed_origins=["HTTPS://Shop.Example.com:443/", "", "http://127.0.0.2:8081"],
            business_hours={
                "mon": [["13:00", "17:00"], ["09:00", "12:00"]],
                "sun": [["20:00", "24:00"]],
            },
            time_zone="America/Argentina/Buenos_Aires",
            fallback_limit="",
            handoff_text="A person will answer.",
        ),
    )
    assert response.status_code == 302, errors_of(response)
    bot.refresh_from_db()
    assert bot.welcome_text == "Hello there" and bot.ticket_after_hours
    assert bot.allowed_origins == ["https://shop.example.com", "http://127.0.0.2:8081"]
    assert bot.business_hours == {
        "mon": [["09:00", "12:00"], ["13:00", "17:00"]],
        "sun": [["20:00", "24:00"]],
    }
    assert (bot.time_zone, bot.fallback_limit) == ("America/Argentina/Buenos_Aires", None)
    assert bot.handoff_text == "A person will answer."
    assert not BotVersion.objects.filter(bot=bot).exists()  # saved, not published


def test_the_page_shows_each_setting_in_its_own_controls(staff, tenant):
    bot = BotFactory(
        tenant=tenant,
        allowed_origins=["https://shop.example.com"],
        business_hours={"tue": [["09:00", "12:00"], ["13:00", "24:00"]]},
        time_zone="Europe/Berlin",
    )
    body = staff.get(page(bot)).content.decode()
    assert re.search(
        r'<input type="url" name="allowed_origins"[^>]*value="https://shop.example.com"', body
    )
    assert re.search(r'name="business_hours-tue-open"[^>]*checked', body)
    assert not re.search(r'name="business_hours-mon-open"[^>]*checked', body)
    assert body.count('name="business_hours-tue-from"') == 2
    assert 'value="13:00"' in body and 'value="00:00"' in body  # 24:00 shown as midnight
    assert '<option value="Europe/Berlin" selected>Europe/Berlin</option>' in body


def test_a_day_open_round_the_clock_is_all_day_not_midnight_to_midnight(staff, tenant):
    bot = BotFactory(tenant=tenant, business_hours={"sat": [["00:00", "24:00"]]})
    body = staff.get(page(bot)).content.decode()
    assert re.search(r'name="business_hours-sat-allday"[^>]*checked', body)
    assert not re.search(r'name="business_hours-mon-allday"[^>]*checked', body)
    # Its time inputs hold a range to change to, not "00:00" to "00:00".
    assert 'value="00:00"' not in body
    # "All day" wins over the (hidden) ranges posted beside it; unticked, the ranges count.
    data = form_data(bot)
    data["business_hours-sun-open"] = data["business_hours-sun-allday"] = "on"
    staff.post(page(bot), data)
    bot.refresh_from_db()
    assert bot.business_hours == {"sat": [["00:00", "24:00"]], "sun": [["00:00", "24:00"]]}
    del data["business_hours-sat-allday"]
    staff.post(page(bot), data)
    bot.refresh_from_db()
    assert bot.business_hours["sat"] == [["09:00", "17:00"]]


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"allowed_origins": ["https://shop.example.com/cart"]}, "is a page, not an origin"),
        ({"allowed_origins": ["shop.example.com"]}, "needs its scheme"),
        ({"allowed_origins": ["ftp://shop.example.com"]}, "must start with https://"),
        ({"business_hours": {"mon": [["18:00", "09:00"]]}}, "Monday: 18:00 to 09:00 must end"),
        (
            {"business_hours": {"wed": [["09:00", "13:00"], ["12:00", "18:00"]]}},
            "Wednesday: 09:00 to 13:00 and 12:00 to 18:00 overlap",
        ),
        ({"business_hours-fri-open": "on", "business_hours-fri-to": [""]}, "Friday: give both"),
        (
            {
                "business_hours-sat-open": "on",
                "business_hours-sat-from": [""],
                "business_hours-sat-to": [""],
            },
            "Saturday is open: give its hours",
        ),
        ({"time_zone": "Europe/Atlantis"}, "Select a valid choice"),
        ({"welcome_text": "Hi {{"}, "has a {{ }} that is not a variable"),
        ({"fallback_limit": "21"}, "less than or equal to 20"),
        ({"theme_color": "blue"}, "A colour such as #2563eb"),
    ],
)
def test_a_bad_setting_is_shown_beside_its_field_and_nothing_is_saved(
    staff, tenant, changes, message
):
    bot = BotFactory(tenant=tenant)
    before = row(bot)
    response = staff.post(page(bot), form_data(bot, name="Renamed", **changes))
    assert response.status_code == 200
    assert message in errors_of(response).replace("&#x27;", "'"), errors_of(response)
    assert row(bot) == before


def test_save_and_publish_saves_what_was_typed_then_publishes_it(
    staff, tenant, django_capture_on_commit_callbacks
):
    bot = launched_bot(tenant=tenant, welcome_text="Hello from v1")
    with django_capture_on_commit_callbacks() as queued:  # the commit queues the training
        response = staff.post(
            page(bot),
            form_data(
                bot,
                welcome_text="Hello from v2",
                _publish="Save and publish",
                _publish_note="New hello",
            ),
        )
    assert response.status_code == 302 and response["Location"] == page(bot)
    body = staff.get(page(bot)).content.decode()
    assert "Published version 2: training… new conversations use it as soon as it is" in body
    assert "Version 2: training… it goes live by itself" in body and "data-ct-training" in body
    bot.refresh_from_db()
    assert bot.published_version.number == 1  # still the live one while 2 trains

    for callback in queued:  # the worker's turn
        callback()
    bot.refresh_from_db()
    live = bot.published_version
    assert (live.number, live.note, live.published_by) == (2, "New hello", staff.user)
    assert live.definition["settings"]["welcome_text"] == "Hello from v2"
    body = staff.get(page(bot)).content.decode()
    assert "Version 2</a>, published" in body
    assert "training…" not in body and "data-ct-training" not in body
    # What the live matcher estimates of itself (its report, from left-out training phrases).
    report = live.nlu_model["report"]
    assert (
        f"Estimated on the {report['own_phrases']} training phrases of the live version's "
        f"{report['own_intents']} intents" in body
    )
    percent = round(report["out_of_scope_rejected"] * 100)
    assert f"{percent} % of off-topic messages" in body


def test_a_version_whose_training_failed_says_so_and_the_live_one_stays(staff, tenant):
    bot = launched_bot(tenant=tenant)
    failed = bot_publish(bot=bot)  # its training, queued after a commit, never ran here
    BotVersion.objects.filter(pk=failed.pk).update(training=BotVersion.Training.FAILED)
    body = staff.get(page(bot)).content.decode()
    assert "Version 2: training failed; publish again." in body
    assert "Version 1</a>, published" in body and "data-ct-training" not in body
    assert "Version 2</a> (training failed)" in staff.get(page(bot, "versions")).content.decode()


def test_save_and_publish_with_a_bad_setting_publishes_nothing(staff, tenant):
    bot = launched_bot(tenant=tenant)
    before = row(bot)
    response = staff.post(
        page(bot), form_data(bot, allowed_origins=["nope"], _publish="Save and publish")
    )
    assert response.status_code == 200
    assert row(bot) == before and BotVersion.objects.filter(bot=bot).count() == 1


def test_the_status_panel_and_its_own_forms_launch_and_pause(staff, tenant):
    bot = BotFactory(tenant=tenant)
    body = staff.get(page(bot)).content.decode()
    assert "Nothing is published yet." in body and "Launch" in body
    response = staff.post(page(bot, "launch"))
    assert response.status_code == 302
    assert Bot.objects.get(pk=bot.pk).status == "draft"  # nothing published: refused
    assert "Publish the bot before launching it." in staff.get(page(bot)).content.decode()

    trained(bot_publish(bot=bot))
    staff.post(page(bot, "launch"))
    assert Bot.objects.get(pk=bot.pk).status == "launched"
    body = staff.get(page(bot)).content.decode()
    assert f'action="{page(bot, "pause")}"' in body and "The same as the live version." in body
    staff.post(page(bot, "pause"))
    assert Bot.objects.get(pk=bot.pk).status == "paused"
    assert staff.get(page(bot, "launch")).status_code == 405


def test_the_embed_code_names_the_address_the_page_was_asked_on(staff, tenant, settings):
    bot = BotFactory(tenant=tenant)
    body = staff.get(page(bot), HTTP_HOST="127.0.0.1:8123").content.decode()
    assert (
        f"&lt;script src=&quot;http://127.0.0.1:8123/static/chattonic/widget.js&quot; "
        f"data-bot=&quot;{bot.public_key}&quot; async&gt;&lt;/script&gt;"
    ) in body
    assert "localhost:8000" not in body

    settings.PUBLIC_BASE_URL = "https://chat.example.com"
    body = staff.get(page(bot), HTTP_HOST="127.0.0.1:8123").content.decode()
    assert "https://chat.example.com/static/chattonic/widget.js" in body


# --- The flow's raw definition --------------------------------------------------------------


def test_the_flow_page_saves_a_valid_draft(staff, tenant, django_capture_on_commit_callbacks):
    bot = BotFactory(tenant=tenant)
    body = staff.get(page(bot, "flow")).content.decode()
    assert 'class="ct-json-editor"' in body and "Raw definition (JSON)" in body
    response = staff.post(page(bot, "flow"), {"definition": json.dumps(edited())})
    assert response.status_code == 302 and response["Location"] == page(bot, "flow")
    bot.refresh_from_db()
    assert bot.draft_definition == edited()
    assert not BotVersion.objects.filter(bot=bot).exists()  # saved, not published

    with django_capture_on_commit_callbacks(execute=True):  # the worker trains it after
        response = staff.post(
            page(bot, "flow"),
            {
                "definition": json.dumps(edited("Plans start at $30.")),
                "_publish": "Save and publish",
            },
        )
    assert response.status_code == 302
    version = Bot.objects.get(pk=bot.pk).published_version
    assert version.definition["nodes"]["prices"]["text"] == "Plans start at $30."


@pytest.mark.parametrize(
    "definition,message",
    [
        ("{not json", "Not valid JSON"),
        ("[1, 2]", "A flow definition is a JSON object."),
        (
            json.dumps({**edited(), "settings": {"fallback_text": "Eh?"}}),
            "definition.settings: The texts and thresholds are the bot&#x27;s settings",
        ),
    ],
)
def test_the_flow_page_shows_errors_and_saves_nothing(staff, tenant, definition, message):
    bot = BotFactory(tenant=tenant)
    before = row(bot)
    response = staff.post(page(bot, "flow"), {"definition": definition, "_publish": "1"})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert row(bot) == before and not BotVersion.objects.filter(bot=bot).exists()


def test_flow_errors_name_the_node_and_the_field(staff, tenant):
    bot = BotFactory(tenant=tenant)
    broken = edited()
    broken["nodes"]["ask_email"]["validation"] = "telepathy"
    response = staff.post(page(bot, "flow"), {"definition": json.dumps(broken)})
    assert "definition.nodes.ask_email.validation" in errors_of(response)
    assert Bot.objects.get(pk=bot.pk).draft_definition == SIMPLE_FLOW


# --- Versions ---------------------------------------------------------------------------------


def test_versions_their_difference_and_a_rollback_that_brings_back_the_settings(
    staff, tenant, django_capture_on_commit_callbacks
):
    bot = BotFactory(tenant=tenant, welcome_text="Hello from v1")
    trained(bot_publish(bot=bot))
    draft_update(bot=bot, definition=edited())
    Bot.objects.filter(pk=bot.pk).update(welcome_text="Hello from v2")
    trained(bot_publish(bot=Bot.objects.get(pk=bot.pk)))

    body = staff.get(page(bot, "versions")).content.decode()
    assert "Version 1</a>" in body and "Version 2</a> (live)" in body
    assert "Roll back to version 1" in body and "Roll back to version 2" not in body

    diff = staff.get(page(bot, "versions") + "?a=1&b=2").content.decode()
    assert re.search(r"-\s*&quot;text&quot;: &quot;Plans start at \$10", diff)
    assert re.search(r"\+\s*&quot;text&quot;: &quot;Plans start at \$20", diff)
    assert "Choose two versions" in staff.get(page(bot, "versions") + "?a=1&b=9").content.decode()

    with django_capture_on_commit_callbacks(execute=True):  # the worker trains it after
        response = staff.post(page(bot, "versions") + "1/rollback/")
    assert response.status_code == 302 and response["Location"] == page(bot, "versions")
    bot.refresh_from_db()
    assert bot.published_version.number == 3
    assert bot.published_version.definition["nodes"]["prices"]["text"] == "Plans start at $10."
    assert bot.published_version.definition["settings"]["welcome_text"] == "Hello from v1"
    assert bot.welcome_text == "Hello from v1"  # the bot's settings are the version's again
    assert staff.post(page(bot, "versions") + "9/rollback/").status_code == 404
    assert BotVersion.objects.filter(bot=bot).count() == 3


def test_a_version_shows_its_settings_in_words_and_never_changes(staff, tenant):
    bot = launched_bot(tenant=tenant, fallback_limit=None, default_language="es")
    version = bot.published_version
    url = f"/dashboard/bots/botversion/{version.pk}/change/"
    body = staff.get(url).content.decode()
    assert "Misunderstandings before a handoff</th><td>never" in body
    assert "Language</th><td>Spanish" in body
    assert "Raw definition (JSON)" in body  # folded away, for power users
    staff.post(url, {"note": "changed"})
    version.refresh_from_db()
    assert version.note == ""
    assert staff.post(f"/dashboard/bots/botversion/{version.pk}/delete/").status_code == 403
    assert BotVersion.objects.filter(pk=version.pk).exists()


# --- Export, import, diagram, sandbox -------------------------------------------------------


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
    assert response.status_code == 302 and response["Location"] == page(bot, "flow")
    bot.refresh_from_db()
    assert bot.draft_definition == edited()


@pytest.mark.parametrize(
    "content,message",
    [
        (b"{oops", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({**SIMPLE_FLOW, "start": "nowhere"}).encode(), "definition.start"),
        (
            json.dumps({**SIMPLE_FLOW, "settings": {"language": "es"}}).encode(),
            "definition.settings",
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


def test_the_diagram_draws_every_node_and_link_in_words_without_any_cdn(staff, tenant):
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
    assert ">Understand intent</text>" in svg and ">Save a lead</text>" in svg
    assert ">capture_lead</text>" not in svg
    # Nothing loaded from another host (a link to another region's dashboard is no load).
    assert not re.search(r'<(script|link|img)\b[^>]*\b(src|href)="(https?:)?//', body)

    trained(bot_publish(bot=bot))
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


def test_a_bot_of_another_region_is_refused_by_the_add_form_naming_its_dashboard(
    staff, tenant, settings
):
    regions_configure(settings, "us-central")
    response = staff.post(
        "/dashboard/bots/bot/add/",
        form_data(BotFactory.build(tenant=tenant), region="eu-frankfurt"),
    )
    assert response.status_code == 200
    assert "https://eu.chattonic.example" in errors_of(response)
    assert not Bot.objects.filter(region="eu-frankfurt").exists()


def test_a_bots_region_is_read_only_and_a_forged_post_changes_nothing(staff, tenant):
    bot = launched_bot(tenant=tenant)
    body = staff.get(page(bot)).content.decode()
    assert '<select name="region"' not in body  # shown, not editable
    assert "US Central" in body
    before = row(bot)
    response = staff.post(page(bot), form_data(bot, region="eu-frankfurt"))
    assert response.status_code == 302
    assert Bot.objects.get(pk=bot.pk).region == "us-central"
    assert row(bot) == before


# --- Who may ----------------------------------------------------------------------------------


def test_another_tenants_bot_is_404_on_every_page(staff, other_tenant):
    theirs = launched_bot(tenant=other_tenant)
    before = row(theirs)
    for name in ("change", "flow", "versions", "diagram", "test", "export", "import"):
        assert staff.get(page(theirs, name)).status_code == 404, name
    for name in ("launch", "pause", "versions/1/rollback", "flow"):
        assert staff.post(page(theirs, name), {"definition": "{}"}).status_code == 404, name
    assert staff.post(page(theirs), form_data(theirs, name="Mine")).status_code == 404
    assert row(theirs) == before
    assert BotVersion.objects.filter(bot=theirs).count() == 1


def test_agents_do_not_enter(client, tenant):
    bot = BotFactory(tenant=tenant)
    client.force_login(MembershipFactory(tenant=tenant, role="agent").user)
    response = client.post(page(bot), form_data(bot, _publish="Save and publish"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = client.post(page(bot, "flow"), {"definition": "{}", "_publish": "1"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not BotVersion.objects.filter(bot=bot).exists()


def _understanding(body: str) -> str:
    start = body.index('id="ct-understanding"')
    return body[start : body.index("</dd>", start)]


def test_understanding_counts_the_bots_own_intents_not_the_built_in_ones(staff, tenant):
    """A lead-capture bot has no intents: it understands only the built-in ones, and shows no
    accuracy (the figure was the built-ins' own, "61 training phrases… 100 %")."""
    leads = services.bot_create(tenant=tenant, name="Leads", template="lead_capture")
    assert not leads.draft_definition.get("intents")
    trained(bot_publish(bot=leads))
    said = _understanding(staff.get(page(leads)).content.decode())
    assert "no intents of its own" in said and "talk to a human" in said
    assert "start over" in said and "%" not in said and "Estimated" not in said

    # A bot with intents of its own: the figures are on its 7 phrases of 2 intents.
    shop = launched_bot(tenant=tenant)
    said = _understanding(staff.get(page(shop)).content.decode())
    assert "Estimated on the 7 training phrases of the live version's 2 intents" in said
    assert "%" in said
    report = shop.published_version.nlu_model["report"]
    assert report["own_phrases"] == 7 and report["own_intents"] == 2
    assert report["phrases"] > 7  # the built-in intents' phrases are trained too


def _crumbs(body: str) -> str:
    crumbs = body[body.index('class="breadcrumbs">') + len('class="breadcrumbs">') :]
    text = re.sub(r"<[^>]+>", " ", crumbs[: crumbs.index("</div>")])
    return " ".join(html.unescape(text).replace("\u203a", ">").split())  # the &rsaquo; separator


def test_the_breadcrumbs_read_home_bots_and_the_bots_name(staff, tenant):
    """Not "Home > Bots > Bots": the app's group is left out where it repeats the list."""
    bot = BotFactory(tenant=tenant, name="Lead bot")
    assert _crumbs(staff.get(page(bot)).content.decode()) == "Home > Bots > Lead bot"
    assert _crumbs(staff.get(BOTS).content.decode()) == "Home > Bots"
    builder = staff.get(page(bot, "builder")).content.decode()
    assert _crumbs(builder) == "Home > Bots > Lead bot > Flow editor"
    deleting = staff.get(page(bot, "delete")).content.decode()
    assert _crumbs(deleting) == "Home > Bots > Lead bot > Delete"
    # A list outside the sidebar goes through its parent's list, not Django's page of the app.
    versions = staff.get("/dashboard/bots/botversion/").content.decode()
    assert _crumbs(versions) == "Home > Bots > Bot versions"
    crumbs = versions[versions.index('class="breadcrumbs"') :]
    links = re.findall(r'href="([^"]+)"', crumbs[: crumbs.index("</div>")])
    assert links == ["/dashboard/", "/dashboard/bots/bot/"]


def test_published_by_names_the_person_not_their_email(staff, tenant):
    """The live version, the versions page and the versions list name who published it as
    the dashboard names staff everywhere (full name, else what precedes the @)."""
    user = staff.user
    user.username = user.email = "ana.silva@acme.example"
    user.first_name = user.last_name = ""
    user.save()
    bot = BotFactory(tenant=tenant, name="Lead bot")
    trained(bot_publish(bot=bot, published_by=user))
    body = staff.get(page(bot)).content.decode()
    live = body[body.index('id="ct-live"') :]
    live = live[: live.index("</dd>")]
    assert "by ana.silva" in live and "acme.example" not in live

    user.first_name, user.last_name = "Ana", "Silva"
    user.save()
    for url in (page(bot), page(bot, "versions"), "/dashboard/bots/botversion/"):
        body = staff.get(url).content.decode()
        assert "Ana Silva" in body, url
        assert "ana.silva@acme.example" not in body, url
