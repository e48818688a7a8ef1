"""A tenant owner adds a Telegram channel in a real browser, through its visible controls only
(clicks and typing; no form posted and no API called by hand): the set-up steps and the
webhook URL before saving, a missing credential named beside its input with the rest kept, a
token Telegram does not know refused beside its input, then saved: registered with Telegram
(a local fake of its Bot API that, as Telegram, calls HTTPS addresses only), the whole
webhook URL shown, no secret shown back, and Telegram's updates to that URL taken. axe-core
finds nothing on these pages."""

from __future__ import annotations

import re

import pytest
import requests

from conversations.models import ChannelKind, Message
from messaging.models import Channel
from messaging.services import channel_credentials
from tests.e2e.conftest import assert_accessible
from tests.e2e.test_bot_pages import sign_in
from tests.e2e.test_owner_pages import open_list
from tests.factories import MembershipFactory, launched_bot
from tests.fakes.channels import text_body
from tests.fakes.platforms import FakeTelegram

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PUBLIC = "https://chat.example.com"  # the deployment's public address, as Telegram needs
TOKEN = "123456:AAsecret-bot-token"


@pytest.fixture
def telegram():
    with FakeTelegram(bot_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def live_server_env(telegram) -> dict[str, str]:
    return {
        "TELEGRAM_API_BASE": telegram.base_url,
        "OUTBOUND_ALLOWED_HOSTS": telegram.netloc,
        "PUBLIC_BASE_URL": PUBLIC,
    }


def test_an_owner_adds_a_telegram_channel_from_its_inputs(
    new_context, live_server_url, tenant, telegram
):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    launched_bot(tenant=tenant, name="Acme assistant")
    page = new_context().new_page()
    sign_in(page, owner.username, "/dashboard/")
    open_list(page, "messaging", "channel")
    page.get_by_role("link", name="Add channel").click()

    page.get_by_label("Name").fill("Support on Telegram")
    page.get_by_label("Bot:", exact=True).select_option(label="Acme assistant")
    page.get_by_label("Kind").select_option(label="Telegram")
    group = page.get_by_role("group", name="Telegram: set-up and credentials")
    expect(group).to_be_visible()
    expect(
        page.get_by_role("group", name="WhatsApp Cloud API: set-up and credentials")
    ).to_be_hidden()
    # The steps and the webhook URL, on the deployment's public address.
    expect(group.get_by_text("Create a bot with @BotFather")).to_be_visible()
    expect(group.get_by_text("Chat-Tonic registers the webhook URL")).to_be_visible()
    shown_url = group.locator("code").first
    expect(shown_url).to_have_text(re.compile(rf"^{re.escape(PUBLIC)}/hooks/telegram/\d+/$"))
    url = shown_url.inner_text()
    assert_accessible(page)

    # One credential missing: named beside its input; the rest is kept as typed.
    group.get_by_label("Bot token").fill(TOKEN)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("This field is required.")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Support on Telegram")
    expect(page.get_by_label("Kind")).to_have_value("telegram")
    assert page.get_by_label("Bot:", exact=True).evaluate("e => e.selectedOptions[0].text") == (
        "Acme assistant"
    )
    assert not Channel.objects.exists()
    # The URL shown is still the same: it may be in the platform already.
    group = page.get_by_role("group", name="Telegram: set-up and credentials")
    expect(group.locator("code").first).to_have_text(url)

    # A token Telegram does not know: refused beside its input, nothing saved.
    group.get_by_label("Bot token").fill("123456:AAnot-this-bot")
    group.get_by_label("Secret token").fill("my_secret-token")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Telegram refused this token")).to_be_visible()
    assert not Channel.objects.exists() and telegram.webhook is None

    # Both right: registered with Telegram, saved, and the page gives the same webhook URL.
    group = page.get_by_role("group", name="Telegram: set-up and credentials")
    group.get_by_label("Bot token").fill(TOKEN)
    group.get_by_label("Secret token").fill("my_secret-token")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#ct-webhook-url")).to_have_text(url)
    channel = Channel.objects.get(name="Support on Telegram")
    assert url == f"{PUBLIC}/hooks/telegram/{channel.pk}/"
    expect(page.get_by_text(f"Telegram sends its messages to {url} now.")).to_be_visible()
    assert (telegram.webhook["url"], telegram.webhook["secret_token"]) == (url, "my_secret-token")
    assert channel.kind == ChannelKind.TELEGRAM and channel.tenant == tenant
    assert channel_credentials(channel) == {"bot_token": TOKEN, "secret_token": "my_secret-token"}
    html = page.content()
    assert "AAsecret-bot-token" not in html and "my_secret-token" not in html
    assert_accessible(page)

    # Telegram posts an update to that URL's path (here, on the live server): this channel's.
    answer = requests.post(
        live_server_url + url.removeprefix(PUBLIC),
        data=text_body("telegram"),
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": "my_secret-token",
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == 1
    assert Message.objects.filter(conversation__channel=channel, direction="in").count() == 1
