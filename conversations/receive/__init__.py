"""Messages arrive: the one service that writes them, whatever the door.

Every door hands its messages here, as a batch (one message is a batch of one): the web chat
socket (``webchat.lane`` gathers its sockets' messages), each platform's webhook and
the API channel (``messaging.services``), the agent console and the API's replies
(``agents.services.agent_reply``: ``outbound_message``), and the tests. For each message:

1. **read** what the batch needs in one round trip: the conversations (locked, in the order
   of their ids, so that batches of several processes never wait on each other in a
   circle), the bots' change stamps, the messages it resends, which new visitors are known;
2. **plan** each turn, pure: the conversation it goes to (found, or opened with its
   greeting), the engine's step, and what must be written: the rows of the messages, the
   conversation's new state, and the effects (a lead, a handoff, an HTTP request, the end);
3. **persist** the batch with one row builder (``conversations.sql.row``: named rows built
   from the model's fields): the new conversations, every message in one ``INSERT``, every
   conversation's state in one ``UPDATE``;
4. **carry out** the effects, in order, in ``_effects_apply``: the one place a turn reaches
   leads, the agents' handoff and the HTTP node's task.

A turn whose effects change the conversation (a handoff, the end, an error) ends the batch's
planning of that conversation: its next messages are planned again, in another round of the
same service, on what the effects left. What each message caused goes out after the commit
(``realtime.send_on_commit``; a socket collects its own, to send them itself).

Nothing else inserts into the message table (tests/conversations/test_receive.py checks the
source and the running code).
"""

from conversations.receive.batch import messages_receive, webchat_conversation_current
from conversations.receive.plan import (
    BOT_ERROR_REASON,
    MAX_TEXT,
    Arrival,
    Inbound,
    engine_step,
    inbound_text,
    reply_data,
    turn_event,
)
from conversations.receive.platforms import (
    channel_messages_receive,
    messages_answer,
    messages_answer_failed,
)
from conversations.receive.write import (
    SANDBOX_CONTACT_NAME,
    bot_turn,
    contact_for_identity,
    conversation_start,
    message_deliver,
    outbound_message,
    system_message,
)

__all__ = [
    "BOT_ERROR_REASON",
    "MAX_TEXT",
    "SANDBOX_CONTACT_NAME",
    "Arrival",
    "Inbound",
    "bot_turn",
    "channel_messages_receive",
    "contact_for_identity",
    "conversation_start",
    "engine_step",
    "inbound_text",
    "message_deliver",
    "messages_answer",
    "messages_answer_failed",
    "messages_receive",
    "outbound_message",
    "reply_data",
    "system_message",
    "turn_event",
    "webchat_conversation_current",
]
