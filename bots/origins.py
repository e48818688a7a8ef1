"""A bot's allowed origins: the web sites whose pages may open its widget (pure).

An origin is what a browser sends in its ``Origin`` header: ``scheme://host[:port]``, lower
case, the host in its ASCII (punycode) form, no default port, no path. The web chat's socket
compares that header with the bot's list as it is stored, so every door stores origins in
this one form (``origin_normalize``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGINS = 50


def origin_normalize(value: str) -> str:
    """``value`` as an origin, e.g. ``HTTPS://Shop.Example.com:443/`` as
    ``https://shop.example.com``; a ValueError says what is wrong with it."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValueError("An origin cannot be empty.")
    if "://" not in text:
        site = text.split("/", 1)[0]
        raise ValueError(f"“{text}” needs its scheme, like https://{site} (or http://).")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"“{text}” is not a valid address.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"“{text}” must start with https:// or http://.")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"“{text}” must not hold a user name or password.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"“{text}” is a page, not an origin: give the site without a path, "
            f"like {scheme}://{parts.netloc}."
        )
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"“{text}” has no host name.")
    if "*" in host:
        raise ValueError(f"“{text}”: wildcards are not supported, give each site on its own row.")
    if ":" in host:  # IPv6, written in brackets
        host = f"[{host}]"
    else:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"“{text}” has an invalid host name.") from None
    if port is not None and port != DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def origins_normalize(values: list) -> list[str]:
    """Each origin normalised, in order, without repeats; a ValueError names the first bad one."""
    if not isinstance(values, list):
        raise ValueError('A list of origins such as ["https://shop.example.com"].')
    if len(values) > MAX_ORIGINS:
        raise ValueError(f"At most {MAX_ORIGINS} origins.")
    origins: list[str] = []
    for value in values:
        origin = origin_normalize(value)
        if origin not in origins:
            origins.append(origin)
    return origins
