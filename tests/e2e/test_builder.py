"""The flow editor in a real browser, through its visible controls only (a real mouse drags
steps from the palette and draws links; forms are typed into; nothing is posted by hand):
a bot from the lead-capture template gets a new question, its validation is set in the side
panel, the error it shows on the canvas is fixed, the test chat runs the draft with the
highlight following it, and the published version runs in the widget on the demo page.
Also: undo takes back two dragged steps; every template and the demo bot open and save
unchanged; axe-core finds nothing in the gallery and the side panel.

``CHATTONIC_SCREENSHOTS=1`` writes the editor's picture for the docs (docs/flow-editor.png).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bots import services
from bots.gallery import FLOW_TEMPLATES
from bots.models import Bot
from chattonic.demo import demo_flow
from tests.e2e.conftest import assert_accessible
from tests.e2e.test_bot_pages import sign_in
from tests.factories import MembershipFactory
from tests.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORT = {"width": 1600, "height": 1000}
DOCS = Path(__file__).resolve().parents[2] / "docs"


def step(page, node_id: str):
    """The step ``node_id`` as drawn on the canvas."""
    return page.locator(f'#ct-canvas .drawflow-node:has(.ct-node[data-node="{node_id}"])')


def palette(page, kind: str):
    return page.locator("#ct-palette-list").get_by_role("button", name=kind, exact=True)


def drag(page, source, target_x: float, target_y: float) -> None:
    """Press on ``source``, move the mouse in steps to the point, release."""
    box = source.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(target_x, target_y, steps=12)
    page.mouse.up()


def drag_to(page, source, target) -> None:
    box = target.bounding_box()
    drag(page, source, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def click(page, target) -> None:
    """A mouse click in the middle of ``target`` (a step is a drag handle too)."""
    box = target.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def canvas_point(page, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator("#ct-canvas").bounding_box()
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy


def editor_of(new_context, tenant, template: str, name: str = "Leads", **context):
    """An owner in the editor of a new bot started from ``template`` (the browser context
    made with ``context``, by default the VIEWPORT): (page, bot)."""
    owner = MembershipFactory(tenant=tenant, role="owner").user
    bot = services.bot_create(tenant=tenant, name=name, template=template)
    page = new_context(**{"viewport": VIEWPORT, **context}).new_page()
    sign_in(page, owner.username, f"/dashboard/bots/bot/{bot.pk}/change/")
    open_editor(page)
    return page, bot


def open_editor(page) -> None:
    page.get_by_role("link", name="Flow editor").click()
    page.wait_for_selector("body[data-ct-builder=ready]", state="attached")


def chat_says(page, text: str) -> None:
    """The visitor types ``text`` into the test chat (or the demo widget) and sends it."""
    page.get_by_placeholder("Type a message…").fill(text)
    page.get_by_role("button", name="Send").click()


def test_an_owner_builds_tests_and_publishes_a_flow_in_the_editor(
    new_context, live_server_url, tenant, tmp_path, worker
):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    page = new_context(viewport=VIEWPORT).new_page()
    sign_in(page, owner.username, "/dashboard/bots/bot/")

    # "Add bot" shows the gallery; the lead-capture template starts the bot.
    page.get_by_role("link", name="Add bot").click()
    expect(page.get_by_role("heading", name="Lead capture")).to_be_visible()
    assert_accessible(page, ".ct-gallery-page")
    page.get_by_role("link", name="Start from “Lead capture”").click()
    expect(page.get_by_label("Start from")).to_have_value("lead_capture")
    page.get_by_label("Name").fill("Lead bot")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    open_editor(page)
    expect(page.locator("#ct-save-status")).to_have_text("Saved")
    expect(step(page, "ask_need")).to_be_visible()

    # A question dragged in from the palette, with a real mouse.
    drag(page, palette(page, "Question"), *canvas_point(page, 0.35, 0.8))  # clear of the minimap
    new = step(page, "question_1")
    expect(new).to_be_visible()
    # Linked: ask_need's "answered" way out to it, and its own "answered" to save_lead.
    status = page.locator("#ct-save-status")
    expect(status).to_have_text("Saved")  # checked: the step shows what it has to say
    drag_to(page, step(page, "ask_need").locator(".output_1"), new.locator(".input_1"))
    expect(status).to_have_text("Saved")
    drag_to(page, new.locator(".output_1"), step(page, "save_lead").locator(".input_1"))
    expect(status).to_have_text("Saved")
    expect(step(page, "ask_need").locator(".output_1")).to_have_attribute("data-label", "answered")

    # Its form in the side panel: text, variable, a regex validation.
    click(page, new.locator(".ct-node-id"))
    panel = page.locator("#ct-panel")
    expect(panel.get_by_role("heading", name="Question: question_1")).to_be_visible()
    panel.get_by_label("Question", exact=True).fill("What's your postcode?")
    panel.get_by_label("Keep the answer in variable").fill("postcode")
    panel.get_by_label("Validation").select_option("regex")
    # The empty pattern is an error, on the step and beside the field.
    expect(new.locator(".ct-node-problems .ct-error")).to_have_text("pattern: must not be empty")
    expect(panel.get_by_text("must not be empty")).to_be_visible()
    expect(status).to_have_text("Not saved: 1 problem to fix.")
    assert_accessible(page, "#ct-panel")
    panel.get_by_label("Pattern").fill("[0-9]{5}")
    panel.get_by_label("Retry text").fill("Five digits, please.")
    expect(new.locator(".ct-node-problems .ct-error")).to_have_count(0)
    expect(status).to_have_text("Saved")
    assert_accessible(page, "#ct-panel")
    bot = Bot.objects.get(tenant=tenant, name="Lead bot")
    saved = bot.draft_definition["nodes"]
    assert saved["ask_need"]["next"] == "question_1"
    assert saved["question_1"] == {
        "type": "question",
        "text": "What's your postcode?",
        "variable": "postcode",
        "validation": "regex",
        "pattern": "[0-9]{5}",
        "retry_text": "Five digits, please.",
        "next": "save_lead",
    }

    # The test chat (closed until asked) runs the draft; the highlight follows it.
    page.get_by_role("button", name="Open chat").click()
    canvas = page.locator("#ct-canvas")
    expect(canvas).to_have_attribute("data-current", "ask_name")
    chat_says(page, "Maria")
    expect(canvas).to_have_attribute("data-current", "ask_email")
    chat_says(page, "maria@example.com")
    expect(canvas).to_have_attribute("data-current", "ask_need")
    chat_says(page, "A quote for a kitchen")
    expect(page.get_by_text("What's your postcode?").first).to_be_visible()
    expect(canvas).to_have_attribute("data-current", "question_1")
    expect(page.locator(".drawflow-node.ct-current .ct-node")).to_have_attribute(
        "data-node", "question_1"
    )
    docs = os.environ.get("CHATTONIC_SCREENSHOTS")
    shot = DOCS / "flow-editor.png" if docs else tmp_path / "flow-editor.png"
    page.screenshot(path=str(shot))
    chat_says(page, "abc")
    expect(page.get_by_text("Five digits, please.").first).to_be_visible()

    # Publish from the editor, launch, and the demo page's widget runs the new version.
    page.get_by_label("Note for the new version").fill("Ask the postcode")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published version 1: training…")).to_be_visible()
    page.get_by_role("link", name="Lead bot").click()
    # The worker trains it, and then it is live (the bot's page follows by itself).
    wait_for(
        lambda: Bot.objects.filter(name="Lead bot", published_version__isnull=False).exists(),
        60,
        interval=0.2,
        what="the worker to train version 1",
    )
    page.reload()
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_text("The bot is live.")).to_be_visible()

    visitor = new_context().new_page()
    visitor.goto(f"/demo/{bot.public_key}/")
    visitor.get_by_role("button", name="Open chat").click()
    expect(visitor.get_by_text("What's your name?").first).to_be_visible()
    chat_says(visitor, "Ana")
    expect(visitor.get_by_text("What's your email?").first).to_be_visible()
    chat_says(visitor, "ana@example.com")
    expect(visitor.get_by_text("What can we help you with?").first).to_be_visible()
    chat_says(visitor, "A new roof")
    expect(visitor.get_by_text("What's your postcode?").first).to_be_visible()
    chat_says(visitor, "12345")
    expect(visitor.get_by_text("Thank you, Ana!").first).to_be_visible()


def test_undo_takes_back_two_dragged_steps(new_context, live_server_url, tenant):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    bot = services.bot_create(tenant=tenant, name="Blank", template="blank")
    before = bot.draft_definition
    page = new_context(viewport=VIEWPORT).new_page()
    sign_in(page, owner.username, f"/dashboard/bots/bot/{bot.pk}/change/")
    open_editor(page)

    drag(page, palette(page, "Message"), *canvas_point(page, 0.6, 0.3))
    expect(step(page, "message_1")).to_be_visible()
    # Nothing leads to it and it leads nowhere: both are said on the step.
    problems = step(page, "message_1").locator(".ct-node-problems")
    expect(problems).to_contain_text("is not reachable from the start or main node")
    expect(problems).to_contain_text("A dead end: the flow stops here")
    drag(page, palette(page, "End"), *canvas_point(page, 0.6, 0.7))
    expect(step(page, "end_1")).to_be_visible()
    expect(page.locator("#ct-save-status")).to_have_text("Saved")
    bot.refresh_from_db()
    assert {"message_1", "end_1"} <= set(bot.draft_definition["nodes"])

    page.get_by_role("button", name="Undo").click()
    expect(step(page, "end_1")).to_have_count(0)
    expect(step(page, "message_1")).to_be_visible()
    page.get_by_role("button", name="Undo").click()
    expect(step(page, "message_1")).to_have_count(0)
    expect(page.get_by_role("button", name="Undo")).to_be_disabled()
    expect(page.locator("#ct-save-status")).to_have_text("Saved")
    bot.refresh_from_db()
    assert bot.draft_definition == before  # positions too: no step was moved or added

    page.get_by_role("button", name="Redo").click()
    expect(step(page, "message_1")).to_be_visible()


def flows() -> list[tuple[str, dict | None]]:
    return [(name, None) for name in FLOW_TEMPLATES] + [("demo", demo_flow())]


def test_every_flow_opened_and_saved_unchanged_is_the_same(new_context, live_server_url, tenant):
    """Each gallery template and the demo's flow, opened in the editor and saved as it is,
    comes back the same (one signed-in page opens each in turn)."""
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    bots = [
        services.bot_create(tenant=tenant, name=name, definition=definition)
        if definition is not None
        else services.bot_create(tenant=tenant, name=name, template=name)
        for name, definition in flows()
    ]
    page = new_context(viewport=VIEWPORT).new_page()
    sign_in(page, owner.username, "/dashboard/")
    for bot in bots:
        before = Bot.objects.get(pk=bot.pk)
        page.goto(f"/dashboard/bots/bot/{bot.pk}/change/")
        open_editor(page)
        with page.expect_response(lambda r: r.url.endswith("/builder/draft/")) as saved:
            page.get_by_role("button", name="Save draft").click()
        assert saved.value.status == 200, bot.name
        expect(page.locator("#ct-save-status")).to_have_text("Saved")
        after = Bot.objects.get(pk=bot.pk)
        assert after.draft_updated_at > before.draft_updated_at, bot.name  # it was saved
        assert after.draft_definition == before.draft_definition, bot.name


def test_renaming_deleting_duplicating_intents_keys_and_a_second_tab(
    new_context, live_server_url, tenant
):
    """The side panel's other controls and the keyboard: a renamed step keeps its links, a
    duplicate is a copy, Delete removes a step and the links to it, Ctrl+Z brings it back, a
    new intent gives a router a way out; a second tab's stale save is refused and said."""
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    bot = services.bot_create(tenant=tenant, name="FAQ", template="faq_handoff")
    context = new_context(viewport=VIEWPORT)
    page = context.new_page()
    sign_in(page, owner.username, f"/dashboard/bots/bot/{bot.pk}/change/")
    open_editor(page)
    status = page.locator("#ct-save-status")
    panel = page.locator("#ct-panel")

    # Rename "hours": the menu's button and the router's route follow.
    click(page, step(page, "hours").locator(".ct-node-id"))
    panel.get_by_label("Step name").fill("opening_hours_answer")
    panel.get_by_label("Step name").press("Tab")
    expect(step(page, "opening_hours_answer")).to_be_visible()
    expect(status).to_have_text("Saved")
    bot.refresh_from_db()
    nodes = bot.draft_definition["nodes"]
    assert "hours" not in nodes
    assert nodes["menu_message"]["quick_replies"][0]["next"] == "opening_hours_answer"
    assert nodes["faq"]["routes"]["opening_hours"] == "opening_hours_answer"

    # Duplicate it, then delete the copy with the Delete key; Ctrl+Z brings it back.
    panel.get_by_role("button", name="Duplicate step").click()
    expect(step(page, "message_1")).to_be_visible()
    expect(panel.get_by_role("heading", name="Message: message_1")).to_be_visible()
    click(page, step(page, "message_1").locator(".ct-node-id"))
    page.keyboard.press("Delete")
    expect(step(page, "message_1")).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(step(page, "message_1")).to_be_visible()
    expect(status).to_have_text("Saved")
    bot.refresh_from_db()
    assert bot.draft_definition["nodes"]["message_1"] == nodes["opening_hours_answer"]

    # Delete "returns": the links to it go (the router's route, the menu's button's target).
    click(page, step(page, "returns").locator(".ct-node-id"))
    page.keyboard.press("Delete")
    expect(step(page, "returns")).to_have_count(0)
    expect(status).to_have_text("Saved")
    bot.refresh_from_db()
    nodes = bot.draft_definition["nodes"]
    assert "returns" not in nodes["faq"]["routes"]
    assert "next" not in nodes["menu_message"]["quick_replies"][2]

    # A new intent: the router gets a way out for it; the form passes axe.
    page.get_by_role("button", name="Intents").click()
    expect(panel.get_by_role("heading", name="Intents")).to_be_visible()
    panel.get_by_role("button", name="Add an intent").click()
    panel.get_by_label("Name").last.fill("payment")
    panel.get_by_label("Training phrases (one a line)").last.fill("how can I pay\npayment methods")
    expect(step(page, "faq").locator(".outputs .output[data-label=payment]")).to_have_count(1)
    expect(status).to_have_text("Saved")
    assert_accessible(page, "#ct-panel")
    bot.refresh_from_db()
    assert bot.draft_definition["intents"][-1] == {
        "name": "payment",
        "phrases": ["how can I pay", "payment methods"],
    }

    # A second tab saves; the first one's next save is refused and says why.
    other = context.new_page()
    other.goto(f"/dashboard/bots/bot/{bot.pk}/builder/")
    other.wait_for_selector("body[data-ct-builder=ready]", state="attached")
    other.get_by_role("button", name="Arrange").click()
    expect(other.locator("#ct-save-status")).to_have_text("Saved")
    saved_by_other = Bot.objects.get(pk=bot.pk).draft_definition
    page.get_by_role("button", name="Arrange").click()
    expect(status).to_contain_text("The draft was changed elsewhere")
    assert Bot.objects.get(pk=bot.pk).draft_definition == saved_by_other


