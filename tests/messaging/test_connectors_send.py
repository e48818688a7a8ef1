"""Connectors: sending against local fakes of the platforms' send APIs: native quick replies,
error mapping (429 with retry hints, 5xx, time-outs, permanent errors) and rate limits."""

from __future__ import annotations

import pytest

from messaging.connectors import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    get_connector,
    resolve_numbered_reply,
)
from messaging.connectors.base import Connector
from tests.fakes import DROP, HANG, Answer, FakeWhatsApp
from tests.fakes.fixtures import *  # noqa: F403 - the fake platforms' fixtures

TIMEOUT = 5.0


def replies(*titles: str) -> list[dict]:
    return [{"title": t, "payload": f"P_{i}"} for i, t in enumerate(titles, 1)]


def send(kind, credentials, session, message, recipient="16505551234", **kwargs):
    return get_connector(kind).send(
        credentials=credentials,
        recipient_id=recipient,
        message=message,
        session=session,
        timeout=kwargs.pop("timeout", TIMEOUT),
        **kwargs,
    )


def fails(error_type, *args, **kwargs):
    with pytest.raises(error_type) as caught:
        send(*args, **kwargs)
    return caught.value


# --- WhatsApp ------------------------------------------------------------------------------


@pytest.fixture
def wa(fake_whatsapp):
    return {
        "access_token": fake_whatsapp.access_token,
        "app_secret": "s",
        "verify_token": "v",
        "phone_number_id": "106540352242922",
    }


