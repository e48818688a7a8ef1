"""The web chat socket: ``/ws/webchat/<public widget key>/``.

Connect: another region's key is refused before any lookup (the handshake answered 421 with
that region's URL, chattonic.regions); then the bot's allowed origins, its region and status,
the per-IP connection limit, then the visitor's signed session (resumed from ``?session=``, or
a new one). Frames in: ``start``, ``message``, ``quick_reply``, ``typing``, ``read``,
``history``, ``contact``, ``rating``. Frames out: ``session``, ``history`` (with the away
form's state), ``message``, ``ack``, ``status``, ``read``, ``typing``, ``conversation``,
``contact_saved``, ``rated``, ``error``.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from bots.models import Bot
from bots.regions import region_refusal
from bots.services import bot_embedded
from chattonic import regions
from chattonic.core import ratelimit
from chattonic.core.errors import ServiceError
from chattonic.core.sockets import JsonSocket, frame_loads, session_user
from chattonic.tenancy.models import Membership
from conversations import hooks, realtime, receive, selectors, services
from conversations.models import Conversation, Message
from webchat import lane, lane_workers
from webchat import selectors as webchat_selectors
from webchat import services as webchat

logger = logging.getLogger(__name__)


# Frames other than messages (typing, read, history, start): this many times the
# per-visitor message limit (WEBCHAT_MESSAGES_PER_10S) in 10 seconds.
OTHER_FRAMES_FACTOR = 5

# The sockets' database connection is kept between frames for this long at most.
SOCKET_CONNECTION_MAX_AGE = 300


def _tidy_connections() -> None:
    """``close_old_connections`` for the sockets: close a connection that failed, or was
    left in a transaction, or is older than SOCKET_CONNECTION_MAX_AGE (or CONN_MAX_AGE if
    longer); keep the others open for the next frame."""
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.in_atomic_block or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()
        elif conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()
        elif conn.close_at is not None:
            max_age = conn.settings_dict["CONN_MAX_AGE"] or 0
            if now - (conn.close_at - max_age) >= max(max_age, SOCKET_CONNECTION_MAX_AGE):
                conn.close()


def _tidied(func):
    """``func`` with the sockets' connection care around it, in the thread that runs it.

    Channels' ``database_sync_to_async`` closes the connection after each call when
    CONN_MAX_AGE is 0 (as it must be for Django's ASGI requests); a frame then pays for a new
    connection, which costs more than the frame's own queries (measured: 2 ms on SQLite,
    11 ms on PostgreSQL). Each thread that runs these calls keeps its connection, replaced
    when it fails or ages (``_tidy_connections``)."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        _tidy_connections()
        try:
            return func(*args, **kwargs)
        finally:
            _tidy_connections()

    return run


def database_sync_to_async(func):
    """A socket frame's database work, in the one thread-sensitive thread."""
    return sync_to_async(_tidied(func), thread_sensitive=True)


def _parallel_database() -> bool:
    """Whether visitors' messages may be written from several threads at once: yes on
    PostgreSQL (each thread keeps its own connection; the conversation's row lock orders
    one visitor's tabs), not on SQLite (one writer at a time anyway)."""
    return settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"


# Visitors' messages on PostgreSQL are written from these threads, one per lane batch under
# way, each keeping its connection: one pool for the process, whatever event loop asks (a
# loop's own default executor would take fresh threads, and connections, for every loop).
_MESSAGE_THREADS = ThreadPoolExecutor(max_workers=lane.IN_FLIGHT, thread_name_prefix="webchat-db")

# Sockets opening on PostgreSQL read what they need (one query) from these threads, not
# from the one thread-sensitive thread that every frame's other database work queues for:
# after a deploy or a network blip every visitor reconnects at once. A burst of openings
# waits on these queries' round trips (the event loop is a third busy): with two threads
# bench/sockets.py opened 308-457 widget sockets a second, with six 395-480 (2026-12-07,
# alternating runs; each thread holds a pooled connection only while it reads).
OPENING_THREADS = 6
_OPENING_THREADS = ThreadPoolExecutor(
    max_workers=OPENING_THREADS, thread_name_prefix="webchat-open"
)


