"""The channel's add and change pages: the chosen platform's credentials as separate labelled
inputs (never a JSON box), its set-up steps and webhook URL before saving, field errors that
keep what was typed, and secrets never sent back to the browser."""

from __future__ import annotations

import re

import pytest

from conversations.models import Message
from messaging.models import Channel
from messaging.services import channel_credentials
from tests.factories import launched_bot
from tests.fakes.channels import CREDENTIALS, make_channel, text_body
from tests.fakes.platforms import FakeTelegram

pytestmark = pytest.mark.django_db

ADD = "/dashboard/messaging/channel/add/"
PUBLIC = "https://chat.example.com"


@pytest.fixture
def telegram(settings):
    """The Telegram that saving a Telegram channel registers its webhook with (it knows two
    bots, and calls HTTPS addresses only: the deployment's public one)."""
    settings.PUBLIC_BASE_URL = PUBLIC
    with FakeTelegram(other_bots=("123:new",)) as fake:
        settings.TELEGRAM_API_BASE = fake.allow(settings).base_url
        yield fake


def change_url(channel) -> str:
    return f"/dashboard/messaging/channel/{channel.pk}/change/"


def form_of(response):
    return response.context["adminform"].form


def test_the_add_page_has_each_platforms_inputs_steps_and_webhook_url(
    settings, owner_client, tenant
):
    settings.PUBLIC_BASE_URL = settings.PUBLIC_BASE_URL_GUESS = "http://localhost:8000"
    settings.ALLOWED_HOSTS = ["chat.example.net", "testserver"]
    page = owner_client.get(ADD, HTTP_HOST="chat.example.net")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<textarea" not in html  # no JSON box
    for kind, label in [
        ("whatsapp", "Phone number ID"),
        ("messenger", "Page access token"),
        ("telegram", "Bot token"),
        ("twilio", "Account SID"),
        ("api", "Webhook URL"),
    ]:
        assert re.search(rf'<label[^>]*for="id_{kind}__\w+"[^>]*>{label}', html), kind
        assert f"http://chat.example.net/hooks/{kind}/" in html  # the URL, before saving
    assert "subscribe to messages" in html and "setWebhook" in html  # the steps
    secret = re.search(r'<input[^>]*name="telegram__bot_token"[^>]*>', html).group(0)
    assert 'type="password"' in secret and 'autocomplete="new-password"' in secret
    assert "localhost:8000" not in html


def test_a_channel_is_added_from_its_inputs_and_its_page_shows_the_whole_webhook_url(
    owner_client, tenant
):
    bot = launched_bot(tenant=tenant)
    response = owner_client.post(
        ADD,
        {
            "name": "Shop WhatsApp",
            "bot": bot.pk,
            "kind": "whatsapp",
            **{f"whatsapp__{key}": value for key, value in CREDENTIALS["whatsapp"].items()},
            "whatsapp__throughput": " 200 ",
            "telegram__bot_token": "another platform's input: not read",
        },
        follow=True,
    )
    channel = Channel.objects.get(name="Shop WhatsApp")
    assert response.redirect_chain[-1][0] == change_url(channel)
    assert channel_credentials(channel) == {**CREDENTIALS["whatsapp"], "throughput": "200"}
    html = response.content.decode()
    assert f"Its webhook URL is http://testserver/hooks/whatsapp/{channel.pk}/" in html
    assert (
        f'<code id="ct-webhook-url">http://testserver/hooks/whatsapp/{channel.pk}/</code>' in html
    )


def test_missing_credentials_are_named_beside_their_inputs_and_the_rest_stays_as_typed(
    owner_client, tenant
):
    bot = launched_bot(tenant=tenant)
    response = owner_client.post(
        ADD,
        {
            "name": "Half done",
            "bot": bot.pk,
            "kind": "twilio",
            "twilio__account_sid": "AC123",
            "twilio__auth_token": "typed secret",
        },
    )
    assert response.status_code == 200
    form = form_of(response)
    assert form.errors == {"twilio__from_number": ["This field is required."]}
    html = response.content.decode()
    assert 'value="Half done"' in html
    assert re.search(rf'<option value="{bot.pk}" selected>', html)
    assert re.search(r'<option value="twilio" selected>', html)
    assert 'value="AC123"' in html
    assert "typed secret" not in html  # a secret is typed again, never sent back
    assert not Channel.objects.exists()


def test_a_bad_credential_is_refused_by_the_services_rule_beside_its_input(owner_client, tenant):
    bot = launched_bot(tenant=tenant)
    response = owner_client.post(
        ADD,
        {"name": "Ours", "bot": bot.pk, "kind": "api", "api__webhook_url": "http://10.0.0.1/x"},
    )
    assert list(form_of(response).errors) == ["api__webhook_url"]
    assert 'value="Ours"' in response.content.decode()


