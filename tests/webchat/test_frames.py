"""The widget's frames as the socket reads them (webchat.services.parse_frame): a plain frame
is taken as it is, without the cleaning pass (read on the busy event loop: ``chattonic.core.inputs``
skips it for printable ASCII); anything else is cleaned or refused as ``inputs`` says."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chattonic.core import inputs
from webchat import services as webchat


def test_a_plain_ascii_message_frame_is_taken_as_it_is_without_a_cleaning_pass(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a plain frame went through the cleaning pass")

    class Refusing:
        __contains__ = refuse

    # The passes: NFC (clean_text) and the scan for control characters (identifier).
    monkeypatch.setattr(inputs, "unicodedata", SimpleNamespace(normalize=refuse))
    monkeypatch.setattr(inputs, "_SURROGATES", Refusing())
    frame = webchat.parse_frame(
        {"type": "message", "client_id": "3.17-42", "text": "  how much\tis it?\n"}
    )
    assert (frame.type, frame.client_id, frame.text) == (
        "message",
        "3.17-42",
        "  how much\tis it?\n",
    )


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("cafe\u0301", "café"),  # NFC
        ("a\x00b", "ab"),  # no NUL
        ("x\ud800y", "x\ufffdy"),  # a lone surrogate replaced
        ("olá", "olá"),
    ],
)
def test_other_texts_are_cleaned(text, stored):
    assert webchat.parse_frame({"type": "message", "client_id": "c", "text": text}).text == stored


@pytest.mark.parametrize("client_id", ["c\x01", "c\x7f", "c\ud800"])
def test_a_client_id_with_a_control_character_is_refused_by_name(client_id):
    with pytest.raises(webchat.FrameError) as caught:
        webchat.parse_frame({"type": "message", "client_id": client_id, "text": "hi"})
    assert list(caught.value.fields) == ["client_id"]
    assert "Control characters are not allowed." in caught.value.message


def test_a_non_ascii_client_id_and_a_nul_only_text_go_through_the_checks():
    assert (
        webchat.parse_frame({"type": "message", "client_id": "é-1", "text": "hi"}).client_id
        == "é-1"
    )
    with pytest.raises(webchat.FrameError) as caught:
        webchat.parse_frame({"type": "message", "client_id": "c", "text": "\x00 "})
    assert list(caught.value.fields) == ["text"]
    assert "A message needs some text." in caught.value.message
