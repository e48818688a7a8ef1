"""Connectors: recorded payloads in each platform's documented format parse to the right
events, every message and status of a batch included, unknown types kept as unsupported."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from messaging.connectors import MalformedPayload, WebhookRequest, get_connector
from tests.conversations.payloads import load, raw

URL = "https://chat.example.com/hooks/x/1/"


def parse(kind: str, body: bytes, **extra):
    return get_connector(kind).parse(WebhookRequest("POST", URL, {}, body, **extra))


def refused(kind: str, body: bytes) -> None:
    """The body is refused: as a whole (MalformedPayload, a 400), or every event of it one by
    one (nothing to take: the door answers 400 too)."""
    try:
        parsed = parse(kind, body)
    except MalformedPayload:
        return
    assert parsed.messages == [] and parsed.statuses == [], parsed
    assert parsed.refused, "a refused event is reported"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


# --- WhatsApp ------------------------------------------------------------------------------


class TestWhatsAppParse:
    def test_a_text_message(self):
        parsed = parse("whatsapp", raw("whatsapp/text.json"))
        [message] = parsed.messages
        assert message.external_id.startswith("wamid.HBgL")
        assert (message.sender_id, message.sender_name) == ("16505551234", "Sheena Nelson")
        assert (message.kind, message.text, message.payload) == (
            "text",
            "Does it come in another color?",
            None,
        )
        assert message.timestamp == at(1749416383)
        assert parsed.statuses == []

    def test_every_message_and_status_of_a_batch(self):
        parsed = parse("whatsapp", raw("whatsapp/batch.json"))
        assert [m.external_id for m in parsed.messages] == [
            "wamid.BATCH-TEXT-1",
            "wamid.BATCH-BUTTON-2",
            "wamid.BATCH-LIST-3",
            "wamid.BATCH-IMAGE-4",
            "wamid.BATCH-LOCATION-5",
            "wamid.BATCH-CONTACTS-6",
            "wamid.BATCH-REACTION-7",
            "wamid.BATCH-UNSUPPORTED-8",
        ]
        assert [(s.external_id, s.status) for s in parsed.statuses] == [
            ("wamid.OUTBOUND-1", "sent"),
            ("wamid.OUTBOUND-1", "delivered"),
            ("wamid.OUTBOUND-1", "read"),
            ("wamid.OUTBOUND-2", "failed"),
        ]

    def test_names_come_from_the_contacts_of_the_same_change(self):
        messages = parse("whatsapp", raw("whatsapp/batch.json")).messages
        assert [m.sender_name for m in messages[:3]] == [
            "Sheena Nelson",
            "Pablo Morales",
            "Pablo Morales",
        ]
        assert messages[3].sender_name == "Kim Lee"

    def test_button_and_list_replies(self):
        messages = parse("whatsapp", raw("whatsapp/batch.json")).messages
        button, row = messages[1], messages[2]
        assert (button.kind, button.text, button.payload) == ("button", "Change", "change-button")
        assert button.data["reply_to"] == "wamid.OUTBOUND-BUTTONS"
        assert (row.kind, row.text, row.payload) == (
            "button",
            "Priority Mail Express",
            "priority_express",
        )
        assert row.data["description"] == "Next Day to 2 Days"

    def test_a_template_quick_reply_button(self):
        [message] = parse("whatsapp", raw("whatsapp/template_button.json")).messages
        assert (message.kind, message.text, message.payload) == (
            "button",
            "Stop promotions",
            "STOP_PROMOTIONS",
        )

    def test_media_keeps_metadata_only(self):
        messages = parse("whatsapp", raw("whatsapp/batch.json")).messages
        image = messages[3]
        assert (image.kind, image.text) == ("media", "This is a caption")
        assert image.data == {
            "media_type": "image",
            "id": "2754859441498128",
            "mime_type": "image/jpeg",
            "sha256": "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3",
            "caption": "This is a caption",
        }
        kinds = [
            (m.kind, m.data["media_type"], m.data["id"])
            for m in parse("whatsapp", raw("whatsapp/media.json")).messages
        ]
        assert kinds == [
            ("media", "document", "9876543210"),
            ("media", "audio", "1122334455"),
            ("media", "sticker", "5566778899"),
            ("media", "video", "6677889900"),
        ]

    def test_location_and_contacts(self):
        messages = parse("whatsapp", raw("whatsapp/batch.json")).messages
        location, contacts = messages[4], messages[5]
        assert location.kind == "location"
        assert location.data["latitude"] == pytest.approx(37.44216251868683)
        assert location.data["name"] == "Philz Coffee"
        assert contacts.kind == "contacts"
        assert contacts.data["contacts"][0]["phones"][0]["wa_id"] == "19405551234"

    def test_unknown_types_are_unsupported_never_dropped(self):
        messages = parse("whatsapp", raw("whatsapp/batch.json")).messages
        reaction, unsupported = messages[6], messages[7]
        assert (reaction.kind, reaction.data["type"]) == ("unsupported", "reaction")
        assert reaction.data["raw"]["reaction"]["emoji"] == "\U0001f44d"
        assert (unsupported.kind, unsupported.data["type"]) == ("unsupported", "unsupported")
        assert unsupported.data["errors"][0]["code"] == 131051

    def test_statuses_carry_time_recipient_and_error(self):
        statuses = parse("whatsapp", raw("whatsapp/batch.json")).statuses
        assert statuses[0].timestamp == at(1749416400)
        assert statuses[0].recipient_id == "16505551234"
        assert statuses[0].error is None
        failed = statuses[3]
        assert failed.error.startswith("131047: Re-engagement message (Message failed")

    def test_other_fields_are_not_conversations(self):
        payload = load("whatsapp/batch.json")
        payload["entry"] = [{"id": "1", "changes": payload["entry"][1]["changes"][2:]}]
        parsed = parse("whatsapp", json.dumps(payload).encode())
        assert parsed.messages == [] and parsed.statuses == []

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[]",
            b'{"object": "page", "entry": []}',
            b'{"object": "whatsapp_business_account"}',
            b'{"object": "whatsapp_business_account", "entry": [{"changes": {}}]}',
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":'
            b' "messages", "value": {"messages": [{"type": "text"}]}}]}]}',
        ],
    )
    def test_malformed_bodies(self, body):
        refused("whatsapp", body)


# --- Messenger -----------------------------------------------------------------------------


class TestMessengerParse:
    def test_a_text_message(self):
        [message] = parse("messenger", raw("messenger/text.json")).messages
        assert (message.external_id, message.sender_id, message.kind, message.text) == (
            "m_1457764197618:41d102a3e1ae206a38",
            "1254477777772919",
            "text",
            "hello, world!",
        )
        assert message.timestamp == at(1458692752.478)

    def test_every_event_of_a_batch_without_echoes(self):
        parsed = parse("messenger", raw("messenger/batch.json"))
        assert [(m.external_id, m.kind) for m in parsed.messages] == [
            ("m_QUICKREPLY1", "button"),
            ("m_POSTBACK2", "button"),
            ("m_ATTACHMENTS3", "media"),
            ("m_LOCATION4", "location"),
            ("m_FALLBACK5", "unsupported"),
            ("reaction:2254477777772920:m_OUTBOUND1:1518479196200", "unsupported"),
            ("m_VIDEO6", "media"),
        ]
        assert [(s.external_id, s.status) for s in parsed.statuses] == [
            ("m_OUTBOUND1", "delivered"),
            ("m_OUTBOUND2", "delivered"),
            ("", "read"),
        ]

    def test_quick_replies_and_postbacks(self):
        messages = parse("messenger", raw("messenger/batch.json")).messages
        quick, postback = messages[0], messages[1]
        assert (quick.text, quick.payload) == ("Red", "PICK_RED")
        assert (postback.text, postback.payload) == ("Get Started", "GET_STARTED")
        assert postback.data["referral"]["ref"] == "summer-ad"

    def test_attachments_and_location(self):
        messages = parse("messenger", raw("messenger/batch.json")).messages
        images = messages[2]
        assert images.data["media_type"] == "image"
        assert images.data["url"] == "https://scontent.example/photo1.jpg"
        assert len(images.data["attachments"]) == 2
        location = messages[3]
        assert (location.data["latitude"], location.data["longitude"]) == (52.52, 13.405)
        assert messages[4].data["type"] == "fallback"
        assert messages[4].text == "look at this https://example.com"

    def test_a_read_receipt_is_a_watermark(self):
        read = parse("messenger", raw("messenger/batch.json")).statuses[2]
        assert read.recipient_id == "1254477777772919"
        assert read.up_to == at(1518479196.25)

    def test_a_postback_without_mid_gets_a_stable_id(self):
        payload = load("messenger/batch.json")
        del payload["entry"][0]["messaging"][1]["postback"]["mid"]
        body = json.dumps(payload).encode()
        first = parse("messenger", body).messages[1].external_id
        assert first == parse("messenger", body).messages[1].external_id
        assert first == "postback:1254477777772919:1518479195400"

    @pytest.mark.parametrize(
        "body",
        [
            b"{",
            b'{"object": "whatsapp_business_account", "entry": []}',
            b'{"object": "page", "entry": [{"messaging": [{"message": {"text": "x"}}]}]}',
        ],
    )
    def test_malformed_bodies(self, body):
        refused("messenger", body)


# --- Telegram ------------------------------------------------------------------------------


class TestTelegramParse:
    def test_a_text_message_uses_the_update_id(self):
        [message] = parse("telegram", raw("telegram/text.json")).messages
        assert message.external_id == "730000001"
        assert (message.sender_id, message.sender_name) == ("111111111", "Ada Lovelace")
        assert (message.kind, message.text) == ("text", "/start")
        assert message.data["message_id"] == 41
        assert message.timestamp == at(1749416383)

    def test_the_largest_photo_with_its_caption(self):
        [message] = parse("telegram", raw("telegram/photo.json")).messages
        assert (message.kind, message.text) == ("media", "my receipt")
        assert message.data["media_type"] == "photo"
        assert message.data["file_id"] == "AgACAgQAAxkBAAMs-large"
        assert message.data["width"] == 1280

    @pytest.mark.parametrize(
        ("name", "media_type", "text"),
        [("voice", "voice", ""), ("document", "document", "invoice")],
    )
    def test_other_media(self, name, media_type, text):
        [message] = parse("telegram", raw(f"telegram/{name}.json")).messages
        assert (message.kind, message.data["media_type"], message.text) == (
            "media",
            media_type,
            text,
        )
        assert message.data["file_id"]

    def test_an_inline_button_tap(self):
        [message] = parse("telegram", raw("telegram/callback_query.json")).messages
        assert (message.kind, message.text, message.payload) == ("button", "Medium", "size_m")
        assert message.sender_id == "111111111"
        assert message.data["callback_query_id"] == "4382bfdwdsb323b2d9"
        assert message.timestamp.tzinfo is not None

    def test_location_venue_and_contact(self):
        [location] = parse("telegram", raw("telegram/location.json")).messages
        assert (location.kind, location.data["latitude"], location.data["accuracy"]) == (
            "location",
            48.858093,
            12.5,
        )
        [venue] = parse("telegram", raw("telegram/venue.json")).messages
        assert (venue.kind, venue.data["name"]) == ("location", "Eiffel Tower")
        [contact] = parse("telegram", raw("telegram/contact.json")).messages
        assert contact.kind == "contacts"
        assert contact.data["contacts"][0]["phone_number"] == "+33612345678"

    def test_unknown_content_is_unsupported(self):
        [dice] = parse("telegram", raw("telegram/dice.json")).messages
        assert (dice.kind, dice.data["type"]) == ("unsupported", "dice")

    def test_an_edit_is_kept_but_not_a_new_text(self):
        [edit] = parse("telegram", raw("telegram/edited_message.json")).messages
        assert (edit.kind, edit.data["type"], edit.data["text"]) == (
            "unsupported",
            "edited_message",
            "/start now",
        )

    def test_a_group_message_replies_to_the_group(self):
        [message] = parse("telegram", raw("telegram/group_text.json")).messages
        assert message.sender_id == "-1001234567890"
        assert message.sender_name == "Ada Lovelace"

    def test_membership_changes_are_unsupported_messages_of_the_chat(self):
        [blocked] = parse("telegram", raw("telegram/my_chat_member.json")).messages
        assert (blocked.kind, blocked.data["type"], blocked.sender_id) == (
            "unsupported",
            "my_chat_member",
            "111111111",
        )

    def test_updates_without_a_person_have_no_conversation(self):
        parsed = parse("telegram", raw("telegram/poll.json"))
        assert parsed.messages == [] and parsed.statuses == []

    @pytest.mark.parametrize(
        "body", [b"x", b"{}", b'{"update_id": "1"}', b'{"update_id": 1, "message": {"text": "a"}}']
    )
    def test_malformed_bodies(self, body):
        refused("telegram", body)


# --- Twilio --------------------------------------------------------------------------------


class TestTwilioParse:
    def test_an_sms(self):
        [message] = parse("twilio", raw("twilio/sms_text.form")).messages
        assert (message.external_id, message.sender_id, message.kind, message.text) == (
            "SM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
            "+14155550123",
            "text",
            "Hi! Is the store open on Sunday?",
        )
        assert message.data["twilio"]["To"] == "+14155550100"
        assert message.timestamp.tzinfo is not None

    def test_a_whatsapp_message_keeps_the_channel_prefix_and_profile_name(self):
        [message] = parse("twilio", raw("twilio/whatsapp_text.form")).messages
        assert (message.sender_id, message.sender_name, message.text) == (
            "whatsapp:+16505551234",
            "Sheena Nelson",
            "Olá! Tudo bem? ✓",
        )

    def test_mms_media_metadata(self):
        [message] = parse("twilio", raw("twilio/mms_media.form")).messages
        assert (message.kind, message.text) == ("media", "two photos")
        assert message.data["media_type"] == "image"
        assert message.data["mime_type"] == "image/jpeg"
        assert [m["mime_type"] for m in message.data["attachments"]] == ["image/jpeg", "image/png"]

    def test_a_vcard_is_contacts(self):
        [message] = parse("twilio", raw("twilio/mms_vcard.form")).messages
        assert message.kind == "contacts"
        assert message.data["contacts"][0]["mime_type"] == "text/vcard"

    def test_whatsapp_location_and_button(self):
        [location] = parse("twilio", raw("twilio/whatsapp_location.form")).messages
        assert location.kind == "location"
        assert (location.data["latitude"], location.data["name"]) == (37.7749295, "Office")
        [button] = parse("twilio", raw("twilio/whatsapp_button.form")).messages
        assert (button.kind, button.text, button.payload) == (
            "button",
            "Confirm",
            "CONFIRM_BOOKING",
        )

    def test_an_unknown_message_type_is_unsupported(self):
        [message] = parse("twilio", raw("twilio/whatsapp_reaction.form")).messages
        assert (message.kind, message.data["type"]) == ("unsupported", "reaction")

    @pytest.mark.parametrize(
        ("name", "status", "error"),
        [
            ("status_delivered", "delivered", None),
            ("status_undelivered", "failed", "30003 undelivered"),
            ("status_read_whatsapp", "read", None),
        ],
    )
    def test_status_callbacks(self, name, status, error):
        parsed = parse("twilio", raw(f"twilio/{name}.form"))
        assert parsed.messages == []
        [update] = parsed.statuses
        assert (update.status, update.error) == (status, error)
        assert update.external_id.startswith("SM")

    def test_intermediate_statuses_are_not_events(self):
        parsed = parse("twilio", raw("twilio/status_sending.form"))
        assert parsed.messages == [] and parsed.statuses == []

    def test_the_parsed_form_of_the_view_is_used_when_given(self):
        form = {"MessageSid": "SM9", "From": "+1", "Body": "from the form"}
        [message] = parse("twilio", b"", form=form).messages
        assert message.text == "from the form"

    @pytest.mark.parametrize("body", [b"", b"Body=hi&From=%2B1", b"MessageSid=SM1&Body=hi"])
    def test_malformed_bodies(self, body):
        refused("twilio", body)


# --- API channel ---------------------------------------------------------------------------


class TestApiParse:
    def test_a_batch_of_messages(self):
        body = json.dumps(
            {
                "messages": [
                    {"id": "m-1", "from": "user-7", "name": "Zoe", "text": "hi", "timestamp": 1},
                    {"id": 2, "from": 7, "text": "Yes", "payload": "YES"},
                    {"id": "m-3", "from": "user-7", "kind": "location", "data": {"lat": 1}},
                ]
            }
        ).encode()
        messages = parse("api", body).messages
        assert [(m.external_id, m.sender_id, m.kind, m.text, m.payload) for m in messages] == [
            ("m-1", "user-7", "text", "hi", None),
            ("2", "7", "button", "Yes", "YES"),
            ("m-3", "user-7", "location", "", None),
        ]
        assert messages[0].sender_name == "Zoe"
        assert messages[0].timestamp == at(1)

    def test_a_single_message_object(self):
        [message] = parse("api", b'{"id": "x", "from": "u", "text": "t"}').messages
        assert message.external_id == "x"

    @pytest.mark.parametrize(
        "body",
        [
            b"[]",
            b'{"messages": []}',
            b'{"messages": [{"from": "u", "text": "t"}]}',
            b'{"messages": [{"id": "x", "text": "t"}]}',
            b'{"messages": [{"id": "x", "from": "u", "text": 5}]}',
            b'{"messages": [{"id": "x", "from": "u", "kind": "bogus"}]}',
            b'{"messages": [{"id": "x", "from": "u", "kind": "media"}]}',
            json.dumps({"messages": [{"id": str(i), "from": "u"} for i in range(101)]}).encode(),
        ],
    )
    def test_malformed_bodies(self, body):
        refused("api", body)
