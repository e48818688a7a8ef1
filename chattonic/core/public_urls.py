"""The address the outside world reaches this deployment at, for every absolute URL the platform
hands out: the widget's embed code, channel webhook URLs, links in emails.

``PUBLIC_BASE_URL`` (or this region's entry of ``CHATTONIC_REGIONS``) names it in production.
When the environment names neither, the settings hold only a development guess
(``PUBLIC_BASE_URL_GUESS``, ``http://localhost:8000``), and a page that has a request names the
host and port it was really asked on instead; what has no request (a task, an email sent from
one) falls back to the guess.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def public_base_url(request: HttpRequest | None = None) -> str:
    """``scheme://host[:port]`` (no trailing slash) of this deployment: the configured URL, or,
    when none is configured, the request's own scheme and host (Django checks the host against
    ``ALLOWED_HOSTS``; the scheme follows ``SECURE_PROXY_SSL_HEADER``)."""
    base = settings.PUBLIC_BASE_URL
    if request is not None and (not base or base == settings.PUBLIC_BASE_URL_GUESS):
        return f"{request.scheme}://{request.get_host()}"
    return base.rstrip("/")


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    """``path`` (from ``reverse`` or ``static``, starting with ``/``) as an absolute URL."""
    if not path.startswith("/"):
        raise ValueError(f"an absolute path is needed, not {path!r}")
    return public_base_url(request) + path
