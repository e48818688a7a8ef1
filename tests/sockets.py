"""What the socket tests share: reading a communicator's frames until one matches, and the
messages a frame brings."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator

TIMEOUT = 10  # a safety net for a hung socket, not a timing assertion


async def until(communicator: WebsocketCommunicator, predicate) -> tuple[dict, list[dict]]:
    """Read frames until one matches; returns it and every frame read before it."""
    seen = []
    while True:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        if predicate(frame):
            return frame, seen
        seen.append(frame)


def of_type(kind: str, **fields):
    return lambda f: f["type"] == kind and all(f.get(k) == v for k, v in fields.items())


def said(frame: dict) -> list[dict]:
    """The messages a frame brings: a ``message`` frame's, or the bot's replies that came
    with a web chat ``ack``."""
    if frame.get("type") == "message":
        return [frame["message"]]
    return frame.get("replies") or [] if frame.get("type") == "ack" else []


def says(sender: str, text: str | None = None):
    """A frame bringing a message from ``sender`` (saying ``text``)."""
    return lambda f: any(
        m["sender"] == sender and (text is None or m["text"] == text) for m in said(f)
    )