def test_every_kind_of_step_has_a_form_axe_finds_nothing_in(new_context, live_server_url, tenant):
    """Each palette entry, pressed, adds its step in view and opens its form; axe-core finds
    no violation in any of them, nor in the list of problems."""
    from playwright.sync_api import expect

    page, _ = editor_of(new_context, tenant, "blank", name="Kinds")
    panel = page.locator("#ct-panel")
    kinds = {
        "Message": "message",
        "Question": "question",
        "Condition": "condition",
        "Set variables": "set",
        "Understand intent": "router",
        "HTTP request": "http",
        "Save a lead": "capture_lead",
        "Hand to a person": "handoff",
        "End": "end",
    }
    for label, kind in kinds.items():
        palette(page, label).click()
        expect(step(page, f"{kind}_1")).to_be_visible()
        expect(panel.get_by_role("heading", name=f"{label}: {kind}_1")).to_be_visible()
        expect(page.locator("#ct-save-status")).not_to_have_text("Checking…")
        assert_accessible(page, "#ct-panel")
    # The minimap: a box a step and the frame of the view; pressing it moves the view there.
    minimap = page.locator("#ct-minimap rect")
    expect(minimap).to_have_count(len(kinds) + 2 + 1)  # the blank bot's two steps, the frame
    transform = page.locator("#ct-canvas .drawflow").get_attribute("style")
    box = page.locator("#ct-minimap").bounding_box()
    page.mouse.click(box["x"] + box["width"] - 5, box["y"] + box["height"] - 5)
    expect(page.locator("#ct-canvas .drawflow")).not_to_have_attribute("style", transform)
    # A condition's rule without a target is an error; the panel lists it, and axe is content.
    panel.get_by_role("button", name="Show all problems").click()
    expect(panel.get_by_role("button", name="Error in “condition_1”").first).to_be_visible()
    assert_accessible(page, "#ct-panel")