class TestWhatsAppSend:
    def test_a_text_message(self, fake_whatsapp, wa, http_session):
        result = send("whatsapp", wa, http_session, OutboundMessage(text="Hello"))
        [request] = fake_whatsapp.requests
        assert request.path == "/v25.0/106540352242922/messages"
        assert request.headers["Authorization"] == f"Bearer {fake_whatsapp.access_token}"
        assert request.json["type"] == "text"
        assert request.json["text"]["body"] == "Hello"
        assert result.external_id.startswith("wamid.FAKE")
        assert result.status_code == 200
        assert result.response["messages"][0]["id"] == result.external_id

    def test_up_to_three_short_quick_replies_are_reply_buttons(
        self, fake_whatsapp, wa, http_session
    ):
        send("whatsapp", wa, http_session, OutboundMessage("Size?", replies("S", "M", "L")))
        interactive = fake_whatsapp.requests[0].json["interactive"]
        assert interactive["type"] == "button"
        assert interactive["body"]["text"] == "Size?"
        assert interactive["action"]["buttons"] == [
            {"type": "reply", "reply": {"id": "P_1", "title": "S"}},
            {"type": "reply", "reply": {"id": "P_2", "title": "M"}},
            {"type": "reply", "reply": {"id": "P_3", "title": "L"}},
        ]

    def test_more_options_or_longer_titles_are_a_list(self, fake_whatsapp, wa, http_session):
        titles = ("Track my order", "Returns and refunds for my order", "Talk to a human")
        send("whatsapp", wa, http_session, OutboundMessage("How can we help?", replies(*titles)))
        interactive = fake_whatsapp.requests[0].json["interactive"]
        assert interactive["type"] == "list"
        rows = interactive["action"]["sections"][0]["rows"]
        assert [r["id"] for r in rows] == ["P_1", "P_2", "P_3"]
        assert rows[1]["title"] == "Returns and refunds for…" and len(rows[1]["title"]) == 24
        assert rows[1]["description"] == "Returns and refunds for my order"
        assert len(fake_whatsapp.sent.all()) == 1  # the fake's contract check accepted it

    def test_ten_options_fit_a_list(self, fake_whatsapp, wa, http_session):
        send("whatsapp", wa, http_session, OutboundMessage("Pick", replies(*"ABCDEFGHIJ")))
        rows = fake_whatsapp.requests[0].json["interactive"]["action"]["sections"][0]["rows"]
        assert len(rows) == 10

    def test_more_than_ten_options_become_numbered_text(self, fake_whatsapp, wa, http_session):
        send("whatsapp", wa, http_session, OutboundMessage("Pick", replies(*"ABCDEFGHIJK")))
        body = fake_whatsapp.requests[0].json
        assert body["type"] == "text"
        assert body["text"]["body"].startswith("Pick\n\n1. A\n2. B\n")
        assert body["text"]["body"].endswith("11. K")

    def test_an_image_with_buttons_uses_an_image_header(self, fake_whatsapp, wa, http_session):
        media = {"url": "https://cdn.example/shoe.jpg", "kind": "image"}
        send("whatsapp", wa, http_session, OutboundMessage("Like it?", replies("Yes", "No"), media))
        interactive = fake_whatsapp.requests[0].json["interactive"]
        assert interactive["header"] == {
            "type": "image",
            "image": {"link": "https://cdn.example/shoe.jpg"},
        }

    def test_media_with_a_caption(self, fake_whatsapp, wa, http_session):
        media = {"url": "https://cdn.example/invoice.pdf", "kind": "file"}
        send("whatsapp", wa, http_session, OutboundMessage("Your invoice", media=media))
        body = fake_whatsapp.requests[0].json
        assert body["type"] == "document"
        assert body["document"] == {
            "link": "https://cdn.example/invoice.pdf",
            "caption": "Your invoice",
        }

    def test_audio_cannot_carry_text(self, fake_whatsapp, wa, http_session):
        media = {"url": "https://cdn.example/a.ogg", "kind": "audio"}
        error = fails(
            PermanentSendError, "whatsapp", wa, http_session, OutboundMessage("hi", media=media)
        )
        assert error.platform_code == "unsupported_message"
        assert fake_whatsapp.requests == []

    def test_throughput_limit_is_retryable_with_a_hint(self, fake_whatsapp, wa, http_session):
        fake_whatsapp.script(fake_whatsapp.rate_limited())
        error = fails(RetryableSendError, "whatsapp", wa, http_session, OutboundMessage("x"))
        assert (error.status_code, error.platform_code, error.retry_after) == (400, "130429", 1.0)
        assert "Rate limit hit" in error.reason

    def test_pair_rate_limit_is_retryable_after_six_seconds(self, fake_whatsapp, wa, http_session):
        fake_whatsapp.script(fake_whatsapp.pair_rate_limited())
        error = fails(RetryableSendError, "whatsapp", wa, http_session, OutboundMessage("x"))
        assert (error.platform_code, error.retry_after) == ("131056", 6.0)

    def test_retry_after_header_wins(self, fake_whatsapp, wa, http_session):
        fake_whatsapp.script(fake_whatsapp.too_many_calls(retry_after=7))
        error = fails(RetryableSendError, "whatsapp", wa, http_session, OutboundMessage("x"))
        assert (error.status_code, error.platform_code, error.retry_after) == (429, "4", 7.0)

    def test_a_server_error_is_retryable_and_may_have_been_sent(
        self, fake_whatsapp, wa, http_session
    ):
        fake_whatsapp.script(fake_whatsapp.server_error(503))
        error = fails(RetryableSendError, "whatsapp", wa, http_session, OutboundMessage("x"))
        assert (error.status_code, error.maybe_sent) == (503, True)

    def test_an_html_gateway_error_is_retryable(self, fake_whatsapp, wa, http_session):
        fake_whatsapp.script(Answer(502, "<html>Bad Gateway</html>"))
        error = fails(RetryableSendError, "whatsapp", wa, http_session, OutboundMessage("x"))
        assert error.status_code == 502
        assert error.response == {"raw": "<html>Bad Gateway</html>"}

    def test_a_time_out_is_retryable(self, fake_whatsapp, wa, http_session):
        fake_whatsapp.script(HANG)
        error = fails(
            RetryableSendError, "whatsapp", wa, http_session, OutboundMessage("x"), timeout=0.3
        )
        assert error.status_code is None and error.maybe_sent is True
        fake_whatsapp.release()

    def test_a_dropped_connection_is_retryable(self, fake_whatsapp, wa, http_session):
        fake_whatsapp.script(DROP)
        error = fails(RetryableSendError, "whatsapp", wa, http_session, OutboundMessage("x"))
        assert error.status_code is None

    def test_a_refused_connection_is_retryable_and_was_never_sent(self, wa, http_session, settings):
        with FakeWhatsApp() as fake:
            settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        error = fails(RetryableSendError, "whatsapp", wa, http_session, OutboundMessage("x"))
        assert error.maybe_sent is False

    def test_an_expired_token_is_permanent(self, fake_whatsapp, wa, http_session):
        error = fails(
            PermanentSendError,
            "whatsapp",
            {**wa, "access_token": "revoked"},
            http_session,
            OutboundMessage("x"),
        )
        assert (error.status_code, error.platform_code) == (401, "190")
        assert "Invalid OAuth access token" in error.reason

    def test_an_undeliverable_recipient_is_permanent(self, fake_whatsapp, wa, http_session):
        fake_whatsapp.unknown_recipients.add("16505550000")
        error = fails(
            PermanentSendError,
            "whatsapp",
            wa,
            http_session,
            OutboundMessage("x"),
            recipient="16505550000",
        )
        assert (error.status_code, error.platform_code) == (400, "131026")

    def test_429_then_500_then_success_delivers_once(self, fake_whatsapp, wa, http_session):
        fake_whatsapp.script(fake_whatsapp.rate_limited(retry_after=2), Answer(500, {}))
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(send("whatsapp", wa, http_session, OutboundMessage("once")))
            except RetryableSendError as exc:
                outcomes.append(exc.retry_after)
        assert outcomes[:2] == [2.0, None]
        assert outcomes[2].external_id
        assert len(fake_whatsapp.sent.all()) == 1

    def test_missing_credentials_are_permanent(self, fake_whatsapp, http_session):
        error = fails(PermanentSendError, "whatsapp", {}, http_session, OutboundMessage("x"))
        assert error.platform_code == "missing_credentials"
        assert fake_whatsapp.requests == []

    def test_rate_limits(self, wa):
        connector = get_connector("whatsapp")
        assert connector.rate_limits(wa, "16505551234") == [
            ("whatsapp:number:106540352242922", 80, 1.0),
            ("whatsapp:pair:106540352242922:16505551234", 10, 60.0),
        ]
        upgraded = connector.rate_limits({**wa, "throughput": "1000"}, "1")
        assert upgraded[0] == ("whatsapp:number:106540352242922", 1000, 1.0)