def test_no_kind_chosen_is_one_error_and_no_credential_errors(owner_client, tenant):
    bot = launched_bot(tenant=tenant)
    response = owner_client.post(ADD, {"name": "Which?", "bot": bot.pk, "kind": ""})
    assert list(form_of(response).errors) == ["kind"]


def test_another_tenants_bot_cannot_be_chosen(owner_client, tenant, other_tenant):
    theirs = launched_bot(tenant=other_tenant)
    response = owner_client.post(
        ADD,
        {
            "name": "X",
            "bot": theirs.pk,
            "kind": "telegram",
            "telegram__bot_token": "1:a",
            "telegram__secret_token": "s",
        },
    )
    assert "bot" in form_of(response).errors
    assert not Channel.objects.exists()


def test_the_change_page_never_shows_a_stored_secret(owner_client, tenant):
    channel = make_channel("whatsapp", tenant=tenant)
    html = owner_client.get(change_url(channel)).content.decode()
    for key in ("access_token", "app_secret", "verify_token"):
        assert CREDENTIALS["whatsapp"][key] not in html
    assert 'value="106540352242922"' in html  # not a secret: shown to change
    assert html.count("A value is stored") == 3
    assert "<textarea" not in html and "telegram__bot_token" not in html  # its kind only


def change(owner_client, channel, **values):
    data = {"name": channel.name, "bot": channel.bot_id, "status": channel.status}
    page_form = form_of(owner_client.get(change_url(channel)))
    for name, field in page_form.fields.items():
        if name.startswith(f"{channel.kind}__") and not name.endswith("__clear"):
            data[name] = page_form.initial.get(name) or field.initial or ""
    data.update(values)
    return owner_client.post(change_url(channel), data)


def stored(channel) -> dict:
    channel.refresh_from_db()
    return channel_credentials(channel)


def test_empty_secrets_keep_their_values_and_a_changed_one_is_replaced(owner_client, tenant):
    channel = make_channel("whatsapp", tenant=tenant)
    response = change(owner_client, channel, whatsapp__app_secret="new-app-secret")
    assert response.status_code == 302
    assert stored(channel) == {
        **CREDENTIALS["whatsapp"],
        "app_secret": "new-app-secret",
    }


def test_an_emptied_optional_value_is_removed_and_a_stored_optional_secret_can_be(
    owner_client, tenant
):
    channel = make_channel(
        "twilio", tenant=tenant, messaging_service_sid="MG1", webhook_shared_key="shared-key"
    )
    html = owner_client.get(change_url(channel)).content.decode()
    assert "Remove the stored webhook shared key" in html and "shared-key" not in html
    response = change(owner_client, channel, twilio__messaging_service_sid="")
    assert response.status_code == 302
    assert stored(channel) == {
        **CREDENTIALS["twilio"],
        "webhook_shared_key": "shared-key",
    }
    change(owner_client, channel, twilio__webhook_shared_key__clear="on")
    assert stored(channel) == CREDENTIALS["twilio"]


def test_a_refused_change_keeps_what_was_typed_and_stores_nothing(owner_client, tenant):
    channel = make_channel("telegram", tenant=tenant)
    response = change(owner_client, channel, name="Renamed", telegram__secret_token="bad token!")
    assert list(form_of(response).errors) == ["telegram__secret_token"]
    assert 'value="Renamed"' in response.content.decode()
    assert stored(channel) == CREDENTIALS["telegram"] and channel.name == "telegram channel"


def test_new_credentials_bring_a_channel_in_error_back_but_not_a_disabled_one(
    owner_client, tenant, telegram
):
    broken = make_channel("telegram", tenant=tenant)
    Channel.objects.filter(pk=broken.pk).update(status="error", last_error="401 Unauthorized")
    broken.refresh_from_db()
    change(owner_client, broken, telegram__bot_token="123:new")
    broken.refresh_from_db()
    assert (broken.status, broken.last_error) == ("active", "")
    off = make_channel("messenger", tenant=tenant)
    Channel.objects.filter(pk=off.pk).update(status="disabled")
    off.refresh_from_db()
    change(owner_client, off, messenger__app_secret="new")
    off.refresh_from_db()
    assert off.status == "disabled" and stored(off)["app_secret"] == "new"


def test_unreadable_credentials_are_typed_in_again(settings, owner_client, tenant):
    channel = make_channel("telegram", tenant=tenant)
    Channel.objects.filter(pk=channel.pk).update(credentials_encrypted="not-a-token")
    page = owner_client.get(change_url(channel))
    assert page.status_code == 200
    assert form_of(page).fields["telegram__bot_token"].required


