"""Secrets at rest, encrypted with Fernet (AES-128-CBC + HMAC): a channel's credentials (a
JSON object) and a lead webhook's signing secret (a text).

The keys come from ``CHATTONIC_ENCRYPTION_KEY`` (comma-separated Fernet keys, newest first:
new values are encrypted with the first, every one of them decrypts, so keys rotate without
a migration). Without it, a development run (DEBUG) uses a key derived from ``SECRET_KEY``
(settings.py); production refuses to encrypt or decrypt rather than guess a key.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialsUnreadable(Exception):
    """The stored credentials do not decrypt with any configured key."""


def generate_key() -> str:
    """A new key for ``CHATTONIC_ENCRYPTION_KEY``."""
    return Fernet.generate_key().decode()


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "CHATTONIC_ENCRYPTION_KEY is not set: channel credentials cannot be encrypted. "
            "Generate one with python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'."
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"CHATTONIC_ENCRYPTION_KEY holds a key that is not a Fernet key: {exc}"
        ) from None


def _current() -> MultiFernet:
    return _fernet(tuple(getattr(settings, "CHATTONIC_ENCRYPTION_KEYS", ()) or ()))


def encrypt(credentials: dict) -> str:
    """The credentials as a Fernet token (text), encrypted with the newest key."""
    plain = json.dumps(credentials, separators=(",", ":"), sort_keys=True).encode()
    return _current().encrypt(plain).decode()


def decrypt(token: str) -> dict:
    """The credentials of a token written by :func:`encrypt`; {} for an empty token."""
    if not token:
        return {}
    keys = tuple(getattr(settings, "CHATTONIC_ENCRYPTION_KEYS", ()) or ())
    return dict(_decrypted(keys, token))  # a copy: the caller may change it


@lru_cache(maxsize=1024)  # every webhook checks its signature with its channel's secret
def _decrypted(keys: tuple[str, ...], token: str) -> dict:
    try:
        plain = _fernet(keys).decrypt(token.encode())
    except InvalidToken:
        raise CredentialsUnreadable(
            "The channel's credentials do not decrypt with CHATTONIC_ENCRYPTION_KEY "
            "(was the key changed without keeping the old one?)."
        ) from None
    value = json.loads(plain)
    return value if isinstance(value, dict) else {}


def encrypt_secret(value: str) -> str:
    """One secret text as a Fernet token, encrypted with the newest key."""
    return _current().encrypt(value.encode()).decode()


def decrypt_secret(token: str) -> str:
    """The secret text of a token written by :func:`encrypt_secret`."""
    keys = tuple(getattr(settings, "CHATTONIC_ENCRYPTION_KEYS", ()) or ())
    try:
        return _fernet(keys).decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialsUnreadable(
            "The secret does not decrypt with CHATTONIC_ENCRYPTION_KEY "
            "(was the key changed without keeping the old one?)."
        ) from None


def rotate(token: str) -> str:
    """The token re-encrypted with the newest key (after adding one in front)."""
    return _current().rotate(token.encode()).decode() if token else token