# --- Messenger -----------------------------------------------------------------------------


@pytest.fixture
def fb(fake_messenger):
    return {
        "page_access_token": fake_messenger.page_access_token,
        "app_secret": "s",
        "verify_token": "v",
        "page_id": "682498302938465",
    }


class TestMessengerSend:
    def test_text_with_native_quick_replies(self, fake_messenger, fb, http_session):
        result = send(
            "messenger", fb, http_session, OutboundMessage("Pick a color:", replies("Red", "Green"))
        )
        [request] = fake_messenger.requests
        assert request.path == "/v25.0/me/messages"
        assert request.headers["Authorization"] == f"Bearer {fake_messenger.page_access_token}"
        assert request.json == {
            "recipient": {"id": "16505551234"},
            "messaging_type": "RESPONSE",
            "message": {
                "text": "Pick a color:",
                "quick_replies": [
                    {"content_type": "text", "title": "Red", "payload": "P_1"},
                    {"content_type": "text", "title": "Green", "payload": "P_2"},
                ],
            },
        }
        assert result.external_id.startswith("m_FAKE")

    def test_long_titles_are_cut_to_twenty_characters(self, fake_messenger, fb, http_session):
        send("messenger", fb, http_session, OutboundMessage("?", replies("x" * 30)))
        [reply] = fake_messenger.requests[0].json["message"]["quick_replies"]
        assert len(reply["title"]) == 20

    def test_more_than_thirteen_options_become_numbered_text(
        self, fake_messenger, fb, http_session
    ):
        send("messenger", fb, http_session, OutboundMessage("Pick", replies(*"ABCDEFGHIJKLMN")))
        message = fake_messenger.requests[0].json["message"]
        assert "quick_replies" not in message
        assert message["text"].endswith("14. N")

    def test_media_and_text_are_two_messages(self, fake_messenger, fb, http_session):
        media = {"url": "https://cdn.example/a.png", "kind": "image"}
        result = send(
            "messenger", fb, http_session, OutboundMessage("Nice?", replies("Yes"), media)
        )
        first, second = (r.json["message"] for r in fake_messenger.requests)
        assert first == {
            "attachment": {
                "type": "image",
                "payload": {"url": "https://cdn.example/a.png", "is_reusable": True},
            }
        }
        assert second["text"] == "Nice?" and second["quick_replies"][0]["payload"] == "P_1"
        assert result.response["message_ids"][1] == result.external_id

    def test_a_failed_second_part_names_what_was_sent(self, fake_messenger, fb, http_session):
        fake_messenger.script(None, fake_messenger.temporary_failure())
        media = {"url": "https://cdn.example/a.png", "kind": "image"}
        error = fails(
            RetryableSendError, "messenger", fb, http_session, OutboundMessage("t", media=media)
        )
        assert error.platform_code == "1200"
        assert len(error.response["sent_message_ids"]) == 1

    def test_rate_limit_is_retryable(self, fake_messenger, fb, http_session):
        fake_messenger.script(fake_messenger.rate_limited())
        error = fails(RetryableSendError, "messenger", fb, http_session, OutboundMessage("x"))
        assert (error.status_code, error.platform_code, error.retry_after) == (400, "613", 60.0)

    def test_temporary_failure_is_retryable(self, fake_messenger, fb, http_session):
        fake_messenger.script(fake_messenger.temporary_failure())
        error = fails(RetryableSendError, "messenger", fb, http_session, OutboundMessage("x"))
        assert (error.status_code, error.platform_code) == (500, "1200")

    @pytest.mark.parametrize(
        ("answer", "code"),
        [("user_unavailable", "551/1545041"), ("outside_window", "10/2018278")],
    )
    def test_permanent_errors(self, fake_messenger, fb, http_session, answer, code):
        fake_messenger.script(getattr(fake_messenger, answer)())
        error = fails(PermanentSendError, "messenger", fb, http_session, OutboundMessage("x"))
        assert error.platform_code == code

    def test_rate_limits(self, fb):
        connector = get_connector("messenger")
        assert connector.rate_limits(fb, "1") == [("messenger:page:682498302938465", 300, 1.0)]
        video = OutboundMessage(media={"url": "https://x/v.mp4", "kind": "video"})
        assert connector.rate_limits(fb, "1", video)[1] == (
            "messenger:page:682498302938465:audio-video",
            10,
            1.0,
        )
        anonymous = connector.rate_limits({"page_access_token": "tok"}, "1")[0][0]
        assert "tok" not in anonymous


