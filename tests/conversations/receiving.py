"""A visitor's message through the receive service, as the web chat's socket hands it over
(a batch of one), for tests that talk to a bot without a socket."""

from __future__ import annotations

from bots.models import Bot
from conversations.models import Conversation
from conversations.receive import Arrival, Inbound, messages_receive


def webchat_says(
    bot: Bot,
    visitor_id: str,
    text: str,
    *,
    external_id: str = "",
    conversation_id: int | None = None,
    sandbox: bool = False,
    kind: str = "text",
    payload: str | None = None,
) -> tuple[Conversation, Arrival]:
    """The visitor's message (into ``conversation_id`` if open, else their open one, else a
    new one); its conversation and outcome. The service's error is raised."""
    (arrival,) = messages_receive(
        [
            Arrival(
                bot=bot,
                visitor_id=visitor_id,
                inbound=Inbound(text=text, kind=kind, payload=payload, external_id=external_id),
                conversation_id=conversation_id,
                sandbox=sandbox,
            )
        ]
    )
    if arrival.error is not None:
        raise arrival.error
    return Conversation.objects.get(pk=arrival.conversation), arrival


def visitor_says(conversation: Conversation, text: str, **kwargs) -> Arrival:
    """A message of the conversation's visitor into it."""
    conversation = Conversation.objects.select_related("bot").get(pk=conversation.pk)
    _, arrival = webchat_says(
        conversation.bot,
        conversation.recipient_id,
        text,
        conversation_id=conversation.pk,
        sandbox=conversation.is_sandbox,
        **kwargs,
    )
    return arrival