def _overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_at_1280_px_the_canvas_keeps_most_of_the_width_and_the_minimap_hides_no_help(
    new_context, live_server_url, tenant
):
    """The test chat starts closed, so the canvas is not squeezed to a third of the window;
    opened, the editor makes room for it and the minimap gives way on the narrower canvas;
    the minimap never lies over the canvas's help."""
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    bot = services.bot_create(tenant=tenant, name="Leads", template="lead_capture")
    page = new_context(viewport={"width": 1280, "height": 800}).new_page()
    sign_in(page, owner.username, f"/dashboard/bots/bot/{bot.pk}/change/")
    open_editor(page)

    chat_box = page.get_by_placeholder("Type a message…")
    expect(chat_box).to_be_hidden()
    canvas = page.locator("#ct-canvas").bounding_box()
    assert canvas["width"] >= 640, canvas  # half the window at least (it was ~330 px)
    help_text = page.locator(".ct-canvas-help")
    expect(help_text).to_be_visible()
    assert not _overlap(page.locator("#ct-minimap").bounding_box(), help_text.bounding_box())

    # Opened, the chat sits beside the editor, covering none of it.
    page.get_by_role("button", name="Open chat").click()
    expect(chat_box).to_be_visible()
    panel = page.locator("chattonic-widget .panel").bounding_box()
    builder = page.locator("#ct-builder").bounding_box()
    assert not _overlap(panel, builder), (panel, builder)
    # The canvas narrower now: the minimap makes way (it covered half of it), and comes
    # back when the chat closes.
    assert page.locator("#ct-canvas").bounding_box()["width"] < 560
    expect(page.locator("#ct-minimap")).to_be_hidden()
    expect(page.locator("#ct-canvas")).to_have_attribute("data-current", "ask_name")
    page.get_by_role("button", name="Close chat").first.click()
    expect(page.locator("#ct-minimap")).to_be_visible()
    assert not _overlap(page.locator("#ct-minimap").bounding_box(), help_text.bounding_box())


