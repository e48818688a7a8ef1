"""Encryption of backup copies: chunked AES-256-GCM, authenticated, streamed.

Why this scheme: a copy can be many gigabytes, so it must be encrypted and checked in
constant memory. Fernet and one-shot AES-GCM need the whole message in memory, and a
streaming GCM decryptor hands out plaintext before the tag has been checked. So the copy
is cut into 1 MiB chunks, each sealed with AES-256-GCM (fast with AES-NI, authenticated).
The construction is the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár:

- a fresh random 32-byte salt per file derives a per-file key from the master key
  (HKDF-SHA256), so counter nonces never repeat under one key;
- chunk ``i`` uses the nonce ``i`` (11 bytes, big-endian) + a last-chunk flag byte, so
  chunks cannot be reordered, dropped or duplicated, and a copy cut at a chunk boundary
  fails (its new last chunk was not sealed as last), as does one with bytes appended;
- the header is authenticated with every chunk (associated data);
- the header carries a key id (an HMAC of the master key, not the key), so a wrong key
  is reported as a wrong key instead of as corruption.

Layout: header (54 bytes) = magic ``CTBACKUP`` | version 1 | scheme 1 | chunk size (u32) |
key id (8) | salt (32); then chunks of ``chunk size + 16`` bytes, the last one shorter.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backups.errors import BackupError, CopyCorrupted, WrongKey

SCHEME = "chunked-aes-256-gcm-v1"
MAGIC = b"CTBACKUP"
VERSION = 1
SCHEME_ID = 1
CHUNK_SIZE = 1024 * 1024
TAG_SIZE = 16
_HEADER = struct.Struct(">8sBBI8s32s")
HEADER_SIZE = _HEADER.size
KEY_HELP = (
    "BACKUP_ENCRYPTION_KEY must be 32 random bytes, base64-encoded; generate one with "
    "python -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'"
)


def key_parse(value: str, *, name: str = "BACKUP_ENCRYPTION_KEY") -> bytes:
    """The 32-byte key from its base64 (standard or URL-safe) or hex form."""
    text = value.strip()
    candidates = []
    if len(text) == 64:
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(text))
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        with contextlib.suppress(binascii.Error, ValueError):
            candidates.append(decode(text + "=" * (-len(text) % 4)))
    for key in candidates:
        if len(key) == 32:
            return key
    raise BackupError(KEY_HELP.replace("BACKUP_ENCRYPTION_KEY", name))


def key_id(key: bytes) -> str:
    """A public fingerprint of a key: tells keys apart without revealing them."""
    return hmac.new(key, b"chattonic backup key id", hashlib.sha256).hexdigest()[:16]


def _file_key(key: bytes, salt: bytes) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"chattonic backup v1"
    ).derive(key)
    return AESGCM(derived)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


@dataclass(frozen=True)
class Header:
    chunk_size: int
    key_id: str
    salt: bytes
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        if len(raw) < HEADER_SIZE:
            raise CopyCorrupted("The copy is truncated: its encryption header is incomplete.")
        magic, version, scheme, chunk_size, kid, salt = _HEADER.unpack(raw[:HEADER_SIZE])
        if magic != MAGIC:
            raise CopyCorrupted("The copy is not an encrypted Chat-Tonic backup (bad header).")
        if version != VERSION or scheme != SCHEME_ID or not 0 < chunk_size <= 64 * CHUNK_SIZE:
            raise CopyCorrupted(
                f"Unknown encryption format (version {version}, scheme {scheme}): "
                "the copy is corrupted or was made by a newer Chat-Tonic."
            )
        return cls(chunk_size=chunk_size, key_id=kid.hex(), salt=salt, raw=raw[:HEADER_SIZE])


class Encryptor:
    """Seals a stream: feed plaintext with ``update``, then ``finish``; both return the
    ciphertext to write (the header comes out of the first call)."""

    def __init__(self, key: bytes, *, chunk_size: int = CHUNK_SIZE):
        self.chunk_size = chunk_size
        salt = os.urandom(32)
        self.header = _HEADER.pack(
            MAGIC, VERSION, SCHEME_ID, chunk_size, bytes.fromhex(key_id(key)), salt
        )
        self._aead = _file_key(key, salt)
        self._pending = bytearray()
        self._index = 0
        self._header_out = False

    def _seal(self, chunk: bytes, last: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._index, last), chunk, self.header)
        self._index += 1
        return sealed

    def update(self, data: bytes) -> bytes:
        out = bytearray()
        if not self._header_out:
            out += self.header
            self._header_out = True
        self._pending += data
        # Keep at least one byte back: the last chunk is sealed as last in ``finish``.
        while len(self._pending) > self.chunk_size:
            out += self._seal(bytes(self._pending[: self.chunk_size]), last=False)
            del self._pending[: self.chunk_size]
        return bytes(out)

    def finish(self) -> bytes:
        out = self.update(b"")
        out += self._seal(bytes(self._pending), last=True)
        self._pending.clear()
        return out


def decrypt_blocks(
    blocks: Iterable[bytes], keys: dict[str, bytes], *, what: str = "the copy"
) -> Iterator[bytes]:
    """Plaintext chunks of an encrypted stream, each authenticated before it is yielded.

    ``blocks`` yields the stored bytes in pieces of any size; ``keys`` maps key ids to keys.
    Raises ``WrongKey`` if no key fits and ``CopyCorrupted`` on any alteration or truncation.
    """
    buffer = bytearray()
    source = iter(blocks)
    header = None
    exhausted = False

    def fill(size: int) -> None:
        nonlocal exhausted
        while len(buffer) < size and not exhausted:
            try:
                buffer.extend(next(source))
            except StopIteration:
                exhausted = True

    fill(HEADER_SIZE)
    header = Header.parse(bytes(buffer))
    del buffer[:HEADER_SIZE]
    key = keys.get(header.key_id)
    if key is None:
        known = ", ".join(sorted(keys)) or "none configured"
        raise WrongKey(
            f"{_cap(what)} was encrypted with the key {header.key_id}, which this "
            f"deployment does not have (its keys: {known}). Set BACKUP_ENCRYPTION_KEY, or add "
            "the old key to BACKUP_OLD_ENCRYPTION_KEYS.",
            extra={"key_id": header.key_id},
        )
    aead = _file_key(key, header.salt)
    sealed_size = header.chunk_size + TAG_SIZE
    index = 0
    while True:
        # One byte past a full chunk tells whether this chunk is the last.
        fill(sealed_size + 1)
        last = len(buffer) <= sealed_size
        sealed = bytes(buffer[:sealed_size])
        del buffer[:sealed_size]
        try:
            yield aead.decrypt(_nonce(index, last), sealed, header.raw)
        except InvalidTag:
            if last:
                raise CopyCorrupted(
                    f"{_cap(what)} is truncated or altered: its last chunk "
                    f"(#{index}) fails authentication."
                ) from None
            raise CopyCorrupted(
                f"{_cap(what)} is altered: chunk #{index} fails authentication."
            ) from None
        index += 1
        if last:
            return
