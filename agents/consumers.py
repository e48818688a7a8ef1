"""The agent console's socket, ``/ws/agent/``: session-authenticated, tenant-scoped.

Frames in: ``heartbeat``, ``presence``, ``open``, ``seen``, ``claim``, ``take_over``, ``reply``,
``note``, ``typing``, ``transfer``, ``resolve``, ``hand_back``, ``profile``. Frames out:
``hello``, ``conversation``, ``conversation.changed``, ``message``, ``activity``, ``note``,
``typing``, ``presence``, ``status``, ``read``, ``ack``, ``error``. Every action calls one
service of ``agents.services``.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer

from agents import selectors, services
from agents.models import AgentProfile
from chattonic.core import inputs
from chattonic.core.errors import NotFound, ServiceError, ValidationFailed
from chattonic.core.sockets import JsonSocket, frame_loads
from chattonic.tenancy.selectors import staff_public_name
from conversations import realtime
from conversations.models import Conversation

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
MAX_TEXT = 8000  # a reply or note (the services hold them to their own, lower limits)
ACTIONS = {
    "heartbeat",
    "presence",
    "open",
    "claim",
    "take_over",
    "reply",
    "note",
    "typing",
    "transfer",
    "resolve",
    "hand_back",
    "seen",
    "profile",
}


class AgentConsumer(realtime.MessageEvents, JsonSocket):
    profile: AgentProfile | None = None
    watching: int | None = None

    async def connect(self):
        user = self.scope.get("user")
        self.profile = await database_sync_to_async(self._profile)(user)
        if self.profile is None:
            await self.close()  # not a member of a tenant: refused at the handshake (403)
            return
        self.user = user
        self.tenant_id = self.profile.tenant_id
        await self.accept()
        await self.channel_layer.group_add(realtime.agents_group(self.tenant_id), self.channel_name)
        self.profile = await database_sync_to_async(services.agent_connected)(profile=self.profile)
        hello = await database_sync_to_async(selectors.console_state)(profile=self.profile)
        await self.send_json({"type": "hello", **hello})

    def _profile(self, user) -> AgentProfile | None:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return None
        membership = getattr(user, "membership", None)
        if membership is None:
            return None
        return services.agent_profile(tenant_id=membership.tenant_id, user=user)

    async def disconnect(self, code):
        if self.profile is None:
            return
        await self.channel_layer.group_discard(
            realtime.agents_group(self.tenant_id), self.channel_name
        )
        if self.watching:
            await self.channel_layer.group_discard(
                realtime.conversation_group(self.watching), self.channel_name
            )
        await database_sync_to_async(services.agent_disconnected)(profile=self.profile)

    # --- Frames in -------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None or len(text_data.encode()) > MAX_FRAME_BYTES:
            await self._error(
                "bad_frame", f"Frames are JSON text of at most {MAX_FRAME_BYTES} bytes."
            )
            return
        try:
            content = frame_loads(text_data)
        except ValueError:
            await self._error("bad_json", "A frame must be valid JSON.")
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if not isinstance(kind, str) or kind not in ACTIONS:
            message = f"Unknown frame type; one of {', '.join(sorted(ACTIONS))}."
            await self._error("unknown_type", message, content, {"type": [message]})
            return
        try:
            content = parse_frame(content)
            await getattr(self, f"do_{kind}")(content)
        except ServiceError as exc:
            await self._error(exc.code, exc.message, content, exc.fields)
        except StopConsumer:
            raise  # the console went away while it was being answered: nothing failed
        except Exception:
            # The console keeps its socket: the failed action wrote nothing (its transaction
            # rolled back) and the agent is told, instead of a silently closed connection.
            logger.exception("agent console: %s failed", content["type"])
            await self._error("server_error", "That did not work; try again.", content)

    async def do_heartbeat(self, content):
        self.profile = await database_sync_to_async(services.presence_heartbeat)(
            profile=self.profile
        )
        await self.send_json({"type": "heartbeat"})

    async def do_presence(self, content):
        self.profile = await database_sync_to_async(services.presence_set)(
            profile=self.profile, presence=_text(content, "presence")
        )
        await self._ack(content, presence=self.profile.presence)

    async def do_open(self, content):
        conversation = await self._conversation(content)

        def open_it():
            # Opening it is seeing it: the agent's unread count for it starts again.
            services.conversation_mark_seen(conversation=conversation, agent=self.user)
            return selectors.conversation_detail(conversation=conversation)

        detail = await database_sync_to_async(open_it)()
        if self.watching != conversation.pk:
            if self.watching:
                await self.channel_layer.group_discard(
                    realtime.conversation_group(self.watching), self.channel_name
                )
            self.watching = conversation.pk
            await self.channel_layer.group_add(
                realtime.conversation_group(conversation.pk), self.channel_name
            )
        await self.send_json({"type": "conversation", **detail})

    async def do_seen(self, content):
        conversation = await self._conversation(content)
        newest = await database_sync_to_async(services.conversation_mark_seen)(
            conversation=conversation, agent=self.user
        )
        await self._ack(content, id=newest)

    async def do_profile(self, content):
        self.profile = await database_sync_to_async(services.agent_name_set)(
            profile=self.profile,
            first_name=_text(content, "first_name"),
            last_name=_text(content, "last_name"),
        )
        user = self.profile.user
        await self._ack(
            content,
            me={
                "id": user.pk,
                "name": str(self.profile),
                "first_name": user.first_name,
                "last_name": user.last_name,
                "presence": self.profile.presence,
            },
        )

    async def do_claim(self, content):
        conversation = await self._conversation(content)
        await database_sync_to_async(services.conversation_claim)(
            conversation=conversation, agent=self.user
        )
        await self._ack(content)

    async def do_take_over(self, content):
        conversation = await self._conversation(content)
        await database_sync_to_async(services.conversation_take_over)(
            conversation=conversation, agent=self.user
        )
        await self._ack(content)

    async def do_reply(self, content):
        conversation = await self._conversation(content)
        message = await database_sync_to_async(services.agent_reply)(
            conversation=conversation,
            agent=self.user,
            text=_text(content, "text"),
            expand_canned=True,
        )
        await self._ack(content, id=message.pk)

    async def do_note(self, content):
        conversation = await self._conversation(content)
        note = await database_sync_to_async(services.note_add)(
            conversation=conversation, author=self.user, text=_text(content, "text")
        )
        await self._ack(content, id=note.pk)

    async def do_typing(self, content):
        conversation = await self._conversation(content)
        await self.channel_layer.group_send(
            realtime.conversation_group(conversation.pk),
            {
                "type": "typing",
                "sender": "agent",
                "on": _flag(content, "on"),
                "agent": self.user.pk,
                # The visitor reads "Maya is typing…" (their first name only), not "Agent".
                "name": staff_public_name(self.user),
            },
        )

    async def do_transfer(self, content):
        conversation = await self._conversation(content)

        def transfer():
            to_agent = to_team = None
            if content.get("agent") is not None:
                to_agent = selectors.tenant_agent(
                    tenant_id=self.tenant_id, user_id=_int(content["agent"], "agent")
                )
                if to_agent is None:
                    raise NotFound("No such agent.")
            if content.get("team") is not None:
                to_team = selectors.team_for_id(
                    tenant_id=self.tenant_id, team_id=_int(content["team"], "team")
                )
                if to_team is None:
                    raise NotFound("No such team.")
            return services.conversation_transfer(
                conversation=conversation, actor=self.user, to_agent=to_agent, to_team=to_team
            )

        await database_sync_to_async(transfer)()
        await self._ack(content)

    async def do_resolve(self, content):
        conversation = await self._conversation(content)
        await database_sync_to_async(services.conversation_resolve)(
            conversation=conversation, actor=self.user
        )
        await self._ack(content)

    async def do_hand_back(self, content):
        conversation = await self._conversation(content)
        node = content.get("node") or None
        await database_sync_to_async(services.conversation_hand_back)(
            conversation=conversation, actor=self.user, node=node
        )
        await self._ack(content)

    async def _conversation(self, content) -> Conversation:
        return await database_sync_to_async(selectors.conversation_for_agent)(
            tenant_id=self.tenant_id,
            conversation_id=_int(content.get("conversation"), "conversation"),
        )

    # --- Group events out ------------------------------------------------------------------

    async def conversation_changed(self, event):
        await self.send_json(
            {
                "type": "conversation.changed",
                "conversation": event["conversation"],
                "reason": event["reason"],
            }
        )

    async def conversation_activity(self, event):
        await self.send_json({"type": "activity", "conversation": event["conversation"]})

    async def conversation_updated(self, event):
        pass  # the widget's view of a change; the console has conversation.changed

    async def note_added(self, event):
        await self.send_json({"type": "note", "note": event["note"]})

    async def presence_changed(self, event):
        await self.send_json({"type": "presence", "agent": event["agent"]})

    async def typing(self, event):
        if event.get("agent") != self.user.pk:
            await self.send_json({"type": "typing", "conversation": self.watching, **event})

    # --- Helpers ---------------------------------------------------------------------------

    async def _ack(self, content, **extra):
        await self.send_json(
            {"type": "ack", "action": content["type"], "ref": content.get("ref"), **extra}
        )

    async def _error(self, code, message, content=None, fields=None):
        frame = {"type": "error", "code": code, "message": message}
        if isinstance(content, dict):
            frame["action"] = content.get("type")
            frame["ref"] = content.get("ref")
        if fields:
            frame["fields"] = fields
        await self.send_json(frame)


def parse_frame(content: dict) -> dict:
    """Every field a console frame may carry, checked (``chattonic.core.inputs``) before
    anything runs: a field of the wrong type is an error frame naming it."""
    clean = dict(content)
    for field, check in _FIELDS.items():
        if content.get(field) is not None:
            clean[field] = check(clean, field)
    return clean


def _int(value, field: str) -> int:
    """An id of the frame: a JSON integer or a string of ASCII digits, in the keys' range."""
    if value is None:
        raise ValidationFailed.for_field(field, "An id is required.")
    return inputs.key(value, field=field)


def _text(content: dict, field: str) -> str:
    """A text of the frame: a string (cleaned: NFC, no NUL), "" when missing."""
    return inputs.text(content.get(field), field=field, max_length=MAX_TEXT)


def _flag(content: dict, field: str) -> bool:
    value = content.get(field, False)
    if not isinstance(value, bool):
        raise ValidationFailed.for_field(field, "true or false.")
    return value


def _id_field(content: dict, field: str) -> int:
    return _int(content.get(field), field)


def _node(content: dict, field: str) -> str:
    return inputs.identifier(content[field], field=field, max_length=100)


_FIELDS = {
    "conversation": _id_field,
    "agent": _id_field,
    "team": _id_field,
    "text": _text,
    "presence": _text,
    "first_name": _text,
    "last_name": _text,
    "node": _node,
    "on": _flag,
}