def message_sync_to_async(func):
    if _parallel_database():
        return sync_to_async(_tidied(func), thread_sensitive=False, executor=_MESSAGE_THREADS)
    return database_sync_to_async(func)


def lane_in_flight() -> int:
    """The lane's batches under way at once (webchat.lane): two with lane worker processes;
    without, one per message thread on PostgreSQL, two for SQLite's one thread."""
    if lane_workers.workers() is not None:
        return lane.IN_FLIGHT_WORKERS
    return lane.IN_FLIGHT if _parallel_database() else lane.IN_FLIGHT_ONE_THREAD


def opening_sync_to_async(func):
    """A socket's opening read: read-only, so on PostgreSQL from its own threads."""
    if _parallel_database():
        return sync_to_async(_tidied(func), thread_sensitive=False, executor=_OPENING_THREADS)
    return database_sync_to_async(func)


# The bots of the sockets open in this process, one object for all the sockets of a bot (a
# bot's row with its tenant's is some kilobytes; 8,000 idle visitors of one bot held 8,000
# copies). A socket keeps the bot as it was when it opened, so sharing is only between equal
# rows; a changed bot gets a new object for the sockets that open after the change.
_BOTS: weakref.WeakValueDictionary[int, Bot] = weakref.WeakValueDictionary()


def _row(instance) -> dict:
    return {k: v for k, v in instance.__dict__.items() if not k.startswith("_")}


def _shared_bot(bot: Bot) -> Bot:
    """The process's object for this bot's row as just read (on the event loop only)."""
    known = _BOTS.get(bot.pk)
    if known is not None and _row(known) == _row(bot) and _row(known.tenant) == _row(bot.tenant):
        return known
    _BOTS[bot.pk] = bot
    return bot


