"""Every page of the bots app that a tenant owner can reach, walked as they would: from the app's
index, following the pages' own links. Each answers 200 (a POST-only action 405 to a GET), no
page nests a form in another (browsers drop the inner one: the Publish button that did
nothing), no setting is read from raw JSON (only the flow's raw definition is JSON, on its own
page, named so), and no region is shown as its code."""

from __future__ import annotations

import json
from collections import defaultdict
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib import admin
from django.urls import reverse

from bots.models import Bot, BotVersion, UnmatchedPhrase
from bots.services import bot_publish, bot_update
from tests.factories import BotFactory, UnmatchedPhraseFactory, launched_bot, trained

pytestmark = pytest.mark.django_db

START = "/dashboard/bots/"
# Actions that change something: POST only, each its own form on its page.
POST_ONLY = {
    "bots_bot_launch",
    "bots_bot_pause",
    "bots_bot_rollback",
    "bots_bot_publish",
    "bots_bot_builder_check",
    "bots_bot_builder_draft",
    "bots_bot_unmatched_act",
}
# What the flow editor's script reads (JSON), not a page to link to.
SCRIPT_ONLY = {"bots_bot_builder_sandbox"}
# Pages an owner has no permission for (versions never change), so no link leads there.
FORBIDDEN = {"bots_botversion_add", "bots_botversion_delete"}
CODES = ("us-central", "eu-frankfurt")
MAX_QUERIES_A_PATH = 4  # the list's sort and filter links, a few of each page


class Page(HTMLParser):
    """What the walk checks in a page: its links, nested forms, textareas and visible text."""

    HIDDEN = {"script", "style", "textarea", "pre", "code", "template", "option"}

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.form_depth = 0
        self.nested_forms = 0
        self.textareas: list[tuple[dict, str]] = []
        self.text: list[str] = []
        self._hidden = 0
        self._textarea: dict | None = None
        self._textarea_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "form":
            self.form_depth += 1
            if self.form_depth > 1:
                self.nested_forms += 1
        if tag == "textarea":
            self._textarea, self._textarea_text = attrs, []
        if tag in self.HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag == "form":
            self.form_depth -= 1
        if tag == "textarea" and self._textarea is not None:
            self.textareas.append((self._textarea, "".join(self._textarea_text)))
            self._textarea = None
        if tag in self.HIDDEN:
            self._hidden -= 1

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea_text.append(data)
        elif not self._hidden:
            self.text.append(data)


def holds_json(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict | list)
    except ValueError:
        return False


def named_pages(bot: Bot, version: BotVersion, phrase: UnmatchedPhrase) -> dict[str, str]:
    """Every named URL of the bots app's admins, with this bot's, version's and unmatched
    phrase's ids."""
    pages = {}
    for model, ids in (
        (Bot, {"object_id": bot.pk}),
        (BotVersion, {"object_id": version.pk}),
    ):
        for pattern in admin.site._registry[model].get_urls():
            if not pattern.name:
                continue  # the bare <id>/ that redirects to change/
            kwargs = {
                name: {**ids, "number": version.number, "phrase_id": phrase.pk, "verb": "add"}[name]
                for name in pattern.pattern.converters
            }
            pages[pattern.name] = reverse(f"admin:{pattern.name}", kwargs=kwargs)
    return pages


def test_an_owner_walks_every_bots_page(owner_client, tenant):
    bot = launched_bot(
        tenant=tenant,
        allowed_origins=["https://shop.example.com"],
        business_hours={"mon": [["09:00", "12:00"], ["13:00", "18:00"]]},
    )
    bot_update(bot=bot, welcome_text="Hello again")
    version = trained(bot_publish(bot=bot))
    BotFactory(tenant=tenant, name="A draft")
    phrase = UnmatchedPhraseFactory(tenant=tenant, bot=bot)  # a visitor's text not understood

    seen: dict[str, int] = {}
    queries: dict[str, int] = defaultdict(int)
    queue = [START]
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        response = owner_client.get(url)
        seen[url] = response.status_code
        assert response.status_code == 200, f"{url} answered {response.status_code}"
        if not response["Content-Type"].startswith("text/html"):
            continue  # the flow's export: a JSON file, named so
        page = Page()
        page.feed(response.content.decode())
        assert page.nested_forms == 0, f"{url} nests a form in another"
        for attrs, text in page.textareas:
            if holds_json(text):
                assert "ct-json-editor" in attrs.get("class", "") and url.endswith("/flow/"), (
                    f"{url}: the textarea {attrs.get('name')} holds JSON"
                )
        visible = " ".join(page.text)
        for code in CODES:
            assert code not in visible, f"{url} shows the code {code}"
        for href in page.links:
            target = urlsplit(urljoin(url, href))
            if target.netloc not in ("", "testserver") or not target.path.startswith(START):
                continue
            if target.query:
                if queries[target.path] >= MAX_QUERIES_A_PATH:
                    continue
                queries[target.path] += 1
            queue.append(target.path + (f"?{target.query}" if target.query else ""))

    reached = {urlsplit(url).path for url in seen}
    for name, url in named_pages(bot, version, phrase).items():
        if name in POST_ONLY:
            assert owner_client.get(url).status_code == 405, name
        elif name in SCRIPT_ONLY:
            assert owner_client.get(url)["Content-Type"] == "application/json", name
        elif name not in FORBIDDEN:
            assert url in reached, f"no link leads to {name} ({url})"