def test_leaving_the_editor_with_an_unsaved_edit_asks_first(new_context, live_server_url, tenant):
    """An edit still being checked, or refused for a problem, is not lost without a word:
    leaving asks (the browser's "Leave site?"); once saved, leaving does not ask."""
    from playwright.sync_api import expect

    page, bot = editor_of(new_context, tenant, "lead_capture")
    status = page.locator("#ct-save-status")
    expect(status).to_have_text("Saved")
    asked = []

    def stay(dialog):
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    click(page, step(page, "welcome").locator(".ct-node-id"))
    text = page.locator("#ct-panel").get_by_label("Text", exact=True)
    text.fill("")  # a message with nothing to say: a problem, not saved
    expect(status).to_have_text("Not saved: 1 problem to fix.")
    page.get_by_role("link", name="Home").click()
    expect(page.locator("#ct-canvas")).to_be_visible()  # still here
    assert asked == ["beforeunload"]
    expect(text).to_have_value("")

    text.fill("Hello again!")
    page.get_by_role("link", name="Home").click()  # at once, while it is being checked
    assert asked == ["beforeunload", "beforeunload"]
    expect(status).to_have_text("Saved")
    page.get_by_role("link", name="Home").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    assert asked == ["beforeunload", "beforeunload"]
    bot.refresh_from_db()
    assert bot.draft_definition["nodes"]["welcome"]["text"] == "Hello again!"


