"""A fake of Trello's REST API (``/1/...``) and of its webhook deliveries, for the mirror's tests.

It follows Trello's documented contract for what the mirror uses: boards' lists and cards,
creating lists and cards, moving a card (``PUT /1/cards/{id}`` with ``idList``), comments
(``POST /1/cards/{id}/actions/comments``, answered with the ``commentCard`` action),
webhooks (``POST /1/webhooks``, ``GET /1/tokens/{token}/webhooks``), the key and token in
the query or in ``Authorization: OAuth oauth_consumer_key="...", oauth_token="..."``
(401 ``invalid key`` / ``invalid token`` otherwise), and the rate limit per token: past
``limit`` requests in ``window`` seconds, 429 with ``{"error": "API_TOKEN_LIMIT_EXCEEDED",
"message": "Rate limit exceeded"}`` and no ``Retry-After`` (as Trello does). Members:
``GET /1/members/{id}``, and a card's ``idMembers`` (a comma-separated list of member ids)
on ``POST /1/cards`` and ``PUT /1/cards/{id}``; an unknown member is a 400 ``invalid value
for idMembers``. A slow Trello: :attr:`FakeTrello.latency` seconds before each API answer,
the change already made (as a slow Trello answers late).

Every change on a watched board makes a webhook delivery, as Trello would POST it to the
callback URL: the action and the model as JSON, signed in ``X-Trello-Webhook`` (base64
HMAC-SHA1 of the body followed by the callback URL, keyed with the app's secret). The
fake queues them in :attr:`FakeTrello.deliveries`; a test posts them to the app. Changes
"made by a person in Trello" go through :meth:`FakeTrello.person_moves_card` and
:meth:`FakeTrello.person_comments`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from .server import DROP, Answer, FakeServer, Recorded

API_MEMBER = {"id": "5f0000000000000000000a01", "username": "chattonic", "fullName": "Chat-Tonic"}
PERSON = {"id": "5f0000000000000000000b02", "username": "dana", "fullName": "Dana Developer"}


def trello_id() -> str:
    return secrets.token_hex(12)


def sign(secret: str, body: bytes, callback_url: str) -> str:
    digest = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def rate_limited() -> Answer:
    return Answer(429, {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"})


@dataclass
class Delivery:
    """A webhook POST that Trello would send."""

    callback_url: str
    body: bytes
    signature: str

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class FakeTrello(FakeServer):
    name = "trello"

    def __init__(self, *, key: str, token: str, secret: str, limit: int = 100, window: float = 10):
        super().__init__()
        self.key, self.token, self.secret = key, token, secret
        self.limit, self.window = limit, window
        self.data_lock = threading.RLock()
        self.boards: dict[str, dict] = {}
        self.lists: dict[str, dict] = {}
        self.cards: dict[str, dict] = {}
        self.actions: list[dict] = []
        self.webhooks: dict[str, dict] = {}
        self.deliveries: deque[Delivery] = deque()
        self._stamps: deque[float] = deque()
        self.rate_limited_count = 0
        self._short = itertools.count(1)
        self.outage: Answer | None = None
        self.members: dict[str, dict] = {m["id"]: dict(m) for m in (API_MEMBER, PERSON)}
        self.latency = 0.0

    # --- set-up and inspection ------------------------------------------------------------

    def add_board(self, name: str = "Support", lists: tuple[str, ...] = ()) -> str:
        board_id = trello_id()
        with self.data_lock:
            self.boards[board_id] = {"id": board_id, "name": name, "closed": False}
            for list_name in lists:
                self._new_list(board_id, list_name)
        return board_id

    def add_member(self, username: str, full_name: str) -> str:
        """A Trello account that cards can carry (a developer, a coordinator)."""
        member = {"id": trello_id(), "username": username, "fullName": full_name}
        with self.data_lock:
            self.members[member["id"]] = member
        return member["id"]

    def list_named(self, name: str) -> dict:
        return next(item for item in self.lists.values() if item["name"] == name)

    def cards_on(self, board_id: str) -> list[dict]:
        return [card for card in self.cards.values() if card["idBoard"] == board_id]

    def comments_on(self, card_id: str) -> list[str]:
        return [
            a["data"]["text"]
            for a in self.actions
            if a["type"] == "commentCard" and a["data"]["card"]["id"] == card_id
        ]

    def take_deliveries(self) -> list[Delivery]:
        with self.data_lock:
            taken = list(self.deliveries)
            self.deliveries.clear()
        return taken

    def max_requests_in_window(self, window: float | None = None) -> int:
        """The most API requests the fake received within any ``window`` seconds."""
        window = self.window if window is None else window
        stamps = sorted(r.received_at for r in self.requests if r.path.startswith("/1/"))
        best, start = 0, 0
        for end, stamp in enumerate(stamps):
            while stamp - stamps[start] > window:
                start += 1
            best = max(best, end - start + 1)
        return best

    # --- what a person does in Trello -------------------------------------------------------

    def person_moves_card(self, card_id: str, list_name: str) -> None:
        with self.data_lock:
            self._move(self.cards[card_id], self.list_named(list_name)["id"], PERSON)

    def person_comments(self, card_id: str, text: str) -> dict:
        with self.data_lock:
            return self._comment(self.cards[card_id], text, PERSON)

    # --- the contract -----------------------------------------------------------------------

    def handle(self, request: Recorded) -> Answer:
        if self.outage is not None:
            return self.outage
        if not request.path.startswith("/1/"):
            return Answer(404, "Cannot find the route")
        key, token = self._credentials(request)
        if key != self.key:
            return Answer(401, "invalid key")
        if token != self.token:
            return Answer(401, "invalid token")
        if not self._within_rate(time.monotonic()):
            self.rate_limited_count += 1
            return rate_limited()
        params = self._params(request)
        with self.data_lock:
            answer = self._route(request.method, request.path, params)
        if self.latency:
            answer.delay = max(answer.delay, self.latency)
        return answer

    def _route(self, method: str, path: str, params: dict) -> Answer:
        parts = path.strip("/").split("/")[1:]  # without "1"
        match (method, parts):
            case ("GET", ["boards", board_id, "lists"]):
                if board_id not in self.boards:
                    return Answer(404, "The requested resource was not found.")
                return Answer(
                    200,
                    [
                        lst
                        for lst in self.lists.values()
                        if lst["idBoard"] == board_id and not lst["closed"]
                    ],
                )
            case ("GET", ["boards", board_id, "cards", *rest]):
                if board_id not in self.boards:
                    return Answer(404, "The requested resource was not found.")
                cards = self.cards_on(board_id)
                if not rest or rest[0] == "open":
                    cards = [c for c in cards if not c["closed"]]
                return Answer(200, cards)
            case ("POST", ["lists"]):
                board_id = params.get("idBoard", "")
                if board_id not in self.boards or not params.get("name"):
                    return Answer(400, "invalid value for idBoard")
                return Answer(200, self._new_list(board_id, params["name"]))
            case ("POST", ["cards"]):
                lst = self.lists.get(params.get("idList", ""))
                if lst is None:
                    return Answer(400, "invalid value for idList")
                members = self._member_ids(params)
                if members is None:
                    return Answer(400, "invalid value for idMembers")
                return Answer(200, self._new_card(lst, params, members))
            case ("GET", ["members", member_id]):
                member = self.members.get(member_id) or next(
                    (m for m in self.members.values() if m["username"] == member_id), None
                )
                if member is None:
                    return Answer(404, "The requested resource was not found.")
                return Answer(200, member)
            case ("GET", ["cards", card_id]):
                card = self.cards.get(card_id)
                return (
                    Answer(200, card)
                    if card
                    else Answer(404, "The requested resource was not found.")
                )
            case ("PUT", ["cards", card_id]):
                card = self.cards.get(card_id)
                if card is None:
                    return Answer(404, "The requested resource was not found.")
                if "idList" in params and params["idList"] not in self.lists:
                    return Answer(400, "invalid value for idList")
                if "idMembers" in params:
                    members = self._member_ids(params)
                    if members is None:
                        return Answer(400, "invalid value for idMembers")
                    card["idMembers"] = members
                if "idList" in params:
                    self._move(card, params["idList"], API_MEMBER)
                return Answer(200, card)
            case ("POST", ["cards", card_id, "actions", "comments"]):
                card = self.cards.get(card_id)
                if card is None:
                    return Answer(404, "The requested resource was not found.")
                if not params.get("text"):
                    return Answer(400, "invalid value for text")
                return Answer(200, self._comment(card, params["text"], API_MEMBER))
            case ("POST", ["webhooks"]) | ("POST", ["tokens", _, "webhooks"]):
                if params.get("idModel") not in self.boards or not params.get("callbackURL"):
                    return Answer(400, "invalid value for idModel")
                for hook in self.webhooks.values():
                    if (hook["idModel"], hook["callbackURL"]) == (
                        params["idModel"],
                        params["callbackURL"],
                    ):
                        return Answer(
                            400, "A webhook with that callback, model, and token already exists"
                        )
                hook = {
                    "id": trello_id(),
                    "description": params.get("description", ""),
                    "idModel": params["idModel"],
                    "callbackURL": params["callbackURL"],
                    "active": True,
                    "consecutiveFailures": 0,
                }
                self.webhooks[hook["id"]] = hook
                return Answer(200, hook)
            case ("GET", ["tokens", _, "webhooks"]):
                return Answer(200, list(self.webhooks.values()))
            case ("DELETE", ["webhooks", hook_id]):
                self.webhooks.pop(hook_id, None)
                return Answer(200, {"_value": None})
        return Answer(404, "Cannot find the route")

    # --- the model ---------------------------------------------------------------------------

    def _new_list(self, board_id: str, name: str) -> dict:
        lst = {"id": trello_id(), "name": name, "closed": False, "idBoard": board_id, "pos": 1}
        self.lists[lst["id"]] = lst
        return lst

    def _member_ids(self, params: dict) -> list[str] | None:
        """The card's members from ``idMembers``; None when one is not a member."""
        value = params.get("idMembers") or []
        ids = value.split(",") if isinstance(value, str) else list(value)
        ids = [str(i).strip() for i in ids if str(i).strip()]
        if any(i not in self.members for i in ids):
            return None
        return list(dict.fromkeys(ids))

    def _new_card(self, lst: dict, params: dict, members: list[str]) -> dict:
        short = f"s{next(self._short):07d}"
        card = {
            "id": trello_id(),
            "name": params.get("name", ""),
            "desc": params.get("desc", ""),
            "idList": lst["id"],
            "idBoard": lst["idBoard"],
            "closed": False,
            "idMembers": members,
            "idShort": len(self.cards) + 1,
            "shortLink": short,
            "shortUrl": f"https://trello.com/c/{short}",
            "url": f"https://trello.com/c/{short}/card",
        }
        self.cards[card["id"]] = card
        self._deliver("createCard", card, API_MEMBER, {"list": self._ref(lst)})
        return card

    def _move(self, card: dict, list_id: str, member: dict) -> None:
        before = self.lists[card["idList"]]
        after = self.lists[list_id]
        card["idList"] = list_id
        if before["id"] != after["id"]:
            self._deliver(
                "updateCard",
                card,
                member,
                {
                    "old": {"idList": before["id"]},
                    "listBefore": self._ref(before),
                    "listAfter": self._ref(after),
                },
            )

    def _comment(self, card: dict, text: str, member: dict) -> dict:
        return self._deliver(
            "commentCard",
            card,
            member,
            {"text": text, "list": self._ref(self.lists[card["idList"]])},
        )

    @staticmethod
    def _ref(obj: dict) -> dict:
        return {"id": obj["id"], "name": obj["name"]}

    def _deliver(self, kind: str, card: dict, member: dict, data: dict) -> dict:
        board = self.boards[card["idBoard"]]
        action = {
            "id": trello_id(),
            "idMemberCreator": member["id"],
            "type": kind,
            "date": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data": {
                **data,
                "card": {
                    "id": card["id"],
                    "name": card["name"],
                    "idShort": card["idShort"],
                    "shortLink": card["shortLink"],
                    "idList": card["idList"],
                },
                "board": {"id": board["id"], "name": board["name"], "shortLink": "b0ard"},
            },
            "memberCreator": {**member, "avatarHash": None, "initials": member["fullName"][:1]},
        }
        self.actions.append(action)
        for hook in self.webhooks.values():
            if hook["active"] and hook["idModel"] == board["id"]:
                body = json.dumps({"model": board, "action": action, "webhook": hook}).encode()
                self.deliveries.append(
                    Delivery(
                        hook["callbackURL"], body, sign(self.secret, body, hook["callbackURL"])
                    )
                )
        return action

    # --- plumbing ----------------------------------------------------------------------------

    def _credentials(self, request: Recorded) -> tuple[str | None, str | None]:
        header = request.headers.get("Authorization") or ""
        if header.startswith("OAuth "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', header))
            return found.get("oauth_consumer_key"), found.get("oauth_token")
        return request.param("key"), request.param("token")

    def _params(self, request: Recorded) -> dict[str, Any]:
        params = {name: values[0] for name, values in request.query.items()}
        content_type = request.headers.get("Content-Type") or ""
        if request.body and "json" in content_type:
            body = request.json
            if isinstance(body, dict):
                params.update(body)
        elif request.body:
            params.update(dict(parse_qsl(request.body.decode(), keep_blank_values=True)))
        return params

    def _within_rate(self, now: float) -> bool:
        with self.data_lock:
            while self._stamps and now - self._stamps[0] >= self.window:
                self._stamps.popleft()
            if len(self._stamps) >= self.limit:
                return False
            self._stamps.append(now)
            return True


def lost_answer(fake: FakeTrello):
    """A scripted answer: Trello does the request, and the answer never arrives."""

    def answer(request: Recorded) -> Answer:
        fake.handle(request)
        return DROP

    return answer