# --- Telegram ------------------------------------------------------------------------------


@pytest.fixture
def tg(fake_telegram):
    return {"bot_token": fake_telegram.bot_token, "secret_token": "s3cr3t"}


class TestTelegramSend:
    def test_text_with_an_inline_keyboard(self, fake_telegram, tg, http_session):
        result = send(
            "telegram", tg, http_session, OutboundMessage("Size?", replies("S", "M")), "111"
        )
        [request] = fake_telegram.requests
        assert request.path == f"/bot{fake_telegram.bot_token}/sendMessage"
        assert request.json == {
            "chat_id": "111",
            "text": "Size?",
            "reply_markup": {
                "inline_keyboard": [
                    [{"text": "S", "callback_data": "P_1"}],
                    [{"text": "M", "callback_data": "P_2"}],
                ]
            },
        }
        assert result.external_id == "1"
        assert result.response["ok"] is True

    def test_payloads_too_long_for_callback_data_use_a_reply_keyboard(
        self, fake_telegram, tg, http_session
    ):
        long = [{"title": "Yes", "payload": "x" * 65}]
        send("telegram", tg, http_session, OutboundMessage("Sure?", long), "111")
        markup = fake_telegram.requests[0].json["reply_markup"]
        assert markup["keyboard"] == [[{"text": "Yes"}]]
        assert markup["one_time_keyboard"] is True

    def test_a_photo_with_caption(self, fake_telegram, tg, http_session):
        media = {"url": "https://cdn.example/p.jpg", "kind": "image"}
        send("telegram", tg, http_session, OutboundMessage("look", media=media), "111")
        request = fake_telegram.requests[0]
        assert request.path.endswith("/sendPhoto")
        assert (request.json["photo"], request.json["caption"]) == (
            "https://cdn.example/p.jpg",
            "look",
        )

    def test_flood_control_is_retryable_with_retry_after(self, fake_telegram, tg, http_session):
        fake_telegram.script(fake_telegram.flood(retry_after=3))
        error = fails(RetryableSendError, "telegram", tg, http_session, OutboundMessage("x"), "1")
        assert (error.status_code, error.retry_after, error.platform_code) == (429, 3.0, "429")
        assert "retry after 3" in error.reason

    def test_a_bad_gateway_is_retryable(self, fake_telegram, tg, http_session):
        fake_telegram.script(fake_telegram.server_error())
        error = fails(RetryableSendError, "telegram", tg, http_session, OutboundMessage("x"), "1")
        assert error.status_code == 502

    def test_a_blocked_bot_is_permanent(self, fake_telegram, tg, http_session):
        fake_telegram.blocked_chats.add("111")
        error = fails(PermanentSendError, "telegram", tg, http_session, OutboundMessage("x"), "111")
        assert (error.status_code, error.platform_code) == (403, "403")
        assert "bot was blocked by the user" in error.reason

    def test_a_wrong_token_is_permanent(self, fake_telegram, http_session):
        creds = {"bot_token": "1:wrong", "secret_token": "s"}
        error = fails(
            PermanentSendError, "telegram", creds, http_session, OutboundMessage("x"), "1"
        )
        assert error.status_code == 401

    def test_an_empty_message_is_not_sent(self, fake_telegram, tg, http_session):
        fails(PermanentSendError, "telegram", tg, http_session, OutboundMessage(""), "1")
        assert fake_telegram.requests == []

    def test_set_webhook_registers_the_secret_token(self, fake_telegram, tg, http_session):
        get_connector("telegram").set_webhook(
            credentials=tg,
            url="https://chat.example.com/hooks/telegram/3/",
            session=http_session,
            timeout=TIMEOUT,
        )
        assert fake_telegram.webhook["url"] == "https://chat.example.com/hooks/telegram/3/"
        assert fake_telegram.webhook["secret_token"] == "s3cr3t"
        assert "callback_query" in fake_telegram.webhook["allowed_updates"]

    def test_set_webhook_refuses_a_secret_telegram_would_refuse(self, tg, http_session):
        with pytest.raises(PermanentSendError):
            get_connector("telegram").set_webhook(
                credentials={**tg, "secret_token": "has spaces"},
                url="https://x/",
                session=http_session,
                timeout=TIMEOUT,
            )

    def test_answer_callback_query(self, fake_telegram, tg, http_session):
        get_connector("telegram").answer_callback_query(
            credentials=tg, callback_query_id="4382bfdwdsb323b2d9", session=http_session, timeout=1
        )
        assert fake_telegram.requests[0].json == {"callback_query_id": "4382bfdwdsb323b2d9"}

    def test_rate_limits(self, tg):
        connector = get_connector("telegram")
        assert connector.rate_limits(tg, "111") == [
            ("telegram:chat:123456789:111", 1, 1.0),
            ("telegram:bot:123456789", 30, 1.0),
        ]
        assert connector.rate_limits(tg, "-1001234567890")[2] == (
            "telegram:group:123456789:-1001234567890",
            20,
            60.0,
        )
        # the bucket names the bot by its public id, never by the secret half of the token
        assert all("AAFake" not in key for key, _, _ in connector.rate_limits(tg, "1"))