def test_a_save_that_ends_while_a_link_is_being_dragged_saves(new_context, live_server_url, tenant):
    """An edit, then a link dragged from a step's dot and held while the draft saves: it
    says "Saved" (the save's redraw of the links read the dragged one, which has no ends
    yet, and said "Not saved: Cannot read properties of undefined (reading 'slice')"), and
    the edit is stored."""
    from playwright.sync_api import expect

    page, bot = editor_of(new_context, tenant, "lead_capture")
    status = page.locator("#ct-save-status")
    expect(status).to_have_text("Saved")
    click(page, step(page, "welcome").locator(".ct-node-id"))
    page.locator("#ct-panel").get_by_label("Note for editors").fill("Greets first.")
    dot = step(page, "welcome").locator(".output_1").bounding_box()
    page.mouse.move(dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2)
    page.mouse.down()
    page.mouse.move(*canvas_point(page, 0.5, 0.9), steps=8)  # held: the link is being drawn
    expect(page.locator("svg.connection:not([class*=node_in])")).to_have_count(1)

    def noted() -> bool:
        bot.refresh_from_db()
        return bot.draft_definition["nodes"]["welcome"].get("note") == "Greets first."

    # The edit is checked and saved meanwhile, the link still held (the check's redraw
    # threw before the save was sent: the draft was never saved).
    wait_for(noted, 15, what="the note saved while the link is held")
    expect(status).to_have_text("Saved")
    page.mouse.up()
    expect(status).to_have_text("Saved")