def shown(html: str, kind: str) -> tuple[str, str]:
    """The add page's webhook URL of ``kind`` and its hidden reservation."""
    url = re.search(rf'<code id="ct-webhook-url-{kind}">([^<]+)</code>', html).group(1)
    reservation = re.search(r'name="webhook_reservation" value="([^"]+)"', html).group(1)
    return url, reservation


def telegram_form(bot, reservation: str, **changes) -> dict:
    return {
        "name": "Support on Telegram",
        "bot": bot.pk,
        "kind": "telegram",
        "webhook_reservation": reservation,
        **{f"telegram__{key}": value for key, value in CREDENTIALS["telegram"].items()},
        **changes,
    }


def test_the_webhook_url_shown_before_saving_is_the_channels_and_takes_its_webhooks(
    owner_client, tenant, telegram
):
    bot = launched_bot(tenant=tenant)
    page = owner_client.get(ADD).content.decode()
    url, reservation = shown(page, "telegram")
    assert re.fullmatch(rf"{PUBLIC}/hooks/telegram/\d+/", url)
    # Every kind's group names the same channel.
    assert shown(page, "whatsapp")[0] == url.replace("/telegram/", "/whatsapp/")

    # Shown again with an error: the same URL (it may be in the platform already).
    again = owner_client.post(ADD, telegram_form(bot, reservation, telegram__secret_token=""))
    assert list(form_of(again).errors) == ["telegram__secret_token"]
    assert shown(again.content.decode(), "telegram") == (url, reservation)
    assert not Channel.objects.exists()

    saved = owner_client.post(ADD, telegram_form(bot, reservation), follow=True)
    channel = Channel.objects.get(name="Support on Telegram")
    assert f'<code id="ct-webhook-url">{url}</code>' in saved.content.decode()
    # Registered with Telegram as it was saved: that URL, the channel's secret token.
    assert telegram.webhook["url"] == url
    assert telegram.webhook["secret_token"] == CREDENTIALS["telegram"]["secret_token"]
    assert f"Telegram sends its messages to {url} now." in saved.content.decode()

    # The platform posts to exactly the URL shown before saving: taken.
    body = text_body("telegram")
    answer = owner_client.generic(
        "POST",
        url.removeprefix(PUBLIC),
        body,
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=CREDENTIALS["telegram"]["secret_token"],
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["received"] == 1
    assert Message.objects.get(conversation__channel=channel).direction == "in"


def test_each_add_page_names_its_own_channel_and_others_never_take_it(
    owner_client, tenant, telegram
):
    bot = launched_bot(tenant=tenant)
    first_url, first = shown(owner_client.get(ADD).content.decode(), "telegram")
    second_url, _ = shown(owner_client.get(ADD).content.decode(), "telegram")
    assert first_url != second_url
    # A channel made meanwhile (the API, another page) gets another id.
    other = make_channel("whatsapp", bot=bot)
    assert str(other.pk) not in (first_url.split("/")[-2], second_url.split("/")[-2])

    owner_client.post(ADD, telegram_form(bot, first))
    channel = Channel.objects.get(name="Support on Telegram")
    assert first_url == f"{PUBLIC}/hooks/telegram/{channel.pk}/"


def test_an_altered_or_used_reservation_saves_nothing_and_shows_a_new_url(
    owner_client, tenant, telegram
):
    bot = launched_bot(tenant=tenant)
    url, reservation = shown(owner_client.get(ADD).content.decode(), "telegram")
    forged = reservation.replace(reservation.split(":")[0], str(int(url.split("/")[-2]) + 7))

    refused = owner_client.post(ADD, telegram_form(bot, forged))
    assert refused.status_code == 200
    assert "could not be confirmed" in refused.content.decode()
    assert not Channel.objects.exists()
    new_url, new_reservation = shown(refused.content.decode(), "telegram")
    assert new_url != url
    assert 'value="Support on Telegram"' in refused.content.decode()  # the rest is kept

    # The new one saves; sent twice, the second is refused and nothing is doubled.
    owner_client.post(ADD, telegram_form(bot, new_reservation))
    twice = owner_client.post(ADD, telegram_form(bot, new_reservation))
    assert "was the form sent twice?" in twice.content.decode()
    assert Channel.objects.count() == 1
    assert shown(twice.content.decode(), "telegram")[0] not in (url, new_url)


@pytest.mark.parametrize(
    ("kind", "key", "value"),
    [
        ("whatsapp", "throughput", "fast"),
        ("whatsapp", "throughput", "0"),
        ("whatsapp", "throughput", "5000"),
        ("twilio", "sender_mps", "-3"),
        ("twilio", "sender_mps", "2.5"),
    ],
)
def test_a_sending_rate_that_is_no_whole_number_of_messages_is_refused_beside_its_input(
    owner_client, tenant, kind, key, value
):
    """Stored, words fell back to the default rate and 0 to one a second, without a word."""
    bot = launched_bot(tenant=tenant)
    typed = {f"{kind}__{name}": v for name, v in CREDENTIALS[kind].items()}
    response = owner_client.post(
        ADD, {"name": "Ours", "bot": bot.pk, "kind": kind, **typed, f"{kind}__{key}": value}
    )
    errors = form_of(response).errors
    assert list(errors) == [f"{kind}__{key}"]
    assert "whole number of messages per second" in errors[f"{kind}__{key}"][0]
    assert not Channel.objects.exists()
    good = owner_client.post(
        ADD, {"name": "Ours", "bot": bot.pk, "kind": kind, **typed, f"{kind}__{key}": "100"}
    )
    assert good.status_code == 302
    assert channel_credentials(Channel.objects.get())[key] == "100"


# --- Saving a Telegram channel registers its webhook with Telegram ---------------------------


def test_a_token_telegram_does_not_know_is_refused_beside_its_input(owner_client, tenant, telegram):
    bot = launched_bot(tenant=tenant)
    _, reservation = shown(owner_client.get(ADD).content.decode(), "telegram")
    refused = owner_client.post(
        ADD, telegram_form(bot, reservation, telegram__bot_token="999:AAnotAbotTelegramKnows")
    )
    assert refused.status_code == 200
    errors = form_of(refused).errors
    assert list(errors) == ["telegram__bot_token"]
    assert "Telegram refused this token" in errors["telegram__bot_token"][0]
    assert "Unauthorized" in errors["telegram__bot_token"][0]
    assert "999:AAnotAbotTelegramKnows" not in refused.content.decode()  # a secret: not shown
    assert 'value="Support on Telegram"' in refused.content.decode()
    assert not Channel.objects.exists() and telegram.webhook is None


def test_an_address_telegram_will_not_call_is_refused_saying_what_to_do(
    settings, owner_client, tenant, telegram
):
    """No public address configured (make run): the dashboard's own, http. Telegram calls
    HTTPS addresses only."""
    settings.PUBLIC_BASE_URL = ""
    bot = launched_bot(tenant=tenant)
    _, reservation = shown(owner_client.get(ADD).content.decode(), "telegram")
    refused = owner_client.post(ADD, telegram_form(bot, reservation))
    message = " ".join(form_of(refused).non_field_errors())
    assert "Telegram refused the webhook URL http://testserver/hooks/telegram/" in message
    assert "An HTTPS URL must be provided" in message and "PUBLIC_BASE_URL" in message
    assert "Nothing was saved." in message
    assert not Channel.objects.exists()


def test_telegram_out_of_reach_saves_nothing_and_says_to_try_again(
    settings, owner_client, tenant, telegram
):
    bot = launched_bot(tenant=tenant)
    _, reservation = shown(owner_client.get(ADD).content.decode(), "telegram")
    telegram.stop()  # its port closed: the connection is refused
    refused = owner_client.post(ADD, telegram_form(bot, reservation))
    message = " ".join(form_of(refused).non_field_errors())
    assert "Telegram could not be reached to register the webhook URL" in message
    assert "Nothing was saved: try again in a moment." in message
    assert not Channel.objects.exists()


def test_a_changed_token_or_secret_registers_again_and_a_new_name_does_not(
    owner_client, tenant, telegram
):
    channel = make_channel("telegram", tenant=tenant)  # saved by the service: not registered
    assert change(owner_client, channel, name="Renamed").status_code == 302
    assert telegram.webhook is None
    assert change(owner_client, channel, telegram__secret_token="a-new_secret").status_code == 302
    assert telegram.webhook["secret_token"] == "a-new_secret"
    assert telegram.webhook["url"] == f"{PUBLIC}/hooks/telegram/{channel.pk}/"
    assert stored(channel)["secret_token"] == "a-new_secret"
    refused = change(owner_client, channel, telegram__bot_token="555:AAunknownToTelegram")
    assert list(form_of(refused).errors) == ["telegram__bot_token"]
    assert stored(channel)["bot_token"] == CREDENTIALS["telegram"]["bot_token"]  # kept


def test_a_telegram_address_the_outbound_guard_refuses_is_no_refusal_of_telegrams(
    settings, owner_client, tenant, telegram
):
    """The API's address refused by our own guard (not allowed here) is said as Telegram out
    of reach, not as Telegram refusing the webhook URL."""
    settings.OUTBOUND_ALLOWED_HOSTS = []  # the fake's loopback address not allowed any more
    bot = launched_bot(tenant=tenant)
    _, reservation = shown(owner_client.get(ADD).content.decode(), "telegram")
    refused = owner_client.post(ADD, telegram_form(bot, reservation))
    message = " ".join(form_of(refused).non_field_errors())
    assert "Telegram could not be reached to register the webhook URL" in message, message
    assert "refused the webhook URL" not in message
    assert not Channel.objects.exists() and telegram.requests == []
