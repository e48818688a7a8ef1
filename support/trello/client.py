"""A small client of Trello's REST API (https://api.trello.com/1/...): what the mirror needs.

Every request takes a slot of the token's shared rate limit first, has time-outs, and
sends the key and token in the ``Authorization: OAuth ...`` header (not in the URL, so
they stay out of access logs). Errors come out as :class:`TrelloError`: ``retryable``
for 429, 5xx, time-outs and connection errors, with ``maybe_done`` when the request may
have reached Trello (a read time-out, a 5xx) so that a retry must look before it creates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings

from chattonic.core import outbound
from chattonic.core.redact import redact
from support.trello import ratelimit

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15


class TrelloError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        rate_limited: bool = False,
        maybe_done: bool = False,
        wait: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.rate_limited = rate_limited
        self.maybe_done = maybe_done
        self.wait = wait


@dataclass(frozen=True)
class TrelloConfig:
    api_base: str
    key: str
    token: str
    board_id: str
    requests_per_window: int

    @classmethod
    def from_settings(cls) -> TrelloConfig | None:
        """The configuration, or None when mirroring is off (a credential is missing)."""
        if not (settings.TRELLO_KEY and settings.TRELLO_TOKEN and settings.TRELLO_BOARD_ID):
            return None
        return cls(
            api_base=settings.TRELLO_API_BASE.rstrip("/"),
            key=settings.TRELLO_KEY,
            token=settings.TRELLO_TOKEN,
            board_id=settings.TRELLO_BOARD_ID,
            requests_per_window=settings.TRELLO_REQUESTS_PER_10S,
        )


class TrelloClient:
    #: How long a request may wait for a rate-limit slot before giving up for now.
    max_wait = 12.0

    def __init__(self, config: TrelloConfig):
        self.config = config
        self.session = outbound.session()  # guarded: TRELLO_API_BASE may not point inside
        #: Called before every request (the outbox renews its lease there; it may raise).
        self.before_request: Callable[[], None] | None = None

    def redact(self, text: str) -> str:
        """``text`` without the key and the token (for errors stored or logged)."""
        return redact(text, (self.config.key, self.config.token))

    # --- the API calls the mirror uses --------------------------------------------------------

    def board_lists(self) -> list[dict]:
        return self._call(
            "GET", f"/1/boards/{self.config.board_id}/lists", params={"fields": "id,name,closed"}
        )

    def create_list(self, name: str) -> dict:
        return self._call(
            "POST",
            "/1/lists",
            json={"name": name, "idBoard": self.config.board_id, "pos": "bottom"},
        )

    def board_cards(self) -> list[dict]:
        """Every card of the board, archived ones too (to find one we may have created)."""
        return self._call(
            "GET",
            f"/1/boards/{self.config.board_id}/cards/all",
            params={"fields": "id,name,desc,idList,idMembers,shortUrl,closed"},
        )

    def create_card(
        self, *, list_id: str, name: str, desc: str, member_ids: list[str] = ()
    ) -> dict:
        body = {"idList": list_id, "name": name, "desc": desc, "pos": "bottom"}
        if member_ids:
            body["idMembers"] = ",".join(member_ids)
        return self._call("POST", "/1/cards", json=body)

    def set_members(self, card_id: str, *, member_ids: list[str]) -> dict:
        """Make ``member_ids`` the card's members (Trello alerts members of every change)."""
        return self._call("PUT", f"/1/cards/{card_id}", json={"idMembers": ",".join(member_ids)})

    def member(self, member_id: str) -> dict:
        return self._call("GET", f"/1/members/{member_id}", params={"fields": "id,username"})

    def move_card(self, card_id: str, *, list_id: str) -> dict:
        return self._call("PUT", f"/1/cards/{card_id}", json={"idList": list_id})

    def add_comment(self, card_id: str, *, text: str) -> dict:
        return self._call("POST", f"/1/cards/{card_id}/actions/comments", json={"text": text})

    def create_webhook(self, *, callback_url: str, description: str) -> dict:
        return self._call(
            "POST",
            "/1/webhooks",
            json={
                "callbackURL": callback_url,
                "idModel": self.config.board_id,
                "description": description,
            },
        )

    def token_webhooks(self) -> list[dict]:
        return self._call("GET", f"/1/tokens/{self.config.token}/webhooks")

    # --- plumbing -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs) -> Any:
        try:
            return self._request(method, path, **kwargs)
        except TrelloError as exc:
            exc.message = self.redact(exc.message)
            exc.args = (exc.message,)
            raise

    def _request(self, method: str, path: str, **kwargs) -> Any:
        if self.before_request is not None:
            self.before_request()
        try:
            ratelimit.take(
                self.config.token, limit=self.config.requests_per_window, max_wait=self.max_wait
            )
        except ratelimit.RateLimited as exc:
            raise TrelloError(
                "Holding back: Trello's rate limit for the token is used up.",
                retryable=True,
                rate_limited=True,
                wait=exc.wait,
            ) from None
        auth = f'OAuth oauth_consumer_key="{self.config.key}", oauth_token="{self.config.token}"'
        try:
            response = self.session.request(
                method,
                self.config.api_base + path,
                headers={"Authorization": auth, "Accept": "application/json"},
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                **kwargs,
            )
        except outbound.OutboundRefused:
            # TRELLO_API_BASE points at an address outbound requests may not reach; like bad
            # credentials, an operator can fix it without losing what waits in the outbox.
            raise TrelloError(
                f"{outbound.REFUSED} (TRELLO_API_BASE; see OUTBOUND_ALLOWED_HOSTS).",
                retryable=True,
            ) from None
        except requests.ConnectTimeout:
            raise TrelloError(
                "Trello did not answer the connection (time-out).", retryable=True
            ) from None
        except requests.ConnectionError as exc:
            # Refused before sending, or dropped after: we cannot tell whether Trello acted.
            raise TrelloError(
                f"Could not reach Trello: {type(exc).__name__}.", retryable=True, maybe_done=True
            ) from None
        except requests.Timeout:
            raise TrelloError(
                "Trello did not answer in time.", retryable=True, maybe_done=True
            ) from None
        if response.status_code == 429:
            raise TrelloError(
                f"Trello's rate limit: {_error_text(response)}.",
                status=429,
                retryable=True,
                rate_limited=True,
            )
        if response.status_code >= 500:
            raise TrelloError(
                f"Trello answered {response.status_code}: {_error_text(response)}.",
                status=response.status_code,
                retryable=True,
                maybe_done=True,
            )
        if response.status_code in (401, 403):
            # Credentials can be fixed without losing what waits in the outbox.
            raise TrelloError(
                f"Trello refused the credentials ({response.status_code}): "
                f"{_error_text(response)}. Check TRELLO_KEY and TRELLO_TOKEN.",
                status=response.status_code,
                retryable=True,
            )
        if response.status_code >= 400:
            raise TrelloError(
                f"Trello answered {response.status_code}: {_error_text(response)}.",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise TrelloError("Trello's answer was not JSON.", retryable=True) from None


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:200]
    return str(body)[:200]