# --- Twilio --------------------------------------------------------------------------------


@pytest.fixture
def tw(fake_twilio):
    return {
        "account_sid": fake_twilio.account_sid,
        "auth_token": fake_twilio.auth_token,
        "from_number": "+14155550100",
    }


class TestTwilioSend:
    def test_sms_with_numbered_options_and_a_status_callback(self, fake_twilio, tw, http_session):
        result = send(
            "twilio",
            tw,
            http_session,
            OutboundMessage("Open on Sunday?", replies("Yes", "No")),
            "+14155550123",
            callback_url="https://chat.example.com/hooks/twilio/7/",
        )
        [request] = fake_twilio.requests
        assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
        assert request.form == {
            "To": "+14155550123",
            "From": "+14155550100",
            "Body": "Open on Sunday?\n\n1. Yes\n2. No",
            "StatusCallback": "https://chat.example.com/hooks/twilio/7/",
        }
        assert result.status_code == 201
        assert result.external_id.startswith("SM")

    def test_a_numbered_answer_resolves_to_the_payload(self):
        offered = replies("Yes", "No")
        assert resolve_numbered_reply("2", offered) == offered[1]
        assert resolve_numbered_reply(" 1. ", offered) == offered[0]
        assert resolve_numbered_reply("no", offered) == offered[1]
        assert resolve_numbered_reply("3", offered) is None
        assert resolve_numbered_reply("maybe", offered) is None

    def test_whatsapp_through_twilio_and_media(self, fake_twilio, tw, http_session):
        creds = {**tw, "from_number": "whatsapp:+14155238886"}
        media = {"url": "https://cdn.example/a.jpg", "kind": "image"}
        send("twilio", creds, http_session, OutboundMessage("pic", media=media), "+16505551234")
        form = fake_twilio.requests[0].form
        assert (form["To"], form["From"], form["MediaUrl"]) == (
            "whatsapp:+16505551234",
            "whatsapp:+14155238886",
            "https://cdn.example/a.jpg",
        )

    def test_a_messaging_service_replaces_the_from_number(self, fake_twilio, tw, http_session):
        creds = {**tw, "from_number": "", "messaging_service_sid": "MG" + "1" * 32}
        result = send("twilio", creds, http_session, OutboundMessage("x"), "+14155550123")
        assert fake_twilio.requests[0].form["MessagingServiceSid"] == "MG" + "1" * 32
        assert "From" not in fake_twilio.requests[0].form
        assert result.response["status"] == "accepted"

    def test_too_many_requests_is_retryable(self, fake_twilio, tw, http_session):
        fake_twilio.script(fake_twilio.too_many_requests(retry_after=5))
        error = fails(RetryableSendError, "twilio", tw, http_session, OutboundMessage("x"), "+1")
        assert (error.status_code, error.platform_code, error.retry_after) == (429, "20429", 5.0)

    def test_a_server_error_is_retryable(self, fake_twilio, tw, http_session):
        fake_twilio.script(fake_twilio.server_error())
        error = fails(RetryableSendError, "twilio", tw, http_session, OutboundMessage("x"), "+1")
        assert (error.status_code, error.platform_code) == (500, "20500")

    def test_an_invalid_number_is_permanent(self, fake_twilio, tw, http_session):
        fake_twilio.script(fake_twilio.invalid_to())
        error = fails(PermanentSendError, "twilio", tw, http_session, OutboundMessage("x"), "+1")
        assert (error.status_code, error.platform_code) == (400, "21211")
        assert "Invalid 'To' Phone Number" in error.reason

    def test_a_wrong_auth_token_is_permanent(self, fake_twilio, tw, http_session):
        creds = {**tw, "auth_token": "wrong"}
        error = fails(PermanentSendError, "twilio", creds, http_session, OutboundMessage("x"), "+1")
        assert (error.status_code, error.platform_code) == (401, "20003")

    def test_the_body_is_cut_to_1600_characters(self, fake_twilio, tw, http_session):
        send("twilio", tw, http_session, OutboundMessage("x" * 2000), "+1")
        assert len(fake_twilio.requests[0].form["Body"]) == 1600
        assert len(fake_twilio.sent.all()) == 1

    def test_rate_limits(self, tw):
        connector = get_connector("twilio")
        assert connector.rate_limits(tw, "+1") == [("twilio:sender:+14155550100", 1, 1.0)]
        whatsapp = {**tw, "from_number": "whatsapp:+14155238886"}
        assert connector.rate_limits(whatsapp, "+1")[0][1] == 80
        assert connector.rate_limits({**tw, "sender_mps": 3}, "+1")[0][1] == 3


# --- Every connector -----------------------------------------------------------------------


def test_the_registry_knows_every_kind():
    kinds = {"whatsapp", "messenger", "telegram", "twilio", "api"}
    for kind in kinds:
        connector = get_connector(kind)
        assert isinstance(connector, Connector) and connector.kind == kind
        assert connector.required_credentials
    with pytest.raises(LookupError):
        get_connector("fax")


def test_missing_credentials_are_listed():
    connector = get_connector("telegram")
    assert connector.missing_credentials({"bot_token": "1:a"}) == ["secret_token"]
