"""The encryption of copies: chunked AES-256-GCM that catches every alteration."""

from __future__ import annotations

import base64
import os

import pytest

from backups import crypto
from backups.errors import BackupError, CopyCorrupted, WrongKey

KEY = os.urandom(32)
CHUNK = 64  # small chunks, so that the tests cross chunk boundaries


def seal(plain: bytes, key: bytes = KEY) -> bytes:
    encryptor = crypto.Encryptor(key, chunk_size=CHUNK)
    out = b""
    # Fed in uneven pieces, as a pipe delivers them.
    for start in range(0, len(plain), 37):
        out += encryptor.update(plain[start : start + 37])
    return out + encryptor.finish()


def open_sealed(sealed: bytes, keys=None, piece: int = 50) -> bytes:
    keys = {crypto.key_id(KEY): KEY} if keys is None else keys
    pieces = [sealed[i : i + piece] for i in range(0, len(sealed), piece)]
    return b"".join(crypto.decrypt_blocks(pieces, keys))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_across_chunk_boundaries(size):
    plain = os.urandom(size)
    sealed = seal(plain)
    if size >= 16:
        assert plain[:16] not in sealed  # no plaintext run shows through
    assert open_sealed(sealed) == plain
    assert open_sealed(sealed, piece=1) == plain


def test_each_file_gets_its_own_salt():
    assert seal(b"same") != seal(b"same")


def test_wrong_key_is_reported_as_a_wrong_key():
    sealed = seal(b"secret data" * 20)
    other = os.urandom(32)
    with pytest.raises(WrongKey) as caught:
        open_sealed(sealed, keys={crypto.key_id(other): other})
    assert crypto.key_id(KEY) in caught.value.message


def test_wrong_key_with_a_forged_key_id_still_fails_authentication():
    sealed = seal(b"secret data" * 20)
    other = os.urandom(32)
    with pytest.raises(CopyCorrupted):
        open_sealed(sealed, keys={crypto.key_id(KEY): other})


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s: s[: crypto.HEADER_SIZE + CHUNK + 16], id="cut at a chunk boundary"),
        pytest.param(lambda s: s[:-5], id="cut inside the last chunk"),
        pytest.param(lambda s: s[:20], id="cut inside the header"),
        pytest.param(lambda s: s + b"x", id="a byte appended"),
        pytest.param(lambda s: s[:100] + bytes([s[100] ^ 1]) + s[101:], id="a flipped byte"),
        pytest.param(
            lambda s: (
                s[: crypto.HEADER_SIZE]
                + s[crypto.HEADER_SIZE + CHUNK + 16 : crypto.HEADER_SIZE + 2 * (CHUNK + 16)]
                + s[crypto.HEADER_SIZE : crypto.HEADER_SIZE + CHUNK + 16]
                + s[crypto.HEADER_SIZE + 2 * (CHUNK + 16) :]
            ),
            id="two chunks swapped",
        ),
        pytest.param(
            lambda s: (
                s[: crypto.HEADER_SIZE + CHUNK + 16] + s[crypto.HEADER_SIZE + 2 * (CHUNK + 16) :]
            ),
            id="a chunk dropped",
        ),
    ],
)
def test_any_alteration_is_detected(damage):
    sealed = seal(os.urandom(4 * CHUNK + 10))
    with pytest.raises(CopyCorrupted):
        open_sealed(damage(sealed))


def test_keys_parse_from_base64_urlsafe_base64_and_hex():
    key = bytes(range(32))
    assert crypto.key_parse(base64.b64encode(key).decode()) == key
    assert crypto.key_parse(base64.urlsafe_b64encode(key).decode().rstrip("=")) == key
    assert crypto.key_parse(key.hex()) == key


@pytest.mark.parametrize("value", ["short", base64.b64encode(b"x" * 16).decode(), "!" * 44])
def test_a_bad_key_is_refused_with_how_to_make_one(value):
    with pytest.raises(BackupError) as caught:
        crypto.key_parse(value)
    assert "secrets.token_bytes(32)" in caught.value.message