def test_steps_added_from_the_palette_land_clear_of_the_others_and_in_view(
    new_context, live_server_url, tenant
):
    """Pressed three times, "Question" adds three steps, none over another step (each was put
    at the view's centre, over the step there) and each in view."""
    from playwright.sync_api import expect

    page, _ = editor_of(new_context, tenant, "lead_capture")
    expect(page.locator("#ct-save-status")).to_have_text("Saved")
    steps = page.locator("#ct-canvas .drawflow-node")
    before = steps.count()
    for added in range(1, 4):
        palette(page, "Question").click()
        expect(steps).to_have_count(before + added)
        new = step(page, f"question_{added}")
        expect(new).to_be_in_viewport()
        canvas, box = page.locator("#ct-canvas").bounding_box(), new.bounding_box()
        assert canvas["x"] <= box["x"] and box["x"] + box["width"] <= canvas["x"] + canvas["width"]
        assert (
            canvas["y"] <= box["y"] and box["y"] + box["height"] <= canvas["y"] + canvas["height"]
        )
    boxes = [b.bounding_box() for b in steps.all()]
    overlapping = [
        (i, j) for i in range(len(boxes)) for j in range(i) if _overlap(boxes[i], boxes[j])
    ]
    assert overlapping == [], overlapping


def test_tab_after_renaming_a_step_goes_on_to_the_next_field(new_context, live_server_url, tenant):
    """A step renamed, Tab: the next field has the focus (it went to the page, and what was
    typed next was lost), and what is typed there is the step's."""
    from playwright.sync_api import expect

    page, bot = editor_of(new_context, tenant, "lead_capture")
    expect(page.locator("#ct-save-status")).to_have_text("Saved")
    click(page, step(page, "welcome").locator(".ct-node-id"))
    panel = page.locator("#ct-panel")
    panel.get_by_label("Step name").fill("hello_step")
    page.keyboard.press("Tab")
    starts = panel.get_by_label("The conversation starts here")
    expect(starts).to_be_focused()
    expect(page.locator("#ct-panel-title")).to_contain_text("hello_step")
    page.keyboard.press("Tab")
    text = panel.get_by_label("Text", exact=True)
    expect(text).to_be_focused()
    page.keyboard.press("End")
    page.keyboard.type(" Welcome!")

    def saved() -> bool:
        bot.refresh_from_db()
        node = bot.draft_definition["nodes"].get("hello_step") or {}
        return str(node.get("text", "")).endswith(" Welcome!")

    wait_for(saved, 15, what="the renamed step's text saved")


def test_on_a_phone_the_editor_fits_the_screen_and_its_controls_are_reachable(
    new_context, live_server_url, tenant
):
    """At 375 x 812: no sideways scrolling, the canvas the screen's width (it was 2 px), the
    steps to add not covered by the minimap, the help readable, the side panel in reach;
    axe-core finds nothing in this layout."""
    from playwright.sync_api import expect

    phone = {"width": 375, "height": 812}
    page, bot = editor_of(new_context, tenant, "lead_capture", viewport=phone, is_mobile=True)
    expect(page.locator("#ct-save-status")).to_have_text("Saved")
    sideways = "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    assert not page.evaluate(sideways)
    canvas = page.locator("#ct-canvas").bounding_box()
    assert canvas["width"] >= 300 and canvas["height"] >= 300, canvas
    for kind in ("Message", "Question", "End"):
        button = palette(page, kind)
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        hit = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('button')?.textContent || ''",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert hit.strip().startswith(kind), (kind, hit)
    help_text = page.locator(".ct-canvas-help").bounding_box()
    assert help_text["width"] >= 300, help_text  # not a letter a line
    click(page, step(page, "welcome").locator(".ct-node-id"))
    text = page.locator("#ct-panel").get_by_label("Text", exact=True)
    text.scroll_into_view_if_needed()
    text.fill("Hello from a phone!")

    def saved() -> bool:
        bot.refresh_from_db()
        return bot.draft_definition["nodes"]["welcome"]["text"] == "Hello from a phone!"

    wait_for(saved, 15, what="the edit saved")
    expect(page.locator("#ct-save-status")).to_have_text("Saved")
    assert not page.evaluate(sideways)
    assert_accessible(page)