def _may_test(bot: Bot, user) -> bool:
    """The sandbox is the dashboard's: the bot's tenant's owners and admins (and the
    platform's superusers), signed in to the dashboard."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    membership = Membership.objects.filter(user=user).first()
    return bool(
        user.is_staff
        and membership
        and membership.tenant_id == bot.tenant_id
        and membership.is_staff_role
    )


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _client_ip(scope) -> str:
    client = scope.get("client") or ("unknown", 0)
    return str(client[0])


class WebchatConsumer(realtime.MessageEvents, JsonSocket):
    bot: Bot
    visitor_id: str
    conversation_id: int | None = None
    sandbox = False
    ip_slot: str | None = None

    # --- Connect and disconnect ------------------------------------------------------------

    async def connect(self):
        key = self.scope["url_route"]["kwargs"]["public_key"]
        region = regions.elsewhere(regions.region_of_token(key))
        if region is not None:  # another region's key: answered before any lookup
            await self._deny_handshake(regions.refusal(region))
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.sandbox = query.get("sandbox", [""])[0] == "1"
        claim = webchat.visitor_claim(query.get("session", [""])[0])
        # One query (the bot, and the visitor's current conversation), off the one
        # thread-sensitive thread on PostgreSQL: after a deploy every visitor reconnects.
        opening, may_test = await opening_sync_to_async(self._opening)(key, claim)
        bot, conversation_id, earlier = opening.bot, opening.conversation, opening.earlier
        consented = opening.consented
        origin = _header(self.scope, b"origin")
        # Every refusal is accepted, said in an error frame and closed with 4000 + its status
        # (webchat.services): nothing of a visitor or a conversation is read before it.
        await self.accept()
        if bot is None:
            await self._refuse(webchat.UNKNOWN_BOT)
            return
        if not webchat.origin_allowed(bot.allowed_origins, origin):
            await self._refuse(webchat.origin_refusal(origin))
            return
        self.bot = bot = _shared_bot(bot)
        self._lane = lane.lane(
            message_sync_to_async, self.channel_layer, lane_in_flight(), lane_workers.workers()
        )
        refusal = self._refusal(may_test)
        if refusal:
            await self._refuse(refusal)
            return
        self.ip_slot = f"webchat.ip.{_client_ip(self.scope)}"
        if not await ratelimit.acquire(self.ip_slot, limit=settings.WEBCHAT_MAX_CONNECTIONS_PER_IP):
            self.ip_slot = None
            await self._refuse(
                {
                    "code": "too_many_connections",
                    "status": 429,
                    "message": "Too many open chats from your address.",
                }
            )
            return

        if bot.embedded_at is None and not self.sandbox and not webchat.is_own_origin(origin):
            # The first visit from the tenant's own site: the dashboard's checklist ticks it.
            await database_sync_to_async(bot_embedded)(bot=bot, origin=origin)
        if claim is not None and claim[0] == bot.pk:
            self.visitor_id = claim[1]
        else:  # no token, or one signed for another bot: a new visitor
            self.visitor_id = webchat.new_visitor_id()
            conversation_id = earlier = None
            consented = False
        self.language = (query.get("lang", [""])[0] or "")[:2]
        await self.channel_layer.group_add(
            realtime.visitor_group(self.visitor_id), self.channel_name
        )
        await self.send_json(
            {
                "type": "session",
                "token": webchat.visitor_token(bot.pk, self.visitor_id),
                "conversation": conversation_id,
                "consented": consented,
                "bot": self._bot_info(),
            }
        )
        if conversation_id is not None:
            await self._watch(conversation_id)
            await self._send_history(status=opening.status)
        elif earlier is not None:
            # A returning visitor whose last chat was resolved reads it again, above the new
            # one (not watched: their next message starts a new conversation).
            await self._send_history(status=Conversation.Status.RESOLVED, earlier=earlier)

    def _opening(self, key: str, claim: tuple[int, str] | None):
        """What the socket opens to (selectors.WebchatOpening) and, for the sandbox, whether
        the dashboard's user may test the bot."""
        opening = selectors.webchat_opening(
            public_key=key, visitor_id=claim[1] if claim else None, sandbox=self.sandbox
        )
        bot = opening.bot
        may_test = bot is not None and self.sandbox and _may_test(bot, session_user(self.scope))
        return opening, may_test

    async def _deny_handshake(self, refusal: dict) -> None:
        """Refuse the handshake itself with the refusal's HTTP status and JSON body (the ASGI
        server's ``websocket.http.response`` extension: uvicorn's); a plain 403 without it.
        A browser cannot read it: the widget asks ``/webchat/<key>/region/`` then."""
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            await self.close()
            return
        body = json.dumps({"error": {**refusal, "fields": {}}}).encode()
        await self.base_send(
            {
                "type": "websocket.http.response.start",
                "status": refusal["status"],
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await self.base_send({"type": "websocket.http.response.body", "body": body})

    async def _refuse(self, refusal: dict) -> None:
        await self.send_json({"type": "error", **refusal})
        await self.close(code=4000 + refusal["status"])

    def _refusal(self, may_test: bool) -> dict | None:
        bot = self.bot
        refusal = region_refusal(bot)
        if refusal is not None:
            return refusal
        if self.sandbox:
            if not may_test:
                return {"code": "forbidden", "status": 403, "message": "Sign in to test this bot."}
        elif bot.status != Bot.Status.LAUNCHED:
            return {
                "code": "bot_unavailable",
                "status": 409,
                "message": "This chat is not available.",
            }
        return None

    def _bot_info(self) -> dict:
        bot = self.bot
        return {
            "title": bot.display_title,
            "color": bot.theme_color,
            "language": bot.default_language,
            "welcome": bot.welcome_text,
            "prechat": bot.prechat_form,
            "away_message": bot.away_message,
            "sandbox": self.sandbox,
        }

    async def disconnect(self, code):
        if self.ip_slot:
            await ratelimit.release(self.ip_slot)
        if getattr(self, "visitor_id", None):
            await self.channel_layer.group_discard(
                realtime.visitor_group(self.visitor_id), self.channel_name
            )
        if self.conversation_id:
            await self.channel_layer.group_discard(
                realtime.conversation_group(self.conversation_id), self.channel_name
            )

    # --- Frames in -------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if bytes_data is not None or text_data is None:
            await self._error("bad_frame", "Frames are JSON text.")
            return
        if len(text_data.encode()) > webchat.MAX_FRAME_BYTES:
            await self._error(
                "frame_too_large", f"Frames are at most {webchat.MAX_FRAME_BYTES} bytes."
            )
            return
        try:
            content = frame_loads(text_data)
        except ValueError:
            await self._error("bad_json", "A frame must be valid JSON.")
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        try:
            frame = webchat.parse_frame(content)
        except webchat.FrameError as exc:
            await self._error(exc.code, exc.message, content, fields=exc.fields)
            return
        if frame.type not in ("message", "quick_reply"):
            # typing, read, history, start: cheap but broadcast or read from the database,
            # so a flood of them is bounded too (messages have their own, lower limit).
            limit = OTHER_FRAMES_FACTOR * settings.WEBCHAT_MESSAGES_PER_10S
            if not await ratelimit.hit(f"webchat.frames.{self.visitor_id}", limit=limit, window=10):
                await self._error("rate_limited", f"At most {limit} such frames per 10 seconds.")
                return
        handler = getattr(self, f"frame_{frame.type}")
        try:
            await handler(frame)
        except ServiceError as exc:
            await self._error(exc.code, exc.message, content, fields=exc.fields)

    async def frame_start(self, frame):
        def open_it(events):
            with realtime.collecting(events):
                conversation, _ = services.webchat_open(
                    bot=self.bot,
                    visitor_id=self.visitor_id,
                    sandbox=self.sandbox,
                    fields=frame.fields,
                    language=self.language,
                )
            return conversation.pk

        events: list = []
        try:
            conversation_id = await database_sync_to_async(open_it)(events)
            if conversation_id != self.conversation_id:
                await self._watch(conversation_id)
                events = [e for e in events if e[0] != realtime.conversation_group(conversation_id)]
                await self._send_history()  # the greeting, or what the chat holds so far
        finally:
            await realtime.broadcast(self.channel_layer, events)

    async def frame_message(self, frame):
        # The lane (webchat.lane): the rate limit, then the receive service, in one
        # transaction shared with the other sockets' messages waiting at the same time. A new
        # conversation's group is joined before its events go out, so this socket hears what
        # others say there.
        arrival = receive.Arrival(
            bot=self.bot,
            visitor_id=self.visitor_id,
            inbound=receive.Inbound(
                text=frame.text,
                kind=Message.Kind.BUTTON if frame.type == "quick_reply" else Message.Kind.TEXT,
                payload=frame.payload if frame.type == "quick_reply" else None,
                external_id=frame.client_id,
            ),
            conversation_id=self.conversation_id,
            sandbox=self.sandbox,
            language=self.language,
            origin=self.channel_name,
        )
        try:
            await self._lane.run(arrival, key=self.conversation_id or 0)
            if arrival.conversation != self.conversation_id:
                await self._watch(arrival.conversation)
        finally:
            if arrival.events:
                await realtime.broadcast(self.channel_layer, arrival.events)
        await self.send_json(
            {
                "type": "ack",
                "client_id": frame.client_id,
                "id": arrival.message["id"],
                "duplicate": arrival.duplicate,
                "message": arrival.message,
                # The bot's replies that were ready with it (the other sockets get them as
                # ``message`` frames, and so does this one when they come later).
                "replies": arrival.replies,
            }
        )

    frame_quick_reply = frame_message

    async def frame_typing(self, frame):
        if self.conversation_id:
            await self.channel_layer.group_send(
                realtime.conversation_group(self.conversation_id),
                {"type": "typing", "sender": "contact", "on": frame.on},
            )

    async def frame_read(self, frame):
        if not self.conversation_id:
            return

        def mark(events):
            with realtime.collecting(events):
                services.messages_mark_read(
                    conversation=self._conversation(), up_to_id=frame.message_id
                )

        events: list = []
        try:
            await database_sync_to_async(mark)(events)
        finally:
            await realtime.broadcast(self.channel_layer, events)

    async def frame_history(self, frame):
        await self._send_history(before=frame.before)

    async def frame_contact(self, frame):
        """The away form: the visitor's details while nobody can answer become a lead (and,
        where the bot says so, a support ticket), through the agents' hook."""
        if not self.conversation_id:
            await self._error("no_conversation", "Start the chat first.")
            return

        def leave():
            hooks.away_contact_leave(conversation=self._conversation(), fields=frame.fields or {})

        await database_sync_to_async(leave)()
        await self.send_json({"type": "contact_saved"})

    async def frame_rating(self, frame):
        """The visitor's 1-5 rating of a resolved conversation (CSAT)."""
        if not self.conversation_id:
            await self._error("no_conversation", "Start the chat first.")
            return

        def rate():
            services.conversation_rate(conversation=self._conversation(), score=frame.score)

        await database_sync_to_async(rate)()
        await self.send_json({"type": "rated", "score": frame.score})

    # --- Group events out ------------------------------------------------------------------

    async def typing(self, event):
        if event.get("sender") != "contact":
            frame = {"type": "typing", "sender": event["sender"], "on": event["on"]}
            if event.get("name"):
                frame["name"] = event["name"]  # an agent's first name (never more)
            await self.send_json(frame)

    async def conversation_started(self, event):
        # Another tab of the visitor opened a chat. The event only says "look again": the
        # visitor's current conversation is read from the database, so that a late event
        # (channels-redis delivers one buffered before a group's last socket left to the
        # next socket that joins it) never takes the widget back to an older chat.
        if event["conversation"] == self.conversation_id:
            return
        current = await database_sync_to_async(self._current_conversation)()
        if current is not None and current.pk != self.conversation_id:
            await self._watch(current.pk)
            await self._send_history()

    async def conversation_updated(self, event):
        await self.send_json({"type": "conversation", **event.get("conversation", {})})

    # --- Helpers ---------------------------------------------------------------------------

    async def _watch(self, conversation_id: int) -> None:
        if self.conversation_id and self.conversation_id != conversation_id:
            await self.channel_layer.group_discard(
                realtime.conversation_group(self.conversation_id), self.channel_name
            )
        self.conversation_id = conversation_id
        await self.channel_layer.group_add(
            realtime.conversation_group(conversation_id), self.channel_name
        )

    def _current_conversation(self) -> Conversation | None:
        return services.webchat_conversation_current(
            bot=self.bot, visitor_id=self.visitor_id, sandbox=self.sandbox
        )

    def _conversation(self) -> Conversation:
        return Conversation.objects.for_tenant(self.bot.tenant_id).get(pk=self.conversation_id)

    async def _send_history(
        self, before: int | None = None, status: str | None = None, earlier: int | None = None
    ) -> None:
        """The conversation's newest page (older than ``before``); with its ``status`` known
        (a socket opening), the page is the one query. ``earlier``: the visitor's last
        resolved conversation's newest page instead, marked ``earlier``."""
        conversation_id = earlier or self.conversation_id
        if not conversation_id:
            await self.send_json({"type": "history", "conversation": None, "messages": []})
            return

        def load():
            if status is None or (status == Conversation.Status.QUEUED and not earlier):
                conversation = self._conversation()  # the away form needs its queued_at
            else:
                conversation = Conversation(
                    pk=conversation_id, tenant_id=self.bot.tenant_id, status=status
                )
            messages = selectors.conversation_history(conversation=conversation, before=before)
            # The earlier conversation is there to read: its away form is never offered.
            away = None if earlier else webchat_selectors.away_form_state(conversation)
            return conversation, [realtime.message_payload(m) for m in messages], away

        conversation, messages, away = await database_sync_to_async(load)()
        frame = {
            "type": "history",
            "conversation": conversation.pk,
            "status": conversation.status,
            "before": before,
            "messages": messages,
            "away_form": away,
        }
        if earlier:
            frame["earlier"] = True
        await self.send_json(frame)

    async def _error(self, code: str, message: str, content=None, fields=None) -> None:
        frame = {"type": "error", "code": code, "message": message}
        if isinstance(content, dict) and isinstance(content.get("client_id"), str):
            frame["client_id"] = content["client_id"]
        if fields:
            frame["fields"] = fields
        await self.send_json(frame)
